"""spark-submit entry of job 'build_features' (see ``pipelines.registry``; ``--help`` lists its configuration)."""

import sys

from pipelines.job_runtime import run_job

if __name__ == "__main__":
    sys.exit(run_job("build_features"))
