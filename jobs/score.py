"""Batch-score a table with a saved GBDT+LR model, writing scores with the model version and run date."""
import sys

from pipelines.cli import run_job
from pipelines.gbdt_lr.job import score_job

if __name__ == "__main__":
    sys.exit(run_job("score", __file__, score_job, __doc__))
