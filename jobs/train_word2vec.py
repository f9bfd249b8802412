"""Train word vectors (sgns skip-gram/CBOW, ppmi or MLlib) on a corpus, or item vectors on user sessions (item2vec)."""
import sys

from pipelines.cli import run_job
from pipelines.word2vec.jobs import train_word2vec_job

if __name__ == "__main__":
    sys.exit(run_job("train_word2vec", __file__, train_word2vec_job, __doc__))
