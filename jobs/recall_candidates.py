"""Recall: user query vectors from recent items' item2vec vectors, PQ top-K unseen items per user."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import recall_job

if __name__ == "__main__":
    sys.exit(run_job("recall_candidates", __file__, recall_job, __doc__))
