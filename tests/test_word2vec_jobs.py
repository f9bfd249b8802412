"""The train_word2vec and evaluate_embeddings jobs end to end: text corpus, item2vec on generated
sessions (neighbours share the item's genre), evaluation files, batch queries, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.datagen.sessions import items_chunk, sessions_chunk
from pipelines.job_runtime import run_job
from pipelines.word2vec.model import Word2VecModel

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--set", "model.vector_size=16", "--set", "model.epochs=3", "--set", "model.syncs_per_epoch=2"]


def job(name: str, argv: list[str]) -> int:
    return run_job(name, argv)


def metrics(path: Path) -> dict:
    return json.loads((path / "_metrics.json").read_text())


def test_item2vec_on_sessions_puts_same_genre_items_together(spark, tmp_path):
    sessions = pd.concat([sessions_chunk(7, c, c * 300, 300, n_items=120) for c in range(2)])
    spark.createDataFrame(sessions).write.parquet(str(tmp_path / "interactions"))
    spark.createDataFrame(items_chunk(7, 0, 0, 120, n_items=120)).write.parquet(str(tmp_path / "items"))
    out = tmp_path / "w2v"
    assert (
        job(
            "train_word2vec",
            [
                "--set",
                "input.kind=sessions",
                "--set",
                f"input.path={tmp_path / 'interactions'}",
                "--set",
                "model.min_count=2",
                "--set",
                "model.sample=0",
                "--set",
                f"output.path={out}",
                *SMALL,
            ],
        )
        == 0
    )
    trained = metrics(out / "vectors")["word2vec"]
    assert trained["input"] == "sessions" and 100 < trained["vocabulary"] <= 120
    assert (
        job(
            "evaluate_embeddings",
            [
                "--set",
                f"model_path={out / 'model'}",
                "--set",
                "kind=items",
                "--set",
                f"items.path={tmp_path / 'items'}",
                "--set",
                f"output.path={tmp_path / 'eval'}",
            ],
        )
        == 0
    )
    quality = metrics(tmp_path / "eval" / "results")["evaluation"]
    assert quality["same_category_share"] > 0.5 > 3 * quality["chance"]


def write_eval_files(root: Path) -> None:
    root.mkdir()
    (root / "questions-words.txt").write_text(
        ": family\nMan King Woman Queen\nboy girl man woman\nman king boy girl\nman king unknown queen\n"
    )
    pairs = "# header\n# header\nman\tboy\t9.0\nman\tking\t7.5\nking\tapple\t1.0\nqueen\tpear\t0.5\n"
    (root / "wordsim353.tsv").write_text(pairs)
    (root / "simlex999.txt").write_text(pairs)


def test_train_text_corpus_then_evaluate_words_and_answer_queries(spark, tmp_path, capsys):
    lines = [" ".join(np.random.default_rng(i).choice(["red", "green", "blue", "Sky's", "sea"], 8)) for i in range(200)]
    spark.createDataFrame([(i, t) for i, t in enumerate(lines)], "doc_id BIGINT, text STRING").write.parquet(
        str(tmp_path / "corpus")
    )
    out = tmp_path / "w2v"
    assert (
        job(
            "train_word2vec",
            [
                "--set",
                f"input.path={tmp_path / 'corpus'}",
                "--set",
                "model.trainer=ppmi",
                "--set",
                f"output.path={out}",
                *SMALL,
            ],
        )
        == 0
    )
    assert metrics(out / "model")["word2vec"]["vocabulary"] == 5
    text = (out / "text" / "vectors.txt").read_text().splitlines()
    assert text[0] == "5 16" and {t.split()[0] for t in text[1:]} == {"red", "green", "blue", "sky's", "sea"}
    assert spark.read.parquet(str(out / "vectors")).count() == 5

    model = Word2VecModel(
        ["man", "woman", "king", "queen", "apple", "pear", "boy", "girl"],
        np.arange(8, 0, -1),
        np.array(
            [
                [1, 0, 0, 0],
                [1, 1, 0, 0],
                [1, 0, 1, 0],
                [1, 1, 1, 0],
                [0, 0, 0, 1],
                [0, 0.1, 0, 1],
                [1, 0, 0.1, 0.1],
                [1, 1, 0.1, 0.1],
            ]
        ),
    )
    model.save(str(tmp_path / "hand"))
    write_eval_files(tmp_path / "eval_files")
    spark.createDataFrame([("apple",)], "word STRING").write.parquet(str(tmp_path / "queries"))
    assert (
        job(
            "evaluate_embeddings",
            [
                "--set",
                f"model_path={tmp_path / 'hand'}",
                "--set",
                f"eval_dir={tmp_path / 'eval_files'}",
                "--set",
                f"queries.path={tmp_path / 'queries'}",
                "--set",
                "queries.k=1",
                "--set",
                f"output.path={tmp_path / 'eval'}",
            ],
        )
        == 0
    )
    quality = metrics(tmp_path / "eval" / "results")["evaluation"]
    assert quality["analogy"]["questions"] == 3 and quality["analogy"]["accuracy"] == pytest.approx(2 / 3)
    assert quality["wordsim353"]["pairs"] == 4 and quality["wordsim353"]["spearman"] > 0.7
    answers = spark.read.parquet(str(tmp_path / "eval" / "answers")).first()
    assert answers["neighbours"] == ["pear"]


def test_bad_input_is_one_clear_error(spark, tmp_path, capsys):
    spark.createDataFrame([(1, "a b c"), (2, "d e f")], "doc_id BIGINT, text STRING").write.parquet(str(tmp_path / "c"))
    assert (
        job("train_word2vec", ["--set", f"input.path={tmp_path / 'c'}", "--set", f"output.path={tmp_path / 'o'}"]) == 1
    )
    assert "error: no word occurs at least min_count=5 times in 6 tokens" in capsys.readouterr().err
    spark.createDataFrame([(1, "1 2 3 !")], "doc_id BIGINT, text STRING").write.parquet(str(tmp_path / "digits"))
    assert (
        job("train_word2vec", ["--set", f"input.path={tmp_path / 'digits'}", "--set", f"output.path={tmp_path / 'o'}"])
        == 1
    )
    assert "error: the corpus has no tokens" in capsys.readouterr().err
    assert job("train_word2vec", ["--set", "model.combine=median"]) == 1
    assert "combine: expected one of ['rows', 'sum', 'average']" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
