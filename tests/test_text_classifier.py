"""Corpora as files (GBK, labels from folders or a pattern, invalid bytes, duplicates), the tfidf_lr classifier
job, batch prediction and the multiclass report, each against hand-made expectations or scikit-learn."""

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from pipelines.config import read_yaml
from pipelines.ingest import IngestError, read_corpus
from pipelines.job_runtime import run_job
from pipelines.metrics.plots import confusion_png
from pipelines.resources import job_defaults
from pipelines.sampling import stratified_split
from pipelines.text.classifier import evaluate, fit_text_classifier, predict_labels, text_tokenizer
from pipelines.text.tokenizer import TextTokenizer

GBK_DOCS = {"体育/a.txt": "中国队赢得了比赛", "体育/b.txt": "足球联赛今晚开始", "财经/c.txt": "股票市场大幅上涨"}


def _write(root, docs, encoding):
    for name, text in docs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)


def test_gbk_files_decode_with_labels_from_folders(spark, tmp_path):
    _write(tmp_path, GBK_DOCS, "gbk")
    got = read_corpus(spark, str(tmp_path), "files", encoding="gbk").data
    rows = {r.doc_id: (r.label, r.text) for r in got.collect()}
    assert rows == {name: (name.split("/")[0], text) for name, text in GBK_DOCS.items()}


def test_gbk_lines_latin1_json_and_big5_parquet_bytes_decode_with_the_same_option(spark, tmp_path):
    texts = ["第一行文本", "第二行", "繁體中文"]
    (tmp_path / "lines.txt").write_bytes("\n".join(texts).encode("gbk") + b"\n")
    got = read_corpus(spark, str(tmp_path / "lines.txt"), "text", encoding="gbk").data
    assert [r.text for r in got.orderBy("doc_id").collect()] == texts
    latin = ["café", "naïve façade"]
    lines = [json.dumps({"id": str(i), "text": t, "cls": "a"}, ensure_ascii=False) for i, t in enumerate(latin)]
    (tmp_path / "docs.jsonl").write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    got = read_corpus(spark, str(tmp_path / "docs.jsonl"), "json", encoding="latin-1", label_col="cls").data
    assert sorted(tuple(r) for r in got.collect()) == [(str(i), t, "a") for i, t in enumerate(latin)]
    chinese = [json.dumps({"id": str(i), "text": t}, ensure_ascii=False) for i, t in enumerate(texts)]
    (tmp_path / "gbk.jsonl").write_bytes("\n".join([*chinese, '{"id": "9", "te', ""]).encode("gbk") + b"\n")
    got = read_corpus(spark, str(tmp_path / "gbk.jsonl"), "json", encoding="gbk")
    assert sorted(tuple(r) for r in got.data.collect()) == [(str(i), t) for i, t in enumerate(texts)]
    assert (got.rows_in, got.rows_malformed) == (4, 1)
    assert [r.record for r in got.malformed.collect()] == ['{"id": "9", "te']
    spark.createDataFrame(
        [(i, t.encode("big5")) for i, t in enumerate(texts[2:])], "id INT, text BINARY"
    ).write.parquet(str(tmp_path / "big5"))
    got = read_corpus(spark, str(tmp_path / "big5"), "parquet", id_type="INT", encoding="big5").data
    assert [tuple(r) for r in got.collect()] == [(0, "繁體中文")]


def test_labels_from_a_pattern_glob_filter_and_unknown_encoding(spark, tmp_path):
    _write(tmp_path, {"2024/sport-1.txt": "a", "2024/econ-2.txt": "b", "2024/notes.md": "c"}, "utf-8")
    got = read_corpus(spark, str(tmp_path), "files", options={"pathGlobFilter": "*.txt"}, label_pattern=r"/(\w+)-\d+")
    assert sorted(tuple(r) for r in got.data.select("doc_id", "label").collect()) == [
        ("2024/econ-2.txt", "econ"),
        ("2024/sport-1.txt", "sport"),
    ]
    with pytest.raises(IngestError, match="input.encoding: unknown encoding 'gbkk'"):
        read_corpus(spark, str(tmp_path), "files", encoding="gbkk")


def test_dedupe_keeps_the_smallest_id_of_byte_identical_files(spark, tmp_path):
    _write(tmp_path, {"x/1.txt": "same", "y/0.txt": "same", "x/2.txt": "other", "y/3.txt": "same "}, "utf-8")
    got = read_corpus(spark, str(tmp_path), "files", dedupe=True)
    assert got.duplicates == 1 and got.rows_in == 4
    assert sorted(r.doc_id for r in got.data.collect()) == ["x/1.txt", "x/2.txt", "y/3.txt"]  # x/1 < y/0


