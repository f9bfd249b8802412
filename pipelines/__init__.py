"""Batch Spark ML pipelines: the library behind the thin jobs in ``jobs/``."""

__version__ = "0.1.0"
