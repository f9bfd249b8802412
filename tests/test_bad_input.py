"""Bad input is refused, never dropped (issue 15, item 6).

Labels other than 0 and 1 fail ``train_gbdt_lr`` and ``train_ranker`` before any split, with their count and
examples. Failures inside Spark (a truncated Parquet file, a missing or corrupt model directory, an ANSI cast
error) end a real job, run in-process in the test session, with one ``error:`` line naming the path and the
cause and exit code 1; ``--verbose`` lets the exception through with its traceback.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from pyspark.errors import NumberFormatException
from pyspark.ml import Pipeline
from pyspark.ml.feature import SQLTransformer

from pipelines.errors import describe_failure
from pipelines.job_runtime import run_job
from pipelines.recsys.features import CATEGORICAL, LABEL, NUMERIC
from pipelines.registry import JOBS

ROOT = Path(__file__).resolve().parents[1]
CLICKS = (
    "click_id BIGINT, label INT, i1 INT, i2 DOUBLE, i3 DOUBLE, i4 INT, i5 DOUBLE, i6 DOUBLE, "
    "c1 STRING, c2 STRING, c3 STRING, c4 STRING"
)


def job(name: str, *sets: str, extra: tuple[str, ...] = ()) -> int:
    return run_job(name, [arg for s in sets for arg in ("--set", s)] + list(extra))


def one_error_line(capsys) -> str:
    """The single ``error:`` line a failed job printed last; before it only the job's ``[job  1.2s]`` progress
    lines, so no Python traceback and no PySpark error log (a JSON line holding the JVM stack trace)."""
    *progress, last = capsys.readouterr().err.rstrip().splitlines()
    assert last.startswith("error: ")
    assert all(line.startswith("[") for line in progress), progress
    return last


def click_row(i: int, label: int | None) -> tuple:
    return (i, label, i, 0.5 * i, 1.0, 2, 3.0, 4.0, f"a{i % 3}", f"b{i % 2}", f"c{i % 4}", f"id{i}")


def test_train_gbdt_lr_refuses_labels_other_than_0_and_1(spark, tmp_path, capsys):
    labels = [0, 1] * 20 + [2, None, 7, 2]
    data, out = tmp_path / "clicks", tmp_path / "gbdt_lr"
    spark.createDataFrame([click_row(i, y) for i, y in enumerate(labels)], CLICKS).write.parquet(str(data))
    assert job("train_gbdt_lr", f"input.path={data}", f"output.path={out}") == 1
    assert one_error_line(capsys) == (
        f"error: {data}: label column 'label' must be 0 or 1 in every row; 4 rows are not, e.g. null, 2, 7"
    )
    assert not out.exists()


def test_train_ranker_refuses_bad_labels_in_any_split(spark, tmp_path, capsys):
    schema = ", ".join(
        [
            "split STRING",
            f"{LABEL} DOUBLE",
            "user_id BIGINT",
            "item_id BIGINT",
            *[f"{c} DOUBLE" for c in NUMERIC],
            *[f"{c} STRING" for c in CATEGORICAL],
        ]
    )
    rows = [
        ("valid" if i % 2 else "test", label, i, i, *[float(i)] * len(NUMERIC), f"cat{i % 3}")
        for i, label in enumerate([0.0, 1.0] * 10 + [0.5, None])
    ]  # 0.5 and null land in the test split
    features, out = tmp_path / "features", tmp_path / "ranker"
    spark.createDataFrame(rows, schema).write.parquet(str(features))
    assert job("train_ranker", f"input.features={features}", f"output.path={out}") == 1
    assert one_error_line(capsys) == (
        f"error: {features}: label column 'label' must be 0 or 1 in every row; 2 rows are not, e.g. null, 0.5"
    )
    assert not out.exists()


@pytest.fixture()
def scores(spark, tmp_path) -> Path:
    """A one-file scored table (``label INT, score DOUBLE``), as ``jobs/evaluate.py`` reads it."""
    path = tmp_path / "scores"
    spark.createDataFrame([(i % 2, i / 100) for i in range(100)], "label INT, score DOUBLE").coalesce(1).write.parquet(
        str(path)
    )
    return path


@pytest.mark.parametrize(
    "checksums, cause",
    [
        (
            "removed",
            r"\[FAILED_READ_FILE\.\w+\] Encountered error while reading file file:\S+/(part-\S+\.parquet)\. "
            r".*; caused by RuntimeException: .*\1 is not a Parquet file",
        ),
        ("kept", r"ChecksumException: Checksum error: file:\S+/(part-\S+\.parquet) at \d+"),
    ],
)
def test_truncated_parquet_input_is_one_line(scores, tmp_path, capsys, checksums, cause):
    [part] = scores.glob("part-*.parquet")
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    if checksums == "removed":  # a file cut short by another tool, with no Hadoop checksum beside it
        for crc in scores.glob(".*.crc"):
            crc.unlink()
    assert job("evaluate", f"input.path={scores}", f"output.path={tmp_path / 'out'}") == 1
    line = one_error_line(capsys)
    assert line.startswith("error: evaluate: ")
    match = re.search(cause, line)
    assert match and match.group(1) == part.name, line


def test_missing_model_directory_is_one_line(spark, tmp_path, capsys):
    model = tmp_path / "no_model"
    assert job("search_pq", f"items.model_path={model}", f"output.path={tmp_path / 'out'}") == 1
    assert one_error_line(capsys) == (
        f"error: {model}: cannot load the model: [PATH_NOT_FOUND] Path does not exist: file:{model}/metadata."
    )


def saved_scoring_model(spark, path: Path) -> None:
    """A model directory as ``train_gbdt_lr`` leaves it (Spark ML pipeline, metrics, configuration), tiny."""
    Pipeline(stages=[SQLTransformer(statement="SELECT *, 0.5 AS score FROM __THIS__")]).fit(
        spark.range(1)
    ).write().save(str(path))
    (path / "_metrics.json").write_text(json.dumps({"model_version": "v1"}))
    (path / "_config.yaml").write_text("schema: {label: label, numeric: [x], categorical: [], hashed: []}\n")


def delete_metadata(model: Path) -> str:
    shutil.rmtree(model / "metadata")
    return f"[PATH_NOT_FOUND] Path does not exist: file:{model}/metadata."


def garble_metadata(model: Path) -> str:
    for part in (model / "metadata").glob("part-*"):
        part.write_text("garbage{")
    for crc in (model / "metadata").glob(".*.crc"):
        crc.unlink()
    return "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"


@pytest.mark.parametrize("corrupt", [delete_metadata, garble_metadata], ids=["metadata_deleted", "metadata_garbage"])
def test_corrupt_model_directory_is_one_line(spark, tmp_path, capsys, corrupt):
    model, data = tmp_path / "model", tmp_path / "rows"
    saved_scoring_model(spark, model)
    spark.createDataFrame([(1, 2.0)], "click_id BIGINT, x DOUBLE").write.parquet(str(data))
    cause = corrupt(model)
    assert job("score", f"model_path={model}", f"input.path={data}", f"output.path={tmp_path / 'out'}") == 1
    assert one_error_line(capsys) == f"error: {model}: cannot load the model: {cause}"
    assert not (tmp_path / "out").exists()


ANSI_CAST = ['positive_label="pos"', 'negative_label="neg"']  # strings against an INT label column


def test_ansi_cast_error_is_one_line(scores, tmp_path, capsys):
    assert job("evaluate", f"input.path={scores}", f"output.path={tmp_path / 'out'}", *ANSI_CAST) == 1
    line = one_error_line(capsys)
    assert line.startswith(
        "error: evaluate: [CAST_INVALID_INPUT] The value 'pos' of the type \"STRING\" cannot be cast to "
    )
    assert "SQLSTATE" not in line and not (tmp_path / "out").exists()


def test_verbose_lets_the_exception_through(scores, tmp_path, capsys):
    with pytest.raises(NumberFormatException, match=r"CAST_INVALID_INPUT"):
        job("evaluate", f"input.path={scores}", f"output.path={tmp_path / 'out'}", *ANSI_CAST, extra=("--verbose",))
    assert "error:" not in capsys.readouterr().err


def broken_job(ctx) -> None:
    """A job with a bug in it (registered in place of evaluate by the test below)."""
    {}["no such key"]


def test_a_bug_keeps_its_traceback(spark, tmp_path, monkeypatch):
    monkeypatch.setitem(JOBS, "evaluate", dataclasses.replace(JOBS["evaluate"], target=f"{__name__}:broken_job"))
    assert describe_failure(KeyError("no such key")) is None
    with pytest.raises(KeyError):
        job("evaluate", f"output.path={tmp_path / 'out'}")
