"""Cluster tier: the recommender pipeline in subprocess mode, every step a ``spark-submit --py-files`` job on
a standalone master with two workers, at a tiny size (ALS baselines left to the unit tier)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.orchestration.plan import pyfiles_zip
from pipelines.packaging import build_pyfiles
from tests.cluster.standalone import HOST, standalone_cluster
from tests.recsys_tiny import tiny_definition

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
DATE = "2026-11-21"


def test_recsys_pipeline_with_spark_submit_on_two_executors(tmp_path):
    data = tiny_definition()
    del data["steps"]["baselines"]
    data["steps"]["evaluate"]["set"]["input"].update(popularity="", als="")
    data["steps"]["evaluate"]["inputs"] = [p for p in data["steps"]["evaluate"]["inputs"] if "baselines" not in p]
    with standalone_cluster(tmp_path / "cluster", workers=2) as url:
        data["mode"] = "subprocess"
        data["spark"].update(submit="spark-submit", master=url, conf={
            "spark.executor.cores": 1, "spark.cores.max": 2, "spark.executor.memory": "1g",
            "spark.driver.host": HOST, "spark.scheduler.minRegisteredResourcesRatio": 1.0,
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s", "spark.sql.shuffle.partitions": 4})
        definition = tmp_path / "recsys_cluster.yaml"
        definition.write_text(yaml.safe_dump(data, sort_keys=False))
        build_pyfiles(pyfiles_zip().parent)
        out = tmp_path / "out"
        env = {**os.environ, "SPARK_LOCAL_IP": HOST, "PYSPARK_PYTHON": sys.executable,
               "PYSPARK_DRIVER_PYTHON": sys.executable}
        done = subprocess.run([sys.executable, "-m", "pipelines", "run", str(definition), "--run-date", DATE,
                               "--root", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-5000:]
    [manifest_path] = list((out / "_runs" / f"ds={DATE}").glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "succeeded" and manifest["mode"] == "subprocess"
    steps = {s["name"]: s for s in manifest["steps"]}
    assert all(s["status"] == "ran" for s in steps.values())
    assert "spark-submit" in steps["recall"]["command"][0] and "--py-files" in steps["recall"]["command"]
    for name in ("recall", "features", "rank", "evaluate"):
        spark = steps[name]["metrics"]["spark"]
        assert spark["master"] == url and spark["executors"] == 2, name
    evaluation = steps["evaluate"]["metrics"]["evaluation"]
    assert {"ours", "ours_recall_only"} <= set(evaluation["methods"])
    assert 0.5 < evaluation["ranker"]["auc"] <= 1
