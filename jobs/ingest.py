"""Ingest one table (Parquet, CSV, JSON lines) or text corpus into Parquet; malformed records go to quarantine."""
import sys

from pipelines.cli import run_job
from pipelines.ingest import ingest_job

if __name__ == "__main__":
    sys.exit(run_job("ingest", __file__, ingest_job, __doc__))
