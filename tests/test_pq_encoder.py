"""PQEncoder stage: output schema, vector types, decode, persistence, Parquet round trip, training paths."""

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from chispa.schema_comparer import assert_schema_equality
from pyspark.ml.linalg import Vectors
from pyspark.sql import types as T

from pipelines.pq import PQEncoder, PQEncoderModel
from udfs.pq import code_size, decode, encode, pack_codes, prepare, unpack_codes

N, D = 2000, 32


def make_vectors(n: int = N, d: int = D, seed: int = 0) -> np.ndarray:
    """Correlated Gaussian vectors, float32."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) @ rng.standard_normal((d, d))).astype(np.float32)


@pytest.fixture(scope="module")
def items(spark):
    return spark.createDataFrame(
        pd.DataFrame({"item_id": np.arange(N), "vector": list(make_vectors())})
    ).cache()


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
    as_vectors = spark.createDataFrame(
        [(i, Vectors.dense(v.tolist())) for i, v in enumerate(x)], ["item_id", "vector"]
    )
    as_doubles = spark.createDataFrame(
        [(i, v.astype(float).tolist()) for i, v in enumerate(x)], ["item_id", "vector"]
    )
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
    recon = fitted.decode_array(np.stack([np.frombuffer(c, np.uint8) for c in pdf["code"]]))
    normalised = prepare(make_vectors(), "cosine", None)
    assert ((normalised - recon) ** 2).sum(1).mean() < 0.5 * (normalised**2).sum(1).mean()
