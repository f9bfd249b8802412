"""Cluster tier: the recommender pipeline in subprocess mode, every step a ``spark-submit --py-files`` job on
a standalone master with two workers, at a tiny size (``tests/cluster/recsys.py``).

The last two steps (the ranker and the evaluation) run on the cluster; the steps before them are made in the test
session first, as a resumed run finds them. Every step runs on the cluster in one application in
tests/cluster/test_packed_env.py; here each step is an application of its own, and all eight took 17 minutes of
the tier on a loaded 2-core machine (recall alone 4), so two are enough to show subprocess mode."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.recsys import DATE, LOCAL_STEPS, recsys_definition, run_locally
from tests.cluster.standalone import EXECUTORS

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def test_recsys_pipeline_with_spark_submit_on_two_executors(cluster, spark, tmp_path):
    data = recsys_definition()
    out = tmp_path / "out"
    run_locally(spark, data, out, (*LOCAL_STEPS, "split", "item2vec", "index", "build_pq", "recall", "features"))
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
    manifest_path = sorted((out / "_runs" / f"ds={DATE}").glob("*/manifest.json"))[-1]  # the cluster run's
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "succeeded" and manifest["mode"] == "subprocess"
    steps = {s["name"]: s for s in manifest["steps"]}
    assert {n for n, s in steps.items() if s["status"] == "ran"} == {"rank", "evaluate"}
    assert "spark-submit" in steps["rank"]["command"][0] and "--py-files" in steps["rank"]["command"]
    for name in ("rank", "evaluate"):
        spark = steps[name]["metrics"]["spark"]
        assert spark["master"] == cluster.url and spark["executors"] == 2, name
    evaluation = steps["evaluate"]["metrics"]["evaluation"]
    assert {"ours", "ours_recall_only"} <= set(evaluation["methods"])
    assert 0.5 < evaluation["ranker"]["auc"] <= 1
