"""GBDT+LR ranker trained on the validation candidates; scores of the test candidates."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import rank_job

if __name__ == "__main__":
    sys.exit(run_job("train_ranker", __file__, rank_job, __doc__))
