"""PQEncoder stage: output schema, vector types (binary too), decode, persistence, Parquet round trip,
training paths."""

import base64

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from chispa.schema_comparer import assert_schema_equality
from pyspark.ml.linalg import Vectors
from pyspark.sql import types as T

from pipelines.pq import PQEncoder, PQEncoderModel, PQError
from pipelines.pq.validation import float_array, infer_dim, split_vectors
from udfs.pq import code_size, decode, encode, pack_codes, prepare, unpack_codes, vectors_to_binary

N, D = 2000, 32


def make_vectors(n: int = N, d: int = D, seed: int = 0) -> np.ndarray:
    """Correlated Gaussian vectors, float32."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) @ rng.standard_normal((d, d))).astype(np.float32)


@pytest.fixture(scope="module")
def items(spark):
    return spark.createDataFrame(pd.DataFrame({"item_id": np.arange(N), "vector": list(make_vectors())})).cache()


@pytest.fixture(scope="module")
def model(items):
    return PQEncoder(m=4, nbits=8).fit(items)


def test_transform_adds_a_binary_code_column(spark, items, model):
    coded = model.transform(items)
    expected = T.StructType(
        [
            T.StructField("item_id", T.LongType()),
            T.StructField("vector", T.ArrayType(T.FloatType())),
            T.StructField("code", T.BinaryType()),
        ]
    )
    assert_schema_equality(coded.schema, expected, ignore_nullable=True)
    rows = coded.select("code").limit(5).collect()
    assert all(len(r.code) == 4 for r in rows)
    assert model.codebooks.shape == (4, 256, 8) and model.code_size == 4


def test_codes_equal_the_numpy_encoding(items, model):
    pdf = model.transform(items).orderBy("item_id").toPandas()
    expected = pack_codes(encode(make_vectors(), model.codebooks), 8)
    got = np.stack([np.frombuffer(c, np.uint8) for c in pdf["code"]])
    np.testing.assert_array_equal(got, expected)


def test_decode_reconstructs_from_the_codebooks(items, model):
    pdf = model.decode(model.transform(items)).orderBy("item_id").limit(20).toPandas()
    codes = np.stack([np.frombuffer(c, np.uint8) for c in pdf["code"]])
    np.testing.assert_allclose(np.stack(pdf["decoded"]), decode(codes, model.codebooks), rtol=1e-6)


def test_codes_round_trip_through_parquet(items, model, spark, tmp_path):
    coded = model.transform(items).select("item_id", "code")
    coded.write.parquet(str(tmp_path / "codes"))
    assert_df_equality(spark.read.parquet(str(tmp_path / "codes")), coded, ignore_row_order=True)


def test_model_save_and_load(items, model, tmp_path):
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = PQEncoderModel.load(str(tmp_path / "model"))
    assert (loaded.uid, loaded.getM(), loaded.getNbits(), loaded.getMetric()) == (model.uid, 4, 8, "l2")
    np.testing.assert_array_equal(loaded.codebooks, model.codebooks)
    assert loaded.rotation is None and loaded.coarse is None
    assert_df_equality(loaded.transform(items), model.transform(items), ignore_row_order=True)


def test_estimator_save_and_load(tmp_path):
    est = PQEncoder(m=2, nbits=6, metric="cosine", opq=True)
    est.save(str(tmp_path / "est"))
    loaded = PQEncoder.load(str(tmp_path / "est"))
    assert (loaded.getM(), loaded.getNbits(), loaded.getMetric(), loaded.getOpq()) == (2, 6, "cosine", True)


def test_ml_vectors_and_double_arrays_give_the_same_codes(spark, model):
    x = make_vectors(50, seed=1)
    as_vectors = spark.createDataFrame([(i, Vectors.dense(v.tolist())) for i, v in enumerate(x)], ["item_id", "vector"])
    as_doubles = spark.createDataFrame([(i, v.astype(float).tolist()) for i, v in enumerate(x)], ["item_id", "vector"])
    a = model.transform(as_vectors).select("item_id", "code")
    b = model.transform(as_doubles).select("item_id", "code")
    assert_df_equality(a, b, ignore_row_order=True)


def test_spark_trained_codebooks_equal_driver_trained(items, model):
    distributed = PQEncoder(m=4, nbits=8, distributedMinRows=1).fit(items)
    np.testing.assert_allclose(distributed.codebooks, model.codebooks, rtol=1e-4, atol=1e-4)


def test_opq_ivf_cosine_and_low_bits(spark, items):
    fitted = PQEncoder(m=4, nbits=5, metric="cosine", opq=True, opqIter=3, nlist=8).fit(items)
    assert fitted.rotation.shape == (D, D) and fitted.coarse.shape == (8, D)
    coded = fitted.transform(items)
    assert [f.name for f in coded.schema] == ["item_id", "vector", "code", "list_id"]
    pdf = coded.orderBy("item_id").toPandas()
    assert pdf["code"].map(len).eq(code_size(4, 5)).all() and pdf["list_id"].between(0, 7).all()
    codes = unpack_codes(np.stack([np.frombuffer(c, np.uint8) for c in pdf["code"]]), 4, 5)
    assert codes.max() < 32
    recon = fitted.decode_array(np.stack([np.frombuffer(c, np.uint8) for c in pdf["code"]]), pdf["list_id"].to_numpy())
    normalised = prepare(make_vectors(), "cosine", None)
    assert ((normalised - recon) ** 2).sum(1).mean() < 0.5 * (normalised**2).sum(1).mean()


def _assert_columns(df, *fields: tuple[str, T.DataType]) -> None:
    """chispa: ``df`` has exactly these columns and types (nullability aside)."""
    schema = T.StructType([T.StructField(name, dtype) for name, dtype in fields])
    assert_schema_equality(df.schema, schema, ignore_nullable=True)


def _binary_frame(spark, x: np.ndarray, extra: list[tuple] = ()):
    """``(item_id, vector binary)``: packed little-endian float32 vectors, plus raw ``extra`` rows."""
    rows = [(i, v) for i, v in enumerate(vectors_to_binary(x))] + list(extra)
    return spark.createDataFrame(rows, "item_id BIGINT, vector BINARY")


def test_binary_vectors_give_the_same_codes_and_schema(spark, items, model):
    binary = _binary_frame(spark, make_vectors())
    coded = model.transform(binary)
    _assert_columns(coded, ("item_id", T.LongType()), ("vector", T.BinaryType()), ("code", T.BinaryType()))
    assert_df_equality(
        coded.select("item_id", "code"), model.transform(items).select("item_id", "code"), ignore_row_order=True
    )
    np.testing.assert_array_equal(PQEncoder(m=4, nbits=8).fit(binary).codebooks, model.codebooks)


def test_binary_rows_of_the_wrong_length_or_nan_get_null_codes(spark, model):
    x = make_vectors(3, seed=2)
    nan = x[0].copy()
    nan[5] = np.nan
    bad = [(10, x[0].tobytes()[:-4]), (11, nan.tobytes()), (12, None), (13, b"xyz")]
    got = {r.item_id: r.code for r in model.transform(_binary_frame(spark, x, bad)).collect()}
    assert [got[i] is None for i in range(3)] + [got[i] is None for i in (10, 11, 12, 13)] == [False] * 3 + [True] * 4


def test_binary_vectors_are_validated_like_arrays(spark):
    x = make_vectors(20, 8, seed=3)
    nan, inf = x[0].copy(), x[1].copy()
    nan[2], inf[7] = np.nan, -np.inf
    bad = [(900, x[0].tobytes()[:28]), (901, nan.tobytes()), (902, inf.tobytes()), (903, None), (904, b"abcde")]
    df = _binary_frame(spark, x, bad)
    assert infer_dim(df, "vector") == 8
    checked = split_vectors(df, "vector", 8)
    assert (checked.rows_in, checked.good.count()) == (25, 20)
    assert checked.bad_by_reason == {
        "wrong dimension (expected 8)": 2,
        "NaN/inf component": 2,
        "null vector": 1,
    }
    _assert_columns(checked.good, ("item_id", T.LongType()), ("vector", T.BinaryType()))
    shown = {r.item_id: r.vector for r in checked.bad.collect()}
    assert base64.b64decode(shown[901]) == nan.tobytes() and shown[903] is None
    decoded = df.select("item_id", float_array(df, "vector").alias("v")).orderBy("item_id").toPandas()
    np.testing.assert_array_equal(np.stack(decoded["v"][:20]), x)
    assert decoded["v"][23] is None and decoded["v"][24] is None


def test_columns_that_are_not_vectors_are_a_clear_error(spark):
    df = spark.createDataFrame([(1, "a")], "item_id BIGINT, vector STRING")
    with pytest.raises(
        PQError,
        match=r"vector column 'vector' has type string, expected array<float>, "
        r"array<double>, an ML vector or binary \(packed little-endian float32\)",
    ):
        PQEncoder(m=1, nbits=4).fit(df)
