"""Train GBDT+LR (boosted-tree leaves one-hot into a logistic regression) with LR-only and trees-only baselines."""
import sys

from pipelines.cli import run_job
from pipelines.gbdt_lr.job import train_job

if __name__ == "__main__":
    sys.exit(run_job("train_gbdt_lr", __file__, train_job, __doc__))
