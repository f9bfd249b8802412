"""Generate the deterministic demo data: a topical corpus, user-item sessions and a click log."""
import sys

from pipelines.cli import run_job
from pipelines.datagen import generate_job

if __name__ == "__main__":
    sys.exit(run_job("generate_demo_data", __file__, generate_job, __doc__))
