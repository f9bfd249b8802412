"""Batch ADC search in Spark: schema, exactness against numpy, IVF, re-ranking, recall, Faiss interop, and the
distributed join of query blocks with item blocks (same top-k as a numpy search, no query collected on the driver)."""

import numpy as np
import pandas as pd
import pytest
from chispa.schema_comparer import assert_schema_equality
from pyspark.sql import types as T

from pipelines.pq import PQEncoder, PQError, exact_neighbours, search
from pipelines.pq.evaluation import index_summary, recall_at, reconstruction_mse
from udfs.pq import adc_distances, decode, encode, exact_distances, lookup_tables, probe_lists, unpack_codes

N, D, NQ, K = 1500, 32, 40, 10
RNG = np.random.default_rng(11)
X = (RNG.standard_normal((N, D)) @ RNG.standard_normal((D, D))).astype(np.float32)
QX = X[RNG.choice(N, NQ, replace=False)] + RNG.standard_normal((NQ, D)).astype(np.float32)


@pytest.fixture(scope="module")
def items(spark):
    return spark.createDataFrame(pd.DataFrame({"item_id": np.arange(N) * 3, "vector": list(X)})).repartition(3)


@pytest.fixture(scope="module")
def queries(spark):
    return spark.createDataFrame(pd.DataFrame({"query_id": np.arange(NQ) + 100, "vector": list(QX)}))


