"""The tiny recommender pipeline (``tests/recsys_tiny.py``) as the cluster tier runs it, and what a run on the
cluster is compared with: the whole pipeline in local mode in the test session, run once for the tier.

The ALS baselines are left to the unit tier: each application costs a JVM and two executors, and the
recommender's own steps are what must run on executors here. The generated data is made and ingested in the
test session first (the runner then skips those committed steps, as it resumes any run).
"""

from __future__ import annotations

from pathlib import Path

from chispa import assert_approx_df_equality

from pipelines.orchestration.definition import build_pipeline
from pipelines.orchestration.runner import Runner
from tests.recsys_tiny import DEMO, tiny_definition

DATE = "2026-11-21"
LOCAL_STEPS = ("generate", "ingest_interactions", "ingest_items")
# MLlib adds partial sums in the order tasks finish, so the ranker's scores (and what is computed from them) may
# differ from local mode's in the last bits.
PRECISION = 1e-9


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


def tables(root: Path) -> list[str]:
    """The run date's Parquet tables under ``root`` written on the cluster (not the raw and clean data made
    locally; not the undated models, whose stages are named by random ids)."""
    return sorted(
        str(p.parent.relative_to(root))
        for p in root.rglob(f"ds={DATE}/**/_SUCCESS")
        if p.parent.relative_to(root).parts[0] not in ("raw", "clean") and any(p.parent.glob("*.parquet"))
    )


def assert_same_tables(spark, got: Path, expected: Path) -> None:
    """Every run date's table under ``got`` equals the one under ``expected`` (floating-point numbers to
    ``PRECISION``), the ranker's scores and the evaluation's lists among them."""
    assert {f"ranker/scores/ds={DATE}", f"evaluation/lists/ds={DATE}"} <= set(tables(got))
    for table in tables(got):
        pair = [spark.read.parquet(str(root / table)) for root in (got, expected)]
        assert_approx_df_equality(*pair, PRECISION, ignore_row_order=True)
