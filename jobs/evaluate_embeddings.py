"""spark-submit entry of job 'evaluate_embeddings' (see ``pipelines.registry``; ``--help`` lists its configuration)."""

import sys

from pipelines.job_runtime import run_job

if __name__ == "__main__":
    sys.exit(run_job("evaluate_embeddings"))
