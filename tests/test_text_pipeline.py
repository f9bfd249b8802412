"""conf/pipelines/text_demo.yaml end to end at a tiny size (200 documents) with the runner in session mode:
generate -> ingest corpus and word topics -> TF-IDF and keywords -> similar documents; Word2Vec -> evaluation."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F

from pipelines.fs import HadoopFS
from pipelines.orchestration.definition import load_pipeline
from pipelines.orchestration.plan import make_plan
from tests.pipeline_runs import run_pipeline, tiny_definition

D = "2026-11-20"
STEPS = ["generate", "ingest_corpus", "ingest_words", "tfidf", "similar_docs", "word2vec", "evaluate_embeddings"]


def test_text_pipeline_runs_commits_its_outputs_and_reports(spark, tmp_path):
    definition = tiny_definition("text_demo", tmp_path, {"generate": {"size": 0.1}})
    root = tmp_path / "out"
    manifest, report = run_pipeline(spark, definition, root, D)
    pipeline = load_pipeline(definition, str(root))
    assert list(pipeline.steps) == STEPS
    assert pipeline.steps["similar_docs"].depends_on == ["tfidf"]
    assert pipeline.steps["evaluate_embeddings"].depends_on == ["ingest_words", "word2vec"]
    assert manifest["status"] == "succeeded"
    assert {s["name"]: s["status"] for s in manifest["steps"]} == dict.fromkeys(STEPS, "ran")
    for step in pipeline.steps.values():
        for path in step.output_paths(D):
            assert (Path(path) / "_SUCCESS").is_file(), path
    assert all(p.action == "skip" for p in make_plan(pipeline, D, HadoopFS(spark)))  # a re-run does nothing

    def table(rel: str):
        return spark.read.parquet(str(root / rel / f"ds={D}"))

    per_doc = table("tfidf/keywords").groupBy("doc_id").count()
    assert per_doc.count() > 190 and per_doc.agg(F.max("count")).first()[0] == 8
    similar = table("similar_docs")
    assert similar.filter("doc_id = neighbour_id").count() == 0
    assert similar.groupBy("doc_id").count().agg(F.min("count")).first()[0] == 5
    answered = table("word2vec_evaluation/answers").filter(F.size("neighbours") == 5)
    assert answered.count() > 1000
    evaluation = next(s for s in manifest["steps"] if s["name"] == "evaluate_embeddings")["metrics"]["evaluation"]
    assert evaluation["same_category_share"] > 2 * evaluation["chance"], evaluation  # 0.49 vs 0.13 when written

    page = report.read_text()
    assert report.name == "report.html" and "<title>text_demo 2026-11-20</title>" in page
    assert "<h2>Key metrics</h2>" in page and "same_category_share" in page
    for sample in ("term (by rank)", "neighbour_id (by rank)", "<th>neighbours</th>", "<th>similarities</th>"):
        assert sample in page, sample
