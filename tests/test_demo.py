"""``make demo``'s job: the recommender pipeline (recsys_demo.yaml) end to end at a tiny size, in the test session,
tracked into the tests' MLflow store (``tracked_demo`` in tests/conftest.py).

Checks every step ran and committed, the item vectors were learnt from history only (no target leaks into
item2vec), the candidates exclude nothing they should not, the evaluation's figures agree with its lists, and
the HTML report embeds the recall@k plot; the funnel the demo prints takes each stage from the manifest.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from pipelines.demo import funnel

ROOT = Path(__file__).resolve().parents[1]
DATE = "2026-11-20"  # tracked_demo's (tests/conftest.py)


@pytest.fixture(scope="module")
def demo(tracked_demo):
    return tracked_demo[:2]


def partition(out: Path, rel: str) -> str:
    return str(out / rel / f"ds={DATE}")


def test_demo_runs_every_step_and_reports(demo):
    code, out = demo
    assert code == 0
    [manifest_path] = list((out / "_runs" / f"ds={DATE}").glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "succeeded"
    assert {s["name"]: s["status"] for s in manifest["steps"]} == dict.fromkeys(
        [
            "generate",
            "ingest_interactions",
            "ingest_items",
            "split",
            "item2vec",
            "index",
            "build_pq",
            "recall",
            "features",
            "rank",
            "baselines",
            "evaluate",
        ],
        "ran",
    )
    html = (manifest_path.parent / "report.html").read_text()
    assert "recall_at_k.png" in html and "data:image/png;base64," in html
    assert (out / "evaluation" / "report" / f"ds={DATE}" / "recall_at_k.png").read_bytes().startswith(b"\x89PNG")


def test_item_vectors_come_from_history_only(spark, demo):
    _, out = demo
    history = spark.read.parquet(partition(out, "split/history"))
    targets = spark.read.parquet(partition(out, "split/targets"))
    vectors = spark.read.parquet(partition(out, "item2vec/vectors"))
    # item2vec trains on history sessions of at least two events (min_length); its count of each word must be
    # exactly that word's events there, so no target event reached the vectors
    sessions = history.groupBy("session_id").agg(F.count(F.lit(1)).alias("len")).filter(F.col("len") >= 2)
    counts = (
        history.join(sessions, "session_id")
        .groupBy(F.col("item_id").cast("string").alias("word"))
        .agg(F.count(F.lit(1)).alias("n"))
    )
    assert vectors.join(counts, "word").filter(F.col("count") != F.col("n")).count() == 0
    assert vectors.join(counts, "word", "left_anti").count() == 0 and vectors.count() == counts.count()
    assert targets.count() == 2 * targets.select("user_id").distinct().count()


def test_candidates_features_and_evaluation_agree(spark, demo):
    _, out = demo
    candidates = spark.read.parquet(partition(out, "recall/candidates"))
    assert candidates.groupBy("split", "user_id").count().agg(F.max("count")).first()[0] == 30
    features = spark.read.parquet(partition(out, "features"))
    assert features.count() == candidates.count()
    metrics = json.loads((out / "evaluation" / "results" / f"ds={DATE}" / "_metrics.json").read_text())
    evaluation = metrics["evaluation"]
    methods = evaluation["methods"]
    assert {
        "ours",
        "ours_recall_only",
        "popularity",
        "als",
        "ease",
        "ours_reranked",
        "ours_lr_only",
        "ours_trees_only",
    } <= set(methods)
    assert all(0 <= methods[m]["ild@10"] <= 1 and 0 < methods[m]["coverage@10"] <= 1 for m in ("ours", "ours_reranked"))
    assert methods["ours_reranked"]["ild@10"] > methods["ours"]["ild@10"]  # MMR by topic diversifies
    lists = spark.read.parquet(partition(out, "evaluation/lists"))
    targets = {
        r["user_id"]: r["item_id"]
        for r in spark.read.parquet(partition(out, "split/targets")).filter(F.col("split") == "test").collect()
    }
    for method in ("ours", "popularity"):
        ranked = {r["user_id"]: r["items"] for r in lists.filter(F.col("method") == method).collect()}
        pos = np.array([ranked.get(u, []).index(t) + 1 if t in ranked.get(u, []) else 0 for u, t in targets.items()])
        hit = (pos >= 1) & (pos <= 10)
        assert methods[method]["recall@10"] == pytest.approx(hit.mean())
        ndcg = np.where(hit, 1 / np.log2(np.maximum(pos, 1) + 1.0), 0).mean()
        assert methods[method]["ndcg@10"] == pytest.approx(ndcg)
        assert metrics["recall_at_k"][method][9] == pytest.approx(hit.mean())
    ranker = evaluation["ranker"]
    assert 0.5 < ranker["auc"] <= 1 and 0 < ranker["gauc"] <= 1
    assert methods["ours"]["users"] == len(targets)


def test_funnel_reads_each_stage_from_the_manifest():
    manifest = {
        "steps": [
            {"name": "generate", "metrics": {"datagen": {"size": 1.0}}},
            {"name": "recall", "metrics": {"recall": {"k": 100, "test_target_in_candidates": 0.8}}},
            {
                "name": "features",
                "metrics": {
                    "features": {
                        "valid": {"rows": 10, "users": 1},
                        "test": {"rows": 9_950, "positives": 80, "users": 100},
                    }
                },
            },
            {
                "name": "evaluate",
                "metrics": {
                    "evaluation": {
                        "methods": {
                            "ours": {"recall@10": 0.5, "ndcg@10": 0.3},
                            "ours_recall_only": {"recall@10": 0.4, "ndcg@10": 0.25},
                        }
                    }
                },
            },
        ]
    }
    assert funnel(manifest) == [
        "funnel (test users):",
        "  recall: 99.5 candidates per user, test target among them for 0.800 of users",
        "  ranking: top 10, test target in it for 0.500 of users (recall order 0.400)",
        "  NDCG@10: ours 0.3000, recall order 0.2500 (+20.0%)",
    ]
    evaluation_only = {"steps": [manifest["steps"][3], {"name": "recall", "metrics": None}]}
    assert funnel(evaluation_only)[1:] == funnel(manifest)[2:]
    assert funnel({"steps": []}) == []


STEPS = [
    "generate",
    "ingest_interactions",
    "ingest_items",
    "split",
    "item2vec",
    "index",
    "build_pq",
    "recall",
    "features",
    "rank",
    "baselines",
    "evaluate",
]


def test_the_demo_leaves_its_runs_metrics_and_models_in_mlflow(tracked_demo):
    """The runs listed by the ``mlflow`` command; the evaluation's NDCG@10, and the models of item2vec, build_pq
    and rank (each its step's, the champion) through MlflowClient."""
    tracking = pytest.importorskip("mlflow.tracking")
    code, out, store = tracked_demo
    assert code == 0
    uri = f"sqlite:///{store}"
    client = tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("demo").experiment_id
    command = Path(sys.executable).with_name("mlflow")
    listed = subprocess.run(
        [str(command), "runs", "list", "--experiment-id", experiment],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    assert set(runs) == {"demo", f"recsys_demo {DATE}", *STEPS}
    assert all(r.info.run_id in listed.stdout for r in runs.values()), listed.stdout
    ndcg = json.loads((out / "evaluation" / "results" / f"ds={DATE}" / "_metrics.json").read_text())["evaluation"][
        "methods"
    ]["ours"]["ndcg@10"]
    assert runs["evaluate"].data.metrics["evaluation.methods.ours.ndcg_at_10"] == pytest.approx(ndcg, rel=1e-12)
    assert runs["demo"].data.metrics["demo.evaluation.methods.ours.ndcg_at_10"] == pytest.approx(ndcg, rel=1e-12)
    for step in ("item2vec", "build_pq", "rank"):
        model = client.get_registered_model(f"demo.{step}")
        version = client.get_model_version(model.name, model.aliases["champion"])
        assert version.run_id == runs[step].info.run_id and version.tags["run_date"] == DATE
    ranker = client.get_model_version("demo.rank", client.get_registered_model("demo.rank").aliases["champion"])
    assert float(ranker.tags["metric_value"]) == runs["rank"].data.metrics["ranker.test_auc.gbdt_lr"]
