"""Bad text input (null/empty documents, invalid UTF-8, duplicate ids), the two jobs end to end, shared data."""

import gzip
import json
from pathlib import Path

import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from pipelines.job_runtime import run_job
from pipelines.text.stop_words import stop_words
from pipelines.text.tokenizer import TextTokenizer
from pipelines.text.validation import TextInputError, clean_corpus

ROOT = Path(__file__).resolve().parents[1]


def test_null_empty_and_invalid_utf8_documents_are_kept_repaired_and_counted(spark):
    docs = spark.createDataFrame(
        [(1, b"caf\xe9 au lait"), (2, None), (3, b"   "), (4, b"fine"), (5, b"")], "doc_id BIGINT, text BINARY"
    )
    cleaned, counts = clean_corpus(docs)
    assert counts.as_dict() == {"documents": 5, "empty_documents": 3, "invalid_documents": 1, "invalid_example": 1}
    texts = dict(cleaned.select("doc_id", "text").collect())
    assert texts == {1: "caf\ufffd au lait", 2: "", 3: "   ", 4: "fine", 5: ""}


def test_duplicate_and_null_ids_are_clear_errors(spark):
    dup = spark.createDataFrame([("a", "x"), ("b", "y"), ("b", "z"), ("b", "w")], "doc_id STRING, text STRING")
    with pytest.raises(TextInputError, match=r"duplicate document id 'b' in column 'doc_id' \(3 documents share it\)"):
        clean_corpus(dup)
    null = spark.createDataFrame([(None, "x"), ("b", "y")], "doc_id STRING, text STRING")
    with pytest.raises(TextInputError, match=r"1 document\(s\) have a null id in column 'doc_id'"):
        clean_corpus(null)


CORPUS = [  # one document per line; ids are line numbers
    b"Spark builds TF-IDF features for large text corpora.",
    b"scikit-learn builds TF-IDF features for small text corpora.",
    b"Chess openings: the Sicilian defence and the French defence.",
    b"The Sicilian defence is a popular chess opening.",
    b"",
    b"Spark clusters run large jobs.",
    b"d\xe9fense of chess",
]


def _run(job, argv):
    return run_job(job, argv)


def test_build_tfidf_then_similar_docs_in_corpus_and_query_mode(spark, tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_bytes(b"\n".join(CORPUS) + b"\n")
    out = tmp_path / "tfidf"
    code = _run(
        "build_tfidf",
        [
            "--set",
            f"input.path={src}",
            "--set",
            "input.format=text",
            "--set",
            "input.max_invalid_fraction=0.2",  # 1 of 7 lines holds Latin-1
            "--set",
            f"output.path={out}",
            "--set",
            "keywords.k=2",
        ],
    )
    assert code == 0
    metrics = json.loads((out / "keywords" / "_metrics.json").read_text())
    assert metrics["text"]["corpus"] == {
        "documents": 7,
        "empty_documents": 1,
        "invalid_documents": 1,
        "invalid_example": 6,
        "malformed_records": 0,
        "encoding": "utf-8",
        "duplicates": 0,
    }
    assert metrics["text"]["tfidf"]["empty_vectors"] == 1 and metrics["rows_out"]["features"] == 7
    keywords = {(r.doc_id, r.rank): r.term for r in spark.read.parquet(str(out / "keywords")).collect()}
    assert keywords[(5, 1)] == "clusters" and keywords[(5, 2)] == "jobs"
    model = PipelineModel.load(str(out / "model"))
    assert (out / "model" / "_metrics.json").exists() and len(model.stages) == 3

    similar = tmp_path / "similar"
    code = _run("similar_docs", ["--set", f"tfidf_path={out}", "--set", f"output.path={similar}", "--set", "k=1"])
    assert code == 0
    top = {r.doc_id: r.neighbour_id for r in spark.read.parquet(str(similar)).collect()}
    assert top[0] == 1 and top[2] == 3 and top[5] == 0 and 4 not in top

    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"doc_id": 100, "text": "sicilian defence in chess"}\n{"doc_id": 101, "text": "large jobs"}\n')
    found = tmp_path / "found"
    code = _run(
        "similar_docs",
        [
            "--set",
            "mode=query",
            "--set",
            f"tfidf_path={out}",
            "--set",
            f"query.path={queries}",
            "--set",
            "query.format=json",
            "--set",
            f"output.path={found}",
            "--set",
            "k=1",
            "--set",
            "method=inverted_index",
            "--set",
            "max_df_fraction=0.4",
            "--set",
            "candidates=3",
        ],
    )
    assert code == 0
    assert {r.doc_id: r.neighbour_id for r in spark.read.parquet(str(found)).collect()} == {100: 2, 101: 5}


def test_duplicate_ids_fail_the_job_in_one_line(spark, tmp_path, capsys):
    src = tmp_path / "dup.jsonl"
    src.write_text('{"id": 1, "body": "a b"}\n{"id": 1, "body": "c d"}\n')
    out = tmp_path / "tfidf"
    code = _run(
        "build_tfidf",
        [
            "--set",
            f"input.path={src}",
            "--set",
            "input.format=json",
            "--set",
            "input.id_col=id",
            "--set",
            "input.text_col=body",
            "--set",
            f"output.path={out}",
        ],
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "error: duplicate document id 1 in column 'doc_id' (2 documents share it); document ids must be unique"
    )
    assert not out.exists()


@pytest.mark.slow
def test_thucnews_segmentation_gives_words(spark, shared_data):
    path = shared_data / "zh_thucnews_titles" / "dev.txt.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        titles = [(i, line.split("\t")[0]) for i, line in zip(range(2000), f)]
    docs = spark.createDataFrame(titles, "doc_id BIGINT, text STRING")
    tokens = TextTokenizer(segmenter="jieba", stopWords=stop_words(["chinese"])).transform(docs)
    chars = tokens.select(F.explode("tokens").alias("t")).agg(F.avg(F.char_length("t"))).first()[0]
    assert chars > 1.4
