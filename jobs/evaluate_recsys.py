"""Recommender evaluation: ranker AUC/GAUC, recall/NDCG@k and recall@k curves of every method."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import evaluate_job

if __name__ == "__main__":
    sys.exit(run_job("evaluate_recsys", __file__, evaluate_job, __doc__))
