"""spark-submit entry of job 'split_interactions' (see ``pipelines.registry``; ``--help`` lists its configuration)."""

import sys

from pipelines.job_runtime import run_job

if __name__ == "__main__":
    sys.exit(run_job("split_interactions"))
