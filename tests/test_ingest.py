"""Ingest: formats, declared schemas, quarantine with a threshold, and one clear error per bad input."""

import json
from pathlib import Path

import pytest
from chispa import assert_df_equality

from pipelines.errors import InputError
from pipelines.ingest import IngestError, read_corpus, read_table
from pipelines.job_runtime import run_job

ROOT = Path(__file__).resolve().parents[1]
JOB = str(ROOT / "jobs" / "ingest.py")
SCHEMA = "id INT, price DOUBLE, city STRING"


def _write_csv(path: Path, n_rows: int, bad_rows: set[int]) -> Path:
    path.mkdir(parents=True)
    lines = ["id,city,price"]  # header order differs from the declared schema on purpose
    for i in range(n_rows):
        lines.append(f"{i},c{i % 3},oops" if i in bad_rows else f"{i},c{i % 3},{i * 1.5}")
    (path / "part-0.csv").write_text("\n".join(lines) + "\n")
    return path


def _expected(spark, n_rows, bad_rows):
    rows = [(i, i * 1.5, f"c{i % 3}") for i in range(n_rows) if i not in bad_rows]
    return spark.createDataFrame(rows, SCHEMA)


def test_csv_columns_are_matched_by_header_name(spark, tmp_path):
    src = _write_csv(tmp_path / "in", 10, set())
    got = read_table(spark, str(src), "csv", SCHEMA)
    assert (got.rows_in, got.rows_malformed) == (10, 0)
    assert_df_equality(got.data, _expected(spark, 10, set()), ignore_row_order=True)


def test_json_lines_and_parquet(spark, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": 1, "price": 2.5, "city": "a"}\n{"id": "x", "price": 1}\n{broken\n'
        '{"id": 3, "city": "b", "extra": true}\n'
    )
    got = read_table(spark, str(src), "json", SCHEMA)
    assert (got.rows_in, got.rows_malformed) == (4, 2)
    expected = spark.createDataFrame([(1, 2.5, "a"), (3, None, "b")], SCHEMA)
    assert_df_equality(got.data, expected, ignore_row_order=True)
    assert sorted(r.record for r in got.malformed.collect()) == ['{"id": "x", "price": 1}', "{broken"]

    pq = str(tmp_path / "pq")
    expected.write.parquet(pq)
    assert_df_equality(read_table(spark, pq, "parquet", SCHEMA).data, expected, ignore_row_order=True)


def test_parquet_wrong_type_and_missing_column(spark, tmp_path):
    pq = str(tmp_path / "pq")
    spark.createDataFrame([(1, "2.5")], "id INT, price STRING").write.parquet(pq)
    with pytest.raises(IngestError, match=r"column 'price' has type string, expected double"):
        read_table(spark, pq, "parquet", "id INT, price DOUBLE")
    with pytest.raises(IngestError, match=r"missing column 'city' \(expected string\)"):
        read_table(spark, pq, "parquet", "id INT, city STRING")


def test_csv_missing_column_names_it(spark, tmp_path):
    src = _write_csv(tmp_path / "in", 5, set())
    with pytest.raises(IngestError, match=r"missing column\(s\) \['country'\] in the CSV header"):
        read_table(spark, str(src), "csv", SCHEMA + ", country STRING")


def test_missing_path_empty_input_bad_schema_bad_format(spark, tmp_path):
    with pytest.raises(InputError, match=r"input path not found: .*nowhere"):
        read_table(spark, str(tmp_path / "nowhere"), "csv", SCHEMA)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="empty input"):
        read_table(spark, str(empty), "csv", SCHEMA)
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,city,price\n")
    with pytest.raises(IngestError, match="empty input"):
        read_table(spark, str(header_only), "csv", SCHEMA)
    with pytest.raises(IngestError, match="cannot parse schema"):
        read_table(spark, str(header_only), "csv", "id INTEGR")
    with pytest.raises(IngestError, match="unknown table format 'xls'"):
        read_table(spark, str(header_only), "xls", SCHEMA)


def test_corpus_formats(spark, tmp_path):
    text = tmp_path / "docs.txt"
    text.write_text("first doc\nsecond doc\nthird\n")
    got = read_corpus(spark, str(text), "text")
    expected = spark.createDataFrame([(0, "first doc"), (1, "second doc"), (2, "third")], "doc_id BIGINT, text STRING")
    assert_df_equality(got.data, expected)
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"key": "a", "body": "x y"}\n{"key": "b", "body": "z"}\n')
    got = read_corpus(spark, str(jsonl), "json", id_col="key", text_col="body", id_type="STRING")
    assert_df_equality(
        got.data, spark.createDataFrame([("a", "x y"), ("b", "z")], "doc_id STRING, text STRING"), ignore_row_order=True
    )


