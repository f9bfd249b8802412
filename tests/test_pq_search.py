"""Batch ADC search in Spark: schema, exactness against numpy, IVF, re-ranking, recall, Faiss interop."""

import numpy as np
import pandas as pd
import pytest
from chispa.schema_comparer import assert_schema_equality
from pyspark.sql import types as T

from pipelines.pq import PQEncoder, Queries, exact_neighbours, search
from pipelines.pq.evaluation import index_summary, recall_at, reconstruction_mse
from udfs.pq import decode, encode, exact_distances

N, D, NQ, K = 1500, 32, 40, 10
RNG = np.random.default_rng(11)
X = (RNG.standard_normal((N, D)) @ RNG.standard_normal((D, D))).astype(np.float32)
QX = X[RNG.choice(N, NQ, replace=False)] + RNG.standard_normal((NQ, D)).astype(np.float32)


@pytest.fixture(scope="module")
def items(spark):
    return spark.createDataFrame(pd.DataFrame({"item_id": np.arange(N) * 3, "vector": list(X)})).repartition(
        3
    )


@pytest.fixture(scope="module")
def queries(spark):
    return Queries.collect(
        spark.createDataFrame(pd.DataFrame({"query_id": np.arange(NQ) + 100, "vector": list(QX)}))
    )


@pytest.fixture(scope="module")
def model(items):
    return PQEncoder(m=4, nbits=6, nlist=4).fit(items)


@pytest.fixture(scope="module")
def coded(model, items):
    return model.transform(items).cache()


def _ranked(df) -> pd.DataFrame:
    return df.toPandas().sort_values(["query_id", "rank"]).reset_index(drop=True)


def test_search_schema_and_exact_adc_top_k(model, coded, queries):
    result = search(model, coded, queries, K)
    expected = T.StructType(
        [
            T.StructField("query_id", T.LongType()),
            T.StructField("item_id", T.LongType()),
            T.StructField("distance", T.DoubleType()),
            T.StructField("rank", T.IntegerType()),
        ]
    )
    assert_schema_equality(result.schema, expected, ignore_nullable=True)
    got = _ranked(result)
    recon = decode(encode(X, model.codebooks), model.codebooks)
    dist = exact_distances(QX, recon, "l2")  # ADC distance == distance to the decoded vector
    assert len(got) == NQ * K
    np.testing.assert_array_equal(
        got["rank"].to_numpy().reshape(NQ, K), np.tile(np.arange(1, K + 1), (NQ, 1))
    )
    np.testing.assert_allclose(
        got["distance"].to_numpy().reshape(NQ, K), np.sort(dist, axis=1)[:, :K], rtol=1e-4
    )
    rows = got["item_id"].to_numpy().reshape(NQ, K) // 3
    np.testing.assert_allclose(
        np.take_along_axis(dist, rows, axis=1), np.sort(dist, axis=1)[:, :K], rtol=1e-4
    )


def test_ivf_with_every_list_probed_equals_flat_and_fewer_probes_still_find_most(model, coded, queries):
    flat = _ranked(search(model, coded, queries, K))
    ivf_all = _ranked(search(model, coded, queries, K, nprobe=4))
    np.testing.assert_allclose(ivf_all["distance"], flat["distance"], rtol=1e-5)
    one = _ranked(search(model, coded, queries, K, nprobe=1, partitions=2))
    overlap = len(set(zip(one.query_id, one.item_id)) & set(zip(flat.query_id, flat.item_id))) / len(flat)
    assert overlap > 0.4


def test_rerank_gives_exact_distances_and_recall_improves(model, coded, items, queries):
    truth = exact_neighbours(items, queries, K, "l2")
    reranked = search(model, coded, queries, K, rerank_k=50, vectors=items)
    got = _ranked(reranked)
    exact = exact_distances(QX, X, "l2")
    np.testing.assert_allclose(
        got["distance"], exact[np.arange(NQ).repeat(K), got["item_id"] // 3], rtol=1e-4
    )
    plain = recall_at(search(model, coded, queries, K), truth, [1, 10])
    better = recall_at(reranked, truth, [1, 10])
    assert better["r1"] >= plain["r1"] and better["r10"] >= 0.9
    expected_nn = exact.argmin(axis=1) * 3
    truth_pdf = _ranked(truth)
    np.testing.assert_array_equal(truth_pdf[truth_pdf["rank"] == 1]["item_id"], expected_nn)


def test_reconstruction_mse_and_summary(model, coded):
    recon = decode(encode(X, model.codebooks), model.codebooks)
    assert reconstruction_mse(model, coded) == pytest.approx(((X - recon) ** 2).sum(1).mean(), rel=1e-4)
    assert index_summary(model)["bytes_per_vector"] == 3  # 4 x 6 bits


@pytest.mark.parametrize("metric,opq", [("l2", False), ("ip", False), ("cosine", True)])
def test_faiss_search_over_the_exported_index_returns_our_neighbours(
    spark, items, queries, metric, opq, tmp_path
):
    faiss = pytest.importorskip("faiss")
    from pipelines.pq.faiss_io import collect_codes, export_faiss, to_faiss

    fitted = PQEncoder(m=4, nbits=4 if metric == "l2" else 8, metric=metric, opq=opq, opqIter=2).fit(items)
    coded = fitted.transform(items)
    ours = _ranked(search(fitted, coded, queries, K))
    ids, codes = collect_codes(fitted, coded)
    index = to_faiss(fitted, codes, ids)
    dist, found = index.search(queries.vectors, K)
    faiss_dist = dist if metric == "l2" else (1.0 if metric == "cosine" else 0.0) - dist
    np.testing.assert_allclose(ours["distance"].to_numpy().reshape(NQ, K), faiss_dist, rtol=1e-3, atol=1e-3)
    ours_d = ours["distance"].to_numpy().reshape(NQ, K)
    gaps = np.diff(ours_d, axis=1) > 1e-3 * np.abs(ours_d[:, 1:])
    untied = np.zeros_like(gaps, shape=(NQ, K))  # rank j is untied when it differs from both neighbours
    untied[:, :-1] = gaps
    untied[:, 1:-1] &= gaps[:, :-1]
    assert untied.sum() > NQ
    np.testing.assert_array_equal(ours["item_id"].to_numpy().reshape(NQ, K)[untied], found[untied])
    path = export_faiss(fitted, str(tmp_path / "index.faiss"), coded)
    assert faiss.read_index(path).ntotal == N
