"""Item index for recall: unit item2vec vectors plus a popularity sub-space, for a PQ inner-product search."""
import sys

from pipelines.cli import run_job
from pipelines.recsys.jobs import index_job

if __name__ == "__main__":
    sys.exit(run_job("build_item_index", __file__, index_job, __doc__))