def test_text_corpus_numbered_as_zip_with_index(spark, tmp_path):
    """Line numbers from DataFrame calls only (Spark Connect has no RDDs) are ``zipWithIndex``'s, across files and
    partitions."""
    for name, lines in [("a.txt", 40), ("b.txt", 3), ("c.txt", 25)]:
        (tmp_path / name).write_text("".join(f"{name} line {i}\n" for i in range(lines)))
    spark.conf.set("spark.sql.files.maxPartitionBytes", "200")  # several partitions per file
    try:
        got = read_corpus(spark, str(tmp_path), "text").data
        lines = spark.read.text(str(tmp_path)).rdd
        assert lines.getNumPartitions() > 3
        expected = lines.zipWithIndex().map(lambda pair: (pair[1], pair[0][0])).collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    # Read after the setting is gone: the numbers were fixed with the partitions they were counted in.
    assert_df_equality(got, spark.createDataFrame(expected, "doc_id BIGINT, text STRING"), ignore_row_order=True)
    assert got.count() == 68


def _ingest(tmp_path, src, threshold, extra=()):
    out = tmp_path / "out"
    argv = [
        "--set",
        f"input.path={src}",
        "--set",
        f"input.schema={SCHEMA}",
        "--set",
        f"output.path={out}",
        "--set",
        f"max_malformed_fraction={threshold}",
        *extra,
    ]
    return out, run_job("ingest", argv)


def test_three_percent_malformed_fails_under_one_percent_threshold(spark, tmp_path, capsys):
    src = _write_csv(tmp_path / "in", 100, {5, 50, 95})
    out, code = _ingest(tmp_path, src, 0.01)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    quarantine = tmp_path / "out_quarantine"
    assert err == (
        f"error: {src}: 3 of 100 records (3.00%) are malformed, above max_malformed_fraction 1.00%; "
        f"they were quarantined to {quarantine}"
    )
    assert spark.read.parquet(str(quarantine)).count() == 3
    assert not out.exists()


def test_three_percent_malformed_passes_under_five_percent(spark, tmp_path):
    bad = {5, 50, 95}
    src = _write_csv(tmp_path / "in", 100, bad)
    out, code = _ingest(tmp_path, src, 0.05, ["--run-date", "2026-03-01"])
    assert code == 0
    good = spark.read.parquet(str(out / "ds=2026-03-01"))
    quarantined = spark.read.parquet(str(tmp_path / "out_quarantine" / "ds=2026-03-01"))
    assert good.count() + quarantined.count() == 100
    assert_df_equality(good, _expected(spark, 100, bad), ignore_row_order=True)
    assert sorted(r.record for r in quarantined.collect()) == ["5,c2,oops", "50,c2,oops", "95,c2,oops"]
    metrics = json.loads((out / "ds=2026-03-01" / "_metrics.json").read_text())
    assert metrics["ingest"]["output"] == {
        "source": str(src),
        "rows_in": 100,
        "rows_good": 97,
        "rows_quarantined": 3,
        "malformed_fraction": 0.03,
        "quarantine_path": str(tmp_path / "out_quarantine" / "ds=2026-03-01"),
    }
    assert metrics["rows_out"] == {"output_quarantine": 3, "output": 97}
    assert metrics["run_date"] == "2026-03-01"
    assert "max_malformed_fraction: 0.05" in (out / "ds=2026-03-01" / "_config.yaml").read_text()


def test_corpus_in_gbk_with_dedupe_as_train_text_classifier_reads_it(spark, tmp_path):
    """The ingest job's corpus input takes ``encoding`` and ``dedupe`` (``read_corpus``'s keywords): GBK lines
    are decoded, a byte-identical line dropped and counted in the metrics."""
    src = tmp_path / "docs.txt"
    src.write_bytes("中国队赢得了比赛\n股票市场大幅上涨\n中国队赢得了比赛\n".encode("gbk"))
    out = tmp_path / "out"
    code = run_job(
        "ingest",
        [
            "--set",
            f"input.path={src}",
            "--set",
            "input.kind=corpus",
            "--set",
            "input.format=text",
            "--set",
            "input.encoding=gbk",
            "--set",
            "input.dedupe=true",
            "--set",
            f"output.path={out}",
        ],
    )
    assert code == 0
    got = spark.read.parquet(str(out)).orderBy("doc_id").collect()
    assert [(r.doc_id, r.text) for r in got] == [(0, "中国队赢得了比赛"), (1, "股票市场大幅上涨")]
    metrics = json.loads((out / "_metrics.json").read_text())["ingest"]["output"]
    assert (metrics["rows_in"], metrics["duplicates"], metrics["encoding"]) == (3, 1, "gbk")
