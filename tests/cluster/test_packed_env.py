"""Cluster tier: executors whose own Python has none of the requirements run the recommender's steps in the
packed environment of ``make dist`` (``--archives <env>#environment``, ``spark.pyspark.python=
./environment/bin/python``), and the steps write what local mode writes.

The cluster is one of its own: a master and two workers that run in temporary directories, with a bare
virtualenv as their Python (no numpy, no pandas, no gensim) and no ``PYTHONPATH``. The steps (after generate
and ingest, made in the test session as ``test_recsys_cluster.py`` does) run in one application
(``jobs/run_pipeline.py``): each application unpacks the environment (about 600 MB) on each executor again, and
eight of them, one per step, would add minutes. The driver keeps the test's interpreter
(``spark.pyspark.driver.python``): ``spark.pyspark.python`` alone names the driver's Python too, relative to
the driver's working directory, where no environment is unpacked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.recsys import DATE, LOCAL_STEPS, assert_same_tables, recsys_definition, run_locally, tables
from tests.cluster.standalone import ROOT, StandaloneCluster, children, cmdline, spark_submit
from tests.cluster.worker_env import make_bare_python

pytestmark = pytest.mark.cluster
ENV_PYTHON = "./environment/bin/python"


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory) -> StandaloneCluster:
    """A master and two one-core workers of their own, whose Python is a bare virtualenv."""
    running = StandaloneCluster(tmp_path_factory.mktemp("bare_cluster"), make_python=make_bare_python)
    try:
        yield running.start()
    finally:
        running.stop()


def daemons(cluster: StandaloneCluster) -> set[tuple[str, str]]:
    """(interpreter, working directory) of the Python daemons the cluster's executors are running."""
    found = set()
    for worker in cluster.workers.values():
        for daemon in [pid for executor in children(worker.pid) for pid in children(executor)]:
            command = cmdline(daemon)
            try:
                if "pyspark.daemon" in command:
                    found.add((command.split()[0], os.readlink(f"/proc/{daemon}/cwd")))
            except OSError:  # it has just exited
                pass
    return found


def test_recsys_steps_in_the_packed_environment(bare_cluster, pyfiles, packed_env, recsys_local, spark, tmp_path):
    for python in bare_cluster.pythons.values():
        bare = subprocess.run(
            [str(python), "-c", "import numpy"],
            env=bare_cluster.env,
            cwd=bare_cluster.work,
            capture_output=True,
            text=True,
        )
        assert "No module named 'numpy'" in bare.stderr, "the workers' own Python must not have the requirements"
    data, got = recsys_definition(), tmp_path / "cluster"
    run_locally(spark, data, got, LOCAL_STEPS)
    definition = tmp_path / "recsys.yaml"
    definition.write_text(yaml.safe_dump(data, sort_keys=False))
    command = spark_submit(
        bare_cluster,
        pyfiles,
        "run_pipeline",
        [str(definition), "--run-date", DATE, "--root", str(got)],
        {"spark.pyspark.python": ENV_PYTHON, "spark.pyspark.driver.python": sys.executable},
        ["--archives", f"{packed_env}#environment"],
    )
    log, seen, deadline = tmp_path / "spark-submit.log", set(), time.time() + 900
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=bare_cluster.env, cwd=ROOT)
    while proc.poll() is None and time.time() < deadline:
        seen |= daemons(bare_cluster)
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    assert proc.wait() == 0, log.read_text()[-5000:]

    assert seen, "no Python daemon seen on an executor"
    assert {python for python, _ in seen} == {ENV_PYTHON}
    for _, cwd in seen:  # an executor's directory under a worker's, with the archive unpacked there
        assert cwd.startswith(str(bare_cluster.work)) and list(Path(cwd).glob("environment/lib/*/site-packages/numpy"))
    assert tables(got) == tables(recsys_local)
    assert_same_tables(spark, got, recsys_local)
