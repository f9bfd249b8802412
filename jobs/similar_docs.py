"""Top-k cosine neighbours of every document of a TF-IDF index (build_tfidf output), or of new documents."""
import sys

from pipelines.cli import run_job
from pipelines.text.jobs import similar_docs_job

if __name__ == "__main__":
    sys.exit(run_job("similar_docs", __file__, similar_docs_job, __doc__))
