"""Train product-quantization codebooks on a sample of item vectors and encode the whole item table."""

import sys

from pipelines.cli import run_job
from pipelines.pq.jobs import build_pq_job

if __name__ == "__main__":
    sys.exit(run_job("build_pq", __file__, build_pq_job, __doc__))
