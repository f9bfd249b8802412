"""Cluster tier: a driver far from the checkout, as ``--deploy-mode cluster`` puts it.

Spark's standalone master refuses Python applications in cluster deploy mode (YARN and Kubernetes take them);
the first test pins that refusal, so the day Spark lifts it this file says to test cluster mode itself. What
cluster mode asks of the package is what the second test checks on the standalone cluster: the driver runs in
a working directory of its own, with an interpreter that has the third-party libraries but not this package
(a worker's), so ``pipelines`` comes only from the ``--py-files`` zip, and the job's defaults, read through
``importlib.resources``, come from inside that zip.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.config import read_yaml
from pipelines.resources import job_defaults
from tests.cluster.standalone import spark_submit

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
DATE = "2026-11-21"


def test_standalone_master_refuses_python_in_cluster_deploy_mode(cluster, pyfiles, tmp_path):
    command = spark_submit(cluster, pyfiles, "generate_demo_data", ["--help"])
    command[1:1] = ["--deploy-mode", "cluster"]
    done = subprocess.run(command, capture_output=True, text=True, env=cluster.env, cwd=tmp_path, timeout=300)
    assert done.returncode != 0
    assert (
        "Cluster deploy mode is currently not supported for python applications on standalone clusters" in done.stderr
    )


def test_driver_without_checkout_takes_package_and_defaults_from_the_zip(cluster, pyfiles, tmp_path):
    python = cluster.pythons[0]
    bare = subprocess.run([str(python), "-c", "import pipelines"], capture_output=True, text=True, cwd=tmp_path)
    assert bare.returncode != 0 and "No module named 'pipelines'" in bare.stderr  # not installed there
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "jobs" / "generate_demo_data.py", app)  # the entry file is all the driver gets
    out = tmp_path / "out"
    command = spark_submit(
        cluster,
        pyfiles,
        "generate_demo_data",
        ["--set", "size=0.01", "--set", f"output.path={out}", "--run-date", DATE],
    )
    command[command.index(str(ROOT / "jobs" / "generate_demo_data.py"))] = str(app / "generate_demo_data.py")
    env = {**cluster.env, "PYSPARK_DRIVER_PYTHON": str(python)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=app, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    metrics = json.loads((out / "clicks" / f"ds={DATE}" / "_metrics.json").read_text())
    assert metrics["spark"]["master"] == cluster.url and metrics["spark"]["executors"] == 2
    config = yaml.safe_load((out / "clicks" / f"ds={DATE}" / "_config.yaml").read_text())
    defaults = read_yaml(job_defaults("generate_demo_data"))
    assert config == {**defaults, "size": 0.01, "output": {**defaults["output"], "path": str(out)}}
    assert sorted(p.name for p in app.iterdir()) == ["generate_demo_data.py"]  # nothing written beside it
