"""Cluster tier: the recommender pipeline in subprocess mode, every step a ``spark-submit --py-files`` job on
a standalone master with two workers, at a tiny size (``tests/cluster/recsys.py``).

The last two steps (the ranker and the evaluation) run on the cluster, each an application of its own, reading
what the tier's local run (``recsys_local``) committed before them, and must write what that run wrote. Every
step runs on the cluster in one application in tests/cluster/test_packed_env.py; all eight as applications of
their own took 17 minutes of the tier on a loaded 2-core machine (recall alone 4), so two are enough to show
subprocess mode."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.recsys import DATE, assert_same_tables, recsys_definition
from tests.cluster.standalone import EXECUTORS

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
ON_CLUSTER = ("rank", "evaluate")


def cluster_definition(local: Path) -> dict:
    """The steps ``ON_CLUSTER`` alone; every dataset they do not make is the local run's, under ``local``."""
    data = recsys_definition()
    data["steps"] = {name: data["steps"][name] for name in ON_CLUSTER}
    made = {output for step in data["steps"].values() for output in step["outputs"]}
    for name, dataset in data["datasets"].items():
        if name not in made:
            path = dataset["path"] if isinstance(dataset, dict) else dataset
            path = path.replace("{root}", str(local))
            data["datasets"][name] = {**dataset, "path": path} if isinstance(dataset, dict) else path
    return data


def test_recsys_pipeline_with_spark_submit_on_two_executors(cluster, recsys_local, spark, tmp_path):
    data = cluster_definition(recsys_local)
    out = tmp_path / "out"
    data["mode"] = "subprocess"
    data["spark"].update(
        submit="spark-submit", master=cluster.url, conf={**EXECUTORS, "spark.sql.shuffle.partitions": 4}
    )
    definition = tmp_path / "recsys_cluster.yaml"
    definition.write_text(yaml.safe_dump(data, sort_keys=False))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "run", str(definition), "--run-date", DATE, "--root", str(out)],
        cwd=ROOT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    [manifest_path] = (out / "_runs" / f"ds={DATE}").glob("*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "succeeded" and manifest["mode"] == "subprocess"
    steps = {s["name"]: s for s in manifest["steps"]}
    assert {n for n, s in steps.items() if s["status"] == "ran"} == set(ON_CLUSTER)
    assert "spark-submit" in steps["rank"]["command"][0] and "--py-files" in steps["rank"]["command"]
    for name in ON_CLUSTER:
        spark_summary = steps[name]["metrics"]["spark"]
        assert spark_summary["master"] == cluster.url and spark_summary["executors"] == 2, name
    evaluation = steps["evaluate"]["metrics"]["evaluation"]
    assert {"ours", "ours_recall_only"} <= set(evaluation["methods"])
    assert 0.5 < evaluation["ranker"]["auc"] <= 1
    assert_same_tables(spark, out, recsys_local)
