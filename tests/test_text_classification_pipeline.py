"""conf/pipelines/text_classification.yaml end to end at a tiny size (200 documents, one file each in a folder per
topic) with the runner in session mode: generate -> train_text_classifier (tfidf_lr) -> predict_text."""

from __future__ import annotations

import json

from pyspark.sql import functions as F

from tests.pipeline_runs import run_pipeline, tiny_definition

D = "2026-11-20"


def test_files_in_class_folders_to_a_classifier_its_report_and_predictions(spark, tmp_path):
    tiny = {"generate": {"size": 0.1}, "train": {"tfidf_lr.reg_param": [1e-4], "tfidf_lr.max_iter": 50}}
    definition = tiny_definition("text_classification", tmp_path, tiny)
    root = tmp_path / "out"
    manifest, report = run_pipeline(spark, definition, root, D)
    assert {s["name"]: s["status"] for s in manifest["steps"]} == dict.fromkeys(["generate", "train", "predict"], "ran")

    files = sorted((root / "raw" / "corpus_files" / f"ds={D}").glob("topic=*/doc_id=*/*.txt"))
    assert len(files) == 200 and all(len(f.read_text().splitlines()) == 1 for f in files)  # one document a file
    test = json.loads((root / "classifier" / "model" / "_metrics.json").read_text())["test"]
    assert test["rows"] == 40 and len(test["labels"]) == 8
    assert test["accuracy"] > 0.5, test  # eight topics: chance is about 0.125
    assert (root / "classifier" / "report" / f"ds={D}" / "confusion.png").stat().st_size > 1000

    predictions = spark.read.parquet(str(root / "predictions" / f"ds={D}"))
    assert predictions.count() == 200
    train_share = predictions.agg(F.avg((F.col("label") == F.col("predicted_label")).cast("int"))).first()[0]
    assert train_share > test["accuracy"] - 0.1  # four in five were training documents
    assert "text_classification 2026-11-20" in report.read_text()
