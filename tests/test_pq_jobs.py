"""Bad PQ input (one clear error or a counted quarantine) and the build/search jobs end to end (array and
binary vectors)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from chispa.schema_comparer import assert_schema_equality
from pyspark.sql import types as T

from pipelines.job_runtime import run_job
from pipelines.pq import PQEncoder, PQError
from pipelines.pq.validation import check_unique_ids, split_vectors
from udfs.pq import vectors_to_binary

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "item_id BIGINT, vector ARRAY<DOUBLE>"
RNG = np.random.default_rng(5)


def rows(n: int, d: int = 16, start: int = 0) -> list[tuple]:
    x = RNG.standard_normal((n, d))
    return [(start + i, v.tolist()) for i, v in enumerate(x)]


BAD = [(900, [1.0] * 15), (901, [float("nan")] + [0.0] * 15), (902, [float("inf")] * 16), (903, None)]


def test_bad_rows_are_split_off_with_counts_per_reason(spark):
    checked = split_vectors(spark.createDataFrame(rows(20) + BAD, SCHEMA), "vector", 16)
    assert (checked.rows_in, checked.rows_bad, checked.good.count()) == (24, 4, 20)
    assert checked.bad_by_reason == {
        "wrong dimension (expected 16)": 1,
        "NaN/inf component": 2,
        "null vector": 1,
    }
    assert_schema_equality(
        checked.bad.schema,
        T.StructType(
            [
                T.StructField("item_id", T.LongType()),
                T.StructField("vector", T.StringType()),
                T.StructField("_problem", T.StringType()),
            ]
        ),
        ignore_nullable=True,
    )


def test_fit_errors_name_the_counts(spark):
    with pytest.raises(PQError, match=r"dimension 16 is not divisible by M=3; choose M among \[1, 2, 4, 8, 16\]"):
        PQEncoder(m=3).fit(spark.createDataFrame(rows(300), SCHEMA))
    with pytest.raises(PQError, match=r"200 training vectors, fewer than the 256 centroids per sub-space"):
        PQEncoder(m=4, nbits=8).fit(spark.createDataFrame(rows(200), SCHEMA))
    with pytest.raises(PQError, match=r"nbits=9 is out of range; allowed 4 to 8"):
        PQEncoder(m=4, nbits=9).fit(spark.createDataFrame(rows(20), SCHEMA))
    with pytest.raises(PQError, match=r"4 of 24 training rows have a null, wrong-dimension \(expected 16\) or NaN/inf"):
        PQEncoder(m=4, nbits=4).fit(spark.createDataFrame(rows(20) + BAD, SCHEMA))


def test_duplicate_ids_are_an_error_with_the_count(spark):
    df = spark.createDataFrame(rows(10) + rows(3) + rows(1), SCHEMA)
    with pytest.raises(PQError, match=r"items: 3 duplicate item_id value\(s\) \(4 extra rows\), e.g. \[0, 1, 2\]"):
        check_unique_ids(df, "item_id", "items")


def test_transform_gives_null_codes_for_bad_rows(spark):
    model = PQEncoder(m=4, nbits=4).fit(spark.createDataFrame(rows(100), SCHEMA))
    codes = {r.item_id: r.code for r in model.transform(spark.createDataFrame(rows(5) + BAD, SCHEMA)).collect()}
    assert all(codes[i] is None for i in (900, 901, 902, 903)) and all(len(codes[i]) == 2 for i in range(5))


def _job(name, argv):
    return run_job(name, argv)


def test_build_then_search_jobs(spark, tmp_path, capsys):
    items, queries = tmp_path / "items", tmp_path / "queries"
    spark.createDataFrame(rows(600) + BAD[:2], SCHEMA).write.parquet(str(items))
    spark.createDataFrame(rows(30, start=5000) + BAD[2:], "query_id BIGINT, vector ARRAY<DOUBLE>").write.parquet(
        str(queries)
    )
    out = tmp_path / "pq"
    build = [
        "--set",
        f"input.path={items}",
        "--set",
        f"output.codes_path={out}/codes",
        "--set",
        f"output.model_path={out}/model",
        "--set",
        "quantizer.m=4",
        "--set",
        "quantizer.nbits=5",
        "--set",
        "output.keep_vectors=true",
        "--set",
        "quantizer.nlist=4",
    ]
    assert _job("build_pq", build + ["--set", "max_bad_fraction=0.001"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {items}: 2 of 602 vectors (0.33%) are invalid (1 NaN/inf component, "
        f"1 wrong dimension (expected 16)), above the limit 0.10%; quarantined to {out}/codes_quarantine"
    )
    assert _job("build_pq", build) == 0
    metrics = json.loads((out / "codes" / "_metrics.json").read_text())
    assert metrics["rows_out"] == {"items_quarantine": 2, "codes": 600}
    pq = metrics["pq"]
    assert (pq["m"], pq["nbits"], pq["bytes_per_vector"], pq["nlist"], pq["by_residual"]) == (4, 5, 3, 4, True)
    assert pq["reconstruction_mse"] > 0 and math.isfinite(pq["reconstruction_mse"])
    assert (out / "model" / "_metrics.json").exists()
    codes = spark.read.parquet(str(out / "codes"))
    assert [f.name for f in codes.schema] == ["item_id", "code", "list_id", "vector"]

    search = [
        "--set",
        f"items.codes_path={out}/codes",
        "--set",
        f"items.model_path={out}/model",
        "--set",
        f"queries.path={queries}",
        "--set",
        f"output.path={out}/neighbours",
        "--set",
        "search.k=10",
        "--set",
        "search.rerank_k=20",
        "--set",
        "search.nprobe=2",
        "--set",
        "evaluate.sample_size=20",
        "--set",
        "max_bad_fraction=0.1",
    ]
    assert _job("search_pq", search) == 0
    result = spark.read.parquet(str(out / "neighbours"))
    assert_schema_equality(
        result.schema,
        T.StructType(
            [
                T.StructField("query_id", T.LongType()),
                T.StructField("item_id", T.LongType()),
                T.StructField("distance", T.DoubleType()),
                T.StructField("rank", T.IntegerType()),
            ]
        ),
        ignore_nullable=True,
    )
    assert result.count() == 300
    metrics = json.loads((out / "neighbours" / "_metrics.json").read_text())
    assert metrics["input"]["queries"]["rows_quarantined"] == 2
    assert metrics["evaluation"]["queries_sampled"] == 20 and 0 <= metrics["evaluation"]["r1"] <= 1
    assert set(metrics["evaluation"]) == {"queries_sampled", "r1", "r10"}


def test_jobs_take_binary_vectors(spark, tmp_path):
    items, queries, out = tmp_path / "items", tmp_path / "queries", tmp_path / "pq"
    x = RNG.standard_normal((400, 16)).astype(np.float32)
    nan = x[0].copy()
    nan[3] = np.nan
    spark.createDataFrame(
        [(i, v) for i, v in enumerate(vectors_to_binary(x))] + [(900, nan.tobytes())],
        "item_id BIGINT, vector BINARY",
    ).write.parquet(str(items))
    spark.createDataFrame(
        [(i, v) for i, v in enumerate(vectors_to_binary(x[:20] + 0.01))], "query_id BIGINT, vector BINARY"
    ).write.parquet(str(queries))
    build = [
        f"input.path={items}",
        f"output.codes_path={out}/codes",
        f"output.model_path={out}/model",
        "quantizer.m=4",
        "quantizer.nbits=6",
        "output.keep_vectors=true",
    ]
    assert _job("build_pq", [a for kv in build for a in ("--set", kv)]) == 0
    metrics = json.loads((out / "codes" / "_metrics.json").read_text())
    assert metrics["rows_out"] == {"items_quarantine": 1, "codes": 400}
    assert metrics["input"]["items"]["quarantined_by_reason"] == {"NaN/inf component": 1}
    codes = spark.read.parquet(str(out / "codes"))
    assert_schema_equality(
        codes.schema,
        T.StructType(
            [
                T.StructField("item_id", T.LongType()),
                T.StructField("code", T.BinaryType()),
                T.StructField("vector", T.BinaryType()),
            ]
        ),
        ignore_nullable=True,
    )
    search = [
        f"items.codes_path={out}/codes",
        f"items.model_path={out}/model",
        f"queries.path={queries}",
        f"output.path={out}/neighbours",
        "search.k=5",
        "search.rerank_k=10",
        "evaluate.sample_size=20",
    ]
    assert _job("search_pq", [a for kv in search for a in ("--set", kv)]) == 0
    metrics = json.loads((out / "neighbours" / "_metrics.json").read_text())
    assert metrics["evaluation"]["r1"] == 1.0  # each query is its item moved by 0.01; re-ranked exactly
