"""Fit tokeniser + TF-IDF (scikit-learn formulas) on a corpus; write the model, TF-IDF vectors and keywords."""
import sys

from pipelines.cli import run_job
from pipelines.text.jobs import build_tfidf_job

if __name__ == "__main__":
    sys.exit(run_job("build_tfidf", __file__, build_tfidf_job, __doc__))
