"""Evaluate a scored table: exact ROC-AUC, PR-AUC, log loss, NE, calibration, thresholds, GAUC, plots."""
import sys

from pipelines.cli import run_job
from pipelines.metrics.job import evaluate_job

if __name__ == "__main__":
    sys.exit(run_job("evaluate", __file__, evaluate_job, __doc__))
