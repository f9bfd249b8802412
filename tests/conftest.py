"""Shared fixtures: one real local SparkSession for the whole test run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from pipelines.session import load_spark_yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TEST_CONF = ROOT / "conf" / "spark" / "test.yaml"
# The tests' JIT/GC options: the session's JVM and those that spark-submit or spark-class start. test.yaml's unless
# PIPELINES_TEST_JAVA_OPTIONS says otherwise (the slow tier's long sessions keep the full JIT: see the Makefile).
JAVA_OPTIONS = (
    os.environ.get("PIPELINES_TEST_JAVA_OPTIONS") or load_spark_yaml(TEST_CONF)["conf"]["spark.driver.extraJavaOptions"]
)

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# No MLflow run of the tests' jobs, in this process or the jobs it starts (tests/test_tracking.py turns it on, with
# a temporary store): the default store would be ./output/mlruns.db in the checkout.
os.environ["PIPELINES_TRACKING"] = "off"


@pytest.fixture(scope="session")
def spark():
    from pipelines.session import get_spark

    session = get_spark("tests", TEST_CONF, {"spark.driver.extraJavaOptions": JAVA_OPTIONS})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Path:
    """One SQLite MLflow store for the tests that name theirs (a new store costs 2-6 s of MLflow's schema
    migrations); each test uses its own experiment and model names in it."""
    return tmp_path_factory.mktemp("mlflow") / "mlruns.db"


@pytest.fixture(scope="session")
def tracked(mlflow_store):
    """A context manager: tracking on, into ``mlflow_store``, inside its block (module-scoped fixtures use it)."""

    @contextlib.contextmanager
    def on():
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("PIPELINES_TRACKING", raising=False)
            patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_store}")
            yield

    return on


DEMO_DATE = "2026-11-20"


@pytest.fixture(scope="session")
def tracked_demo(spark, tmp_path_factory, tracked, mlflow_store):
    """``make demo``'s job at a tiny size (tests/recsys_tiny.py) with tracking on: its exit code, output root and
    the MLflow store its runs and registered models are in (tests/test_demo.py, the MLflow UI's browser test)."""
    from pipelines.job_runtime import run_job
    from tests.recsys_tiny import write_tiny

    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "demo"
    definition = write_tiny(tmp / "recsys_tiny.yaml")
    with tracked():
        code = run_job(
            "demo", ["--set", f"pipeline={definition}", "--set", f"output.path={out}", "--run-date", DEMO_DATE]
        )
    return code, out, mlflow_store
