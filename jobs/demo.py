"""End-to-end demo pipeline in local mode: generate data, ingest it with quarantine, and report."""
import sys

from pipelines.cli import run_job
from pipelines.demo import demo_job

if __name__ == "__main__":
    sys.exit(run_job("demo", __file__, demo_job, __doc__))
