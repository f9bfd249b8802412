"""Vectorised pandas UDFs used by the pipelines (numpy inside, Arrow batches in and out)."""