def test_invalid_bytes_over_the_threshold_stop_with_one_line(spark, tmp_path, capsys):
    docs = {f"c/{i:02d}.txt": "正常的文本" for i in range(9)}
    docs["c/99.txt"] = "坏".encode("gbk") + b"\x81"  # a lead byte with no trail byte: invalid GBK
    _write(tmp_path / "corpus", docs, "gbk")
    src = tmp_path / "corpus"
    assert (
        run_job(
            "train_text_classifier",
            ["--set", f"input.path={src}", "--set", "input.encoding=gbk", "--set", f"output.path={tmp_path / 'out'}"],
        )
        == 1
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "1 of 10 documents" in line and f"{src}/c/99.txt" in line
    assert "input.encoding 'gbk'" in line and "input.max_invalid_fraction 1.00%" in line


def test_stratified_split_takes_each_class_share_whatever_the_row_order(spark):
    rows = [(i, "a" if i < 50 else "b" if i < 57 else "c") for i in range(60)]
    df = spark.createDataFrame(rows, "doc_id INT, label STRING")
    rest, part = stratified_split(df, "label", 0.2, 3, "test")
    counts = {r.label: r["count"] for r in part.groupBy("label").count().collect()}
    assert counts == {"a": 10, "b": 1, "c": 1}  # round(0.2 * n) of 50, 7 and 3 rows
    assert rest.count() + part.count() == 60 and rest.join(part, "doc_id").isEmpty()
    shuffled = spark.createDataFrame(rows[::-1], "doc_id INT, label STRING").repartition(3)
    again = stratified_split(shuffled, "label", 0.2, 3, "test")[1]
    assert sorted(r.doc_id for r in again.collect()) == sorted(r.doc_id for r in part.collect())


TOPICS = {
    "sport": ["match", "goal", "team", "league", "coach", "score"],
    "money": ["stock", "bank", "market", "price", "trade", "fund"],
    "space": ["rocket", "orbit", "planet", "launch", "moon", "star"],
}


def _corpus(root, n, seed):
    rng = np.random.default_rng(seed)
    docs = {
        f"{label}/{label}_{i}.txt": " ".join(rng.choice(words, 6)) for label, words in TOPICS.items() for i in range(n)
    }
    _write(root, docs, "utf-8")
    return docs


def test_tfidf_lr_fit_save_load_predict(spark, tmp_path):
    """The library path on a tiny separable corpus: predictions of the loaded model equal the fitted one's."""
    rng = np.random.default_rng(2)
    rows = [
        (f"{label}/{i}", " ".join(rng.choice(words, 5)), label) for label, words in TOPICS.items() for i in range(8)
    ]
    docs = spark.createDataFrame(rows, "doc_id STRING, text STRING, label STRING")
    cfg = read_yaml(job_defaults("train_text_classifier"))
    cfg["tfidf_lr"].update(reg_param=[0.01], max_iter=10)
    cfg["tfidf_lr"]["tfidf"]["min_df"] = 1
    tokenizer = text_tokenizer(TextTokenizer())
    model, summary = fit_text_classifier(tokenizer.transform(docs), tokenizer, cfg, lambda message: None)
    assert summary["classes"] == sorted(TOPICS) and summary["chosen"]["reg_param"] == 0.01
    model.save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))
    new = spark.createDataFrame(
        [("n1", "goal goal coach"), ("n2", "orbit moon"), ("n3", "bank fund price")], "doc_id STRING, text STRING"
    )
    before = predict_labels(model, new, ["doc_id"]).toPandas().sort_values("doc_id")
    after = predict_labels(loaded, new, ["doc_id"]).toPandas().sort_values("doc_id")
    assert before["predicted_label"].tolist() == after["predicted_label"].tolist() == ["sport", "space", "money"]
    np.testing.assert_allclose(before["probability"], after["probability"], rtol=1e-12)


