"""Batch top-k search of query vectors over PQ-coded items (ADC, optional IVF and re-ranking), with recall."""

import sys

from pipelines.cli import run_job
from pipelines.pq.jobs import search_pq_job

if __name__ == "__main__":
    sys.exit(run_job("search_pq", __file__, search_pq_job, __doc__))
