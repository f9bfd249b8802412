"""Popularity and implicit ALS (tuned on the validation target) ranked lists for the test users."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import baselines_job

if __name__ == "__main__":
    sys.exit(run_job("recsys_baselines", __file__, baselines_job, __doc__))
