"""Ranker features (user, item, user-item) and labels of every recall candidate, per split."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import features_job

if __name__ == "__main__":
    sys.exit(run_job("build_features", __file__, features_job, __doc__))
