"""Shared fixtures: one real local SparkSession for the whole test run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# No MLflow run of the tests' jobs, in this process or the jobs it starts (tests/test_tracking.py turns it on, with
# a temporary store): the default store would be ./output/mlruns.db in the checkout.
os.environ["PIPELINES_TRACKING"] = "off"


@pytest.fixture(scope="session")
def spark():
    from pipelines.session import get_spark

    session = get_spark("tests", ROOT / "conf" / "spark" / "test.yaml")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
