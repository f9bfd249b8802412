"""Copy members of a zip archive (a downloaded data set) into one output directory each."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import unpack_archive_job

if __name__ == "__main__":
    sys.exit(run_job("unpack_archive", __file__, unpack_archive_job, __doc__))
