"""Cluster tier: the recommender pipeline in subprocess mode, every step a ``spark-submit --py-files`` job on
a standalone master with two workers, at a tiny size.

The generated data is made and ingested first in the test session (the runner then skips those committed
steps, as it resumes any run), and the ALS baselines are left to the unit tier: each spark-submit costs a JVM
and two executors, and the recommender's own steps are what must run on executors here.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.orchestration.definition import build_pipeline
from pipelines.orchestration.runner import Runner
from tests.cluster.standalone import HOST
from tests.recsys_tiny import DEMO, tiny_definition

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
DATE = "2026-11-21"
LOCAL_STEPS = ("generate", "ingest_interactions", "ingest_items")


def test_recsys_pipeline_with_spark_submit_on_two_executors(cluster, spark, tmp_path):
    data = tiny_definition()
    del data["steps"]["baselines"]
    data["steps"]["evaluate"]["set"]["input"].update(popularity="", als="")
    data["steps"]["evaluate"]["inputs"] = [p for p in data["steps"]["evaluate"]["inputs"] if "baselines" not in p]
    out = tmp_path / "out"
    local = {**data, "steps": {k: v for k, v in data["steps"].items() if k in LOCAL_STEPS}}
    Runner(build_pipeline(local, DEMO, str(out)), "session", spark=spark).run(DATE)
    data["mode"] = "subprocess"
    data["spark"].update(submit="spark-submit", master=cluster.url, conf={
        "spark.executor.cores": 1, "spark.cores.max": 2, "spark.executor.memory": "1g",
        "spark.driver.host": HOST, "spark.scheduler.minRegisteredResourcesRatio": 1.0,
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s", "spark.sql.shuffle.partitions": 4})
    definition = tmp_path / "recsys_cluster.yaml"
    definition.write_text(yaml.safe_dump(data, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "pipelines", "run", str(definition), "--run-date", DATE,
                           "--root", str(out)], cwd=ROOT, env=cluster.env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-5000:]
    manifest_path = sorted((out / "_runs" / f"ds={DATE}").glob("*/manifest.json"))[-1]   # the cluster run's
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "succeeded" and manifest["mode"] == "subprocess"
    steps = {s["name"]: s for s in manifest["steps"]}
    assert {n: s["status"] for n, s in steps.items()} == {n: "skipped" if n in LOCAL_STEPS else "ran" for n in steps}
    assert "spark-submit" in steps["recall"]["command"][0] and "--py-files" in steps["recall"]["command"]
    for name in ("recall", "features", "rank", "evaluate"):
        spark = steps[name]["metrics"]["spark"]
        assert spark["master"] == cluster.url and spark["executors"] == 2, name
    evaluation = steps["evaluate"]["metrics"]["evaluation"]
    assert {"ours", "ours_recall_only"} <= set(evaluation["methods"])
    assert 0.5 < evaluation["ranker"]["auc"] <= 1
