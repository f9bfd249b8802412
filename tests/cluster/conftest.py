"""One standalone cluster (master + two workers) for the whole cluster tier, started when a test first needs it,
what spark-submit ships to executors, built once for the tier, and the local run cluster runs are compared with."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipelines.packaging import PackagingError, build_env, build_pyfiles
from tests.cluster.recsys import recsys_definition, run_locally
from tests.cluster.standalone import StandaloneCluster, spark_submit


@pytest.fixture(scope="session")
def standalone(tmp_path_factory) -> StandaloneCluster:
    """Master and two one-core workers, each with its own work directory and Python, for the whole session."""
    running = StandaloneCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def cluster(standalone) -> StandaloneCluster:
    """The shared cluster with every worker alive (a test that killed one started it again)."""
    standalone.wait_for_workers(standalone.size)
    return standalone


@pytest.fixture(scope="session")
def pyfiles(tmp_path_factory) -> Path:
    """The ``--py-files`` zip of the working tree, built once."""
    return build_pyfiles(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def packed_env(tmp_path_factory) -> Path:
    """The packed environment of ``make dist`` (``--archives``), built from scratch once (25-90 s here, 213 MB)."""
    work = tmp_path_factory.mktemp("packed_env")
    try:
        return build_env(work / "dist", work / "build")
    except PackagingError as exc:  # e.g. no package index reachable: this tier's own set-up could not run
        pytest.skip(f"the packed environment could not be built: {exc}")


@pytest.fixture
def submit(cluster, pyfiles):
    """Run ``jobs/<job>.py`` with spark-submit on the cluster; fail the test with its stderr when it fails."""

    def run(job: str, *args: str, conf: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            spark_submit(cluster, pyfiles, job, list(args), conf),
            capture_output=True,
            text=True,
            env=cluster.env,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{job} failed:\n{done.stderr[-5000:]}"
        return done

    return run


@pytest.fixture(scope="session")
def recsys_local(spark, tmp_path_factory) -> Path:
    """The root of the whole pipeline's run in local mode in the test session, made once for the tier."""
    root = tmp_path_factory.mktemp("recsys_local")
    run_locally(spark, recsys_definition(), root)
    return root