@pytest.fixture(scope="module")
def model(items):
    """IVF over raw-vector codes, so that flat and IVF searches read one code table (residual IVF-PQ is
    tested against Faiss in test_pq_ivfpq.py)."""
    return PQEncoder(m=4, nbits=6, nlist=4, byResidual=False).fit(items)


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
    np.testing.assert_array_equal(got["rank"].to_numpy().reshape(NQ, K), np.tile(np.arange(1, K + 1), (NQ, 1)))
    np.testing.assert_allclose(got["distance"].to_numpy().reshape(NQ, K), np.sort(dist, axis=1)[:, :K], rtol=1e-4)
    rows = got["item_id"].to_numpy().reshape(NQ, K) // 3
    np.testing.assert_allclose(np.take_along_axis(dist, rows, axis=1), np.sort(dist, axis=1)[:, :K], rtol=1e-4)


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
    np.testing.assert_allclose(got["distance"], exact[np.arange(NQ).repeat(K), got["item_id"] // 3], rtol=1e-4)
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
def test_faiss_search_over_the_exported_index_returns_our_neighbours(spark, items, queries, metric, opq, tmp_path):
    faiss = pytest.importorskip("faiss")
    from pipelines.pq.faiss_io import collect_codes, export_faiss, to_faiss

    fitted = PQEncoder(m=4, nbits=4 if metric == "l2" else 8, metric=metric, opq=opq, opqIter=2).fit(items)
    coded = fitted.transform(items)
    ours = _ranked(search(fitted, coded, queries, K))
    ids, codes, _ = collect_codes(fitted, coded)
    index = to_faiss(fitted, codes, ids)
    dist, found = index.search(QX, K)
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


def _numpy_search(model, coded_pdf: pd.DataFrame, k: int, nprobe: int = 0, rerank_k: int = 0):
    """Reference top-k ``(ids, distances)``, each ``(NQ, k)``: ADC over every item (only the probed lists with
    IVF) in one numpy pass, ties by item id, then exact re-ranking of the best ``rerank_k``."""
    codes = unpack_codes(np.stack(coded_pdf["code"].map(lambda b: np.frombuffer(b, np.uint8))), 4, 6)
    q = model.prepare(QX)
    dist = adc_distances(lookup_tables(q, model.codebooks, "l2"), codes).astype(np.float64)
    ids = coded_pdf["item_id"].to_numpy()
    if nprobe:
        probed = probe_lists(q, model.coarse, nprobe)
        dist[~(coded_pdf["list_id"].to_numpy()[None, None, :] == probed[:, :, None]).any(axis=1)] = np.inf
    order = np.lexsort((np.broadcast_to(ids, dist.shape), dist), axis=1)[:, : rerank_k or k]
    if rerank_k:
        exact = exact_distances(QX, X[ids // 3], "l2")
        shortlist = np.take_along_axis(exact, order, axis=1)
        order = np.take_along_axis(order, np.argsort(shortlist, axis=1, kind="stable")[:, :k], axis=1)
        dist = exact
    return ids[order], np.take_along_axis(dist, order, axis=1)


@pytest.mark.parametrize("nprobe,rerank_k", [(0, 0), (2, 0), (0, 30), (2, 30)])
def test_block_join_gives_the_numpy_top_k_over_several_query_blocks_and_item_partitions(
    model, coded, items, queries, nprobe, rerank_k
):
    got = _ranked(search(model, coded, queries, K, nprobe, rerank_k, items, block=8, partitions=3))
    ids, dist = _numpy_search(model, coded.toPandas(), K, nprobe, rerank_k)
    assert len(got) == NQ * K and (got["query_id"].to_numpy().reshape(NQ, K)[:, 0] == np.arange(NQ) + 100).all()
    got_dist = got["distance"].to_numpy().reshape(NQ, K)
    np.testing.assert_allclose(got_dist, dist, rtol=1e-4)  # re-ranked: exact distances in float32, two ways
    # the same items, except where a float near-tie with the k-th distance lets either one in
    boundary = np.isclose(dist, dist[:, -1:], rtol=1e-4)
    got_ids = got["item_id"].to_numpy().reshape(NQ, K)
    for row in range(NQ):
        assert set(ids[row][~boundary[row]]) <= set(got_ids[row]), row
    np.testing.assert_array_equal(got_ids[~boundary], ids[~boundary])


@pytest.mark.parametrize("nprobe", [0, 2])
def test_queries_meet_the_codes_in_a_join_and_never_reach_the_driver(spark, model, coded, queries, monkeypatch, nprobe):
    """Several query blocks (40 queries, blocks of 8): while the search is planned the driver only fetches
    the one-row validation aggregate, and the executed plan joins without broadcasting any side (a broadcast
    exchange collects its side on the driver first)."""
    fetched = []
    frame_type = type(queries)
    for name in ("collect", "toPandas", "toLocalIterator"):
        real = getattr(frame_type, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            out = _real(self, *args, **kwargs)
            fetched.append((_name, len(out) if hasattr(out, "__len__") else None))
            return out

        monkeypatch.setattr(frame_type, name, spy)
    result = search(model, coded, queries, K, nprobe=nprobe, block=8)
    assert fetched == [("collect", 1)]
    monkeypatch.undo()
    assert len(result.collect()) == NQ * K  # the result's own plan, so that its adaptive plan is final
    plan = result._jdf.queryExecution().executedPlan().toString()
    assert "isFinalPlan=true" in plan and "Broadcast" not in plan
    assert ("SortMergeJoin" if nprobe else "CartesianProduct") in plan
    assert "FlatMapGroupsInPandas" in plan  # the query blocks are packed on the executors


def test_query_checks_are_spark_aggregates(spark, model, coded):
    frame = pd.DataFrame({"query_id": [1, 2, 2, 3, 3], "vector": list(QX[:5])})
    with pytest.raises(PQError, match=r"2 duplicate query_id value\(s\) among the queries"):
        search(model, coded, spark.createDataFrame(frame), K)
    with pytest.raises(PQError, match="no query vectors"):
        search(model, coded, spark.createDataFrame(frame).limit(0), K)
    short = spark.createDataFrame(pd.DataFrame({"query_id": [1], "vector": [QX[0, :8]]}))
    with pytest.raises(PQError, match="query vectors have dimension 8, the model 32"):
        search(model, coded, short, K)
