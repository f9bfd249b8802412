"""The tiny recommender pipeline (``tests/recsys_tiny.py``) as the cluster tier runs it.

The ALS baselines are left to the unit tier: each application costs a JVM and two executors, and the
recommender's own steps are what must run on executors here. The generated data is made and ingested in the
test session first (the runner then skips those committed steps, as it resumes any run).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.orchestration.definition import build_pipeline
from pipelines.orchestration.runner import Runner
from tests.recsys_tiny import DEMO, tiny_definition

DATE = "2026-11-21"
LOCAL_STEPS = ("generate", "ingest_interactions", "ingest_items")


def recsys_definition() -> dict:
    """The tiny recommender definition without the ALS baselines."""
    data = tiny_definition()
    del data["steps"]["baselines"]
    data["steps"]["evaluate"]["set"]["input"].update(popularity="", als="", ease="")  # no longer its inputs
    return data


def run_locally(spark, data: dict, root: Path, steps: tuple[str, ...] | None = None) -> dict:
    """``steps`` of ``data`` (every step when None) in session mode in the tests' local SparkSession; returns
    the run's manifest."""
    chosen = {**data, "steps": {k: v for k, v in data["steps"].items() if steps is None or k in steps}}
    return Runner(build_pipeline(chosen, DEMO, str(root)), "session", spark=spark).run(DATE).data