@pytest.mark.slow
def test_tfidf_lr_train_save_load_and_predict_text_job(spark, tmp_path):
    _corpus(tmp_path / "train", 12, 0)
    (tmp_path / "train" / "money" / "latin1.txt").write_bytes(b"bank march\xe9 price")  # invalid UTF-8, 1 of 37
    _corpus(tmp_path / "new", 3, 1)
    out = tmp_path / "clf"
    code = run_job(
        "train_text_classifier",
        [
            "--set",
            f"input.path={tmp_path / 'train'}",
            "--set",
            f"output.path={out}",
            "--set",
            "input.max_invalid_fraction=0.05",
            "--set",
            "tfidf_lr.reg_param=[0.01, 0.001]",
            "--set",
            "tfidf_lr.max_iter=30",
        ],
    )
    assert code == 0
    metrics = json.loads((out / "model" / "_metrics.json").read_text())
    corpus = metrics["text"]["corpus"]
    assert corpus["invalid_documents"] == 1 and corpus["invalid_example"] == "money/latin1.txt"
    assert metrics["test"]["accuracy"] == 1.0 and metrics["test"]["labels"] == sorted(TOPICS)
    assert metrics["classifier"]["classes"] == sorted(TOPICS) and len(metrics["classifier"]["validation"]) == 2
    assert (out / "report" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    preds = tmp_path / "preds"
    assert (
        run_job(
            "predict_text",
            [
                "--set",
                f"model_path={out / 'model'}",
                "--set",
                f"input.path={tmp_path / 'new'}",
                "--set",
                f"output.path={preds}",
            ],
        )
        == 0
    )
    got = spark.read.parquet(str(preds)).toPandas().sort_values("doc_id").reset_index(drop=True)
    assert (got["predicted_label"] == got["label"]).all() and len(got) == 9
    model = PipelineModel.load(str(out / "model"))
    new = read_corpus(spark, str(tmp_path / "new"), "files").data.selectExpr("doc_id", "CAST(text AS STRING) text")
    direct = predict_labels(model, new, ["doc_id"]).toPandas().sort_values("doc_id").reset_index(drop=True)
    assert direct["predicted_label"].tolist() == got["predicted_label"].tolist()
    np.testing.assert_allclose(direct["probability"], got["probability"], rtol=1e-12)
    assert (got["probability"] > 1.0 / 3).all()


def test_predict_text_refuses_a_model_that_is_not_a_text_classifier(spark, tmp_path, capsys):
    PipelineModel([]).save(str(tmp_path / "empty"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    assert (
        run_job(
            "predict_text",
            [
                "--set",
                f"model_path={tmp_path / 'empty'}",
                "--set",
                f"input.path={tmp_path / 'docs'}",
                "--set",
                f"output.path={tmp_path / 'o'}",
            ],
        )
        == 1
    )
    assert "not a text classifier" in capsys.readouterr().err


def test_unknown_model_is_one_line(tmp_path, capsys):
    assert run_job("train_text_classifier", ["--set", "model=bert", "--set", f"input.path={tmp_path}"]) == 1
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == "error: model: expected one of ['tfidf_lr', 'fasttext'], got 'bert'"
    )


@pytest.mark.slow  # over 9 s: the unit tier stays under 10 minutes
def test_fasttext_plugs_into_the_same_classifier_pipeline(spark, tmp_path):
    """``model: fasttext`` through the library path: the saved pipeline turns text into the right label strings."""
    rng = np.random.default_rng(3)
    rows = [
        (f"{label}/{i}", " ".join(rng.choice(words, 5)), label) for label, words in TOPICS.items() for i in range(8)
    ]
    docs = spark.createDataFrame(rows, "doc_id STRING, text STRING, label STRING")
    cfg = read_yaml(job_defaults("train_text_classifier"))
    cfg["model"] = "fasttext"
    cfg["fasttext"].update(dim=8, lr=0.5, epoch=20, num_partitions=1)
    tokenizer = text_tokenizer(TextTokenizer())
    model, summary = fit_text_classifier(tokenizer.transform(docs), tokenizer, cfg, lambda message: None)
    assert summary["classes"] == sorted(TOPICS) and summary["settings"]["epoch"] == 20
    model.save(str(tmp_path / "model"))
    new = spark.createDataFrame(
        [("n1", "goal goal coach"), ("n2", "orbit moon"), ("n3", "bank fund price")], "doc_id STRING, text STRING"
    )
    got = predict_labels(PipelineModel.load(str(tmp_path / "model")), new, ["doc_id"]).toPandas()
    assert got.sort_values("doc_id")["predicted_label"].tolist() == ["sport", "space", "money"]


def test_multiclass_report_matches_scikit_learn(spark):
    rng = np.random.default_rng(5)
    labels = rng.choice(["ant", "bee", "cat", "dog"], 300, p=[0.5, 0.3, 0.15, 0.05])
    predicted = np.where(rng.random(300) < 0.7, labels, rng.choice(["ant", "bee", "cat", "eel"], 300))
    table = spark.createDataFrame(pd.DataFrame({"label": labels, "predicted_label": predicted}))
    report = evaluate(table)
    classes = sorted(set(labels) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    assert report["labels"] == classes
    np.testing.assert_array_equal(report["confusion_matrix"], confusion_matrix(labels, predicted, labels=classes))
    np.testing.assert_allclose(report["precision"], precision)
    np.testing.assert_allclose(report["recall"], recall)
    np.testing.assert_allclose(report["f1"], f1)
    np.testing.assert_allclose(report["support"], support)
    macro = precision_recall_fscore_support(labels, predicted, average="macro", zero_division=0)[2]
    weighted = precision_recall_fscore_support(labels, predicted, average="weighted", zero_division=0)[2]
    assert report["accuracy"] == pytest.approx(np.mean(labels == predicted))
    assert report["macro_f1"] == pytest.approx(macro) and report["weighted_f1"] == pytest.approx(weighted)
    png = confusion_png([f"C{i}-class" for i in range(20)], np.eye(20) * 5 + 1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
