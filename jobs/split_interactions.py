"""Leave-last-out split per user by time: history, validation target (second to last) and test target (last)."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import split_job

if __name__ == "__main__":
    sys.exit(run_job("split_interactions", __file__, split_job, __doc__))
