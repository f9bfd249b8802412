"""Scheduled pipelines: a chain of jobs defined once in ``conf/pipelines/*.yaml``.

- ``definition``: read and validate a pipeline YAML (steps, inputs/outputs, dependencies).
- ``plan``: the steps of one run date in dependency order, and which of them are already committed.
- ``runner``: run a plan in one SparkSession or as subprocesses, resume after failures, backfill dates.
- ``manifest``: the JSON record of one run (timings, fingerprints, row counts, metrics, configuration).
- ``airflow`` / ``cron``: the same definition handed to a scheduler.
- ``report``: one static HTML page per run.
"""
