"""Evaluate word vectors (analogies, WordSim353, SimLex-999) or item vectors (neighbours sharing a category)."""
import sys

from pipelines.cli import run_job
from pipelines.word2vec.jobs import evaluate_embeddings_job

if __name__ == "__main__":
    sys.exit(run_job("evaluate_embeddings", __file__, evaluate_embeddings_job, __doc__))
