"""End-to-end demo in local mode: the recommender pipeline (recsys_demo.yaml) on generated data, HTML report."""
import sys

from pipelines.cli import run_job
from pipelines.demo import demo_job

if __name__ == "__main__":
    sys.exit(run_job("demo", __file__, demo_job, __doc__))
