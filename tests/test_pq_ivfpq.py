"""Residual IVF-PQ against Faiss's ``IndexIVFPQ`` built from our coarse centroids and codebooks: the same lists
and codes, the same search results at nprobe 1 and nprobe = nlist; decoding, MSE, persistence and errors."""

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.pq import PQEncoder, PQEncoderModel, PQError, search
from pipelines.pq.evaluation import reconstruction_mse

faiss = pytest.importorskip("faiss")

N, D, NQ, K, NLIST, M, NBITS = 1200, 16, 30, 10, 8, 4, 5
RNG = np.random.default_rng(5)
X = (RNG.standard_normal((N, D)) @ RNG.standard_normal((D, D))).astype(np.float32) + 3.0
QX = X[RNG.choice(N, NQ, replace=False)] + RNG.standard_normal((NQ, D)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def items(spark):
    return spark.createDataFrame(pd.DataFrame({"item_id": np.arange(N), "vector": list(X)})).repartition(2).cache()


@pytest.fixture(scope="module")
def queries(spark):
    return spark.createDataFrame(pd.DataFrame({"query_id": np.arange(NQ), "vector": list(QX)}))


@pytest.fixture(scope="module", params=["l2", "ip", "cosine"])
def fitted(request, items):
    """``(metric, model, coded pandas frame sorted by item_id)`` for a residual IVF-PQ."""
    model = PQEncoder(m=M, nbits=NBITS, nlist=NLIST, metric=request.param, maxIter=10).fit(items)
    coded = model.transform(items).select("item_id", "code", "list_id").orderBy("item_id").toPandas()
    return request.param, model, coded


def _faiss_ivfpq(model: PQEncoderModel, metric: str):
    """Faiss's IndexIVFPQ (by_residual, its default) set up by hand with our centroids, its own codes of X."""
    ip = metric != "l2"
    quantizer = faiss.IndexFlatIP(D) if ip else faiss.IndexFlatL2(D)
    quantizer.add(model.coarse)
    index = faiss.IndexIVFPQ(quantizer, D, NLIST, M, NBITS, faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2)
    assert index.by_residual
    faiss.copy_array_to_vector(model.codebooks.ravel(), index.pq.centroids)
    index.is_trained = True
    index.precompute_table()
    base = _unit(X) if metric == "cosine" else X
    index.add(base)
    return index, quantizer, base


def test_residual_lists_and_codes_equal_faiss_index_ivfpq(fitted):
    metric, model, coded = fitted
    assert model.getByResidual() and model.coarse.shape == (NLIST, D)
    if metric != "l2":  # spherical coarse centroids, as Faiss's IVF trains them for inner products
        np.testing.assert_allclose(np.linalg.norm(model.coarse, axis=1), 1.0, rtol=1e-5)
    index, _, base = _faiss_ivfpq(model, metric)
    sa = index.sa_encode(base)  # the list number (one byte at 8 lists), then the PQ code of the residual
    assert index.coarse_code_size() == 1
    ours_codes = np.stack([np.frombuffer(c, np.uint8) for c in coded["code"]])
    np.testing.assert_array_equal(coded["list_id"].to_numpy(), sa[:, 0])
    np.testing.assert_array_equal(ours_codes, sa[:, 1:])


@pytest.mark.parametrize("nprobe", [1, NLIST])
def test_search_equals_faiss_index_ivfpq(fitted, items, queries, nprobe):
    metric, model, _ = fitted
    index, _, _ = _faiss_ivfpq(model, metric)
    index.nprobe = nprobe
    faiss_d, faiss_i = index.search(_unit(QX) if metric == "cosine" else QX, K)
    faiss_d = {"l2": faiss_d, "ip": -faiss_d, "cosine": 1.0 - faiss_d}[metric]
    got = search(model, model.transform(items), queries, K, nprobe=nprobe, block=8, partitions=2).toPandas()
    got = got.sort_values(["query_id", "rank"])
    ours_d = got["distance"].to_numpy().reshape(NQ, K)
    ours_i = got["item_id"].to_numpy().reshape(NQ, K)
    np.testing.assert_allclose(ours_d, faiss_d, rtol=1e-4, atol=1e-4)
    scale = np.abs(ours_d).max()
    gaps = np.diff(ours_d, axis=1) > 1e-4 * scale  # ids are compared where no float near-tie can swap them
    untied = np.zeros((NQ, K), bool)
    untied[:, :-1] = gaps
    untied[:, 1:] &= gaps
    assert untied.sum() > NQ * K // 2
    np.testing.assert_array_equal(ours_i[untied], faiss_i[untied])


def test_decode_mse_and_faiss_export_use_the_lists(spark, fitted, items, queries, tmp_path):
    metric, model, coded = fitted
    base = _unit(X) if metric == "cosine" else X
    packed = np.stack([np.frombuffer(c, np.uint8) for c in coded["code"]])
    lists = coded["list_id"].to_numpy()
    index, _, _ = _faiss_ivfpq(model, metric)
    faiss_recon = index.sa_decode(np.hstack([lists[:, None].astype(np.uint8), packed]))
    np.testing.assert_allclose(model.decode_array(packed, lists), faiss_recon, rtol=1e-5, atol=1e-5)
    mse = ((base - faiss_recon) ** 2).sum(axis=1).mean()
    assert reconstruction_mse(model, model.transform(items)) == pytest.approx(mse, rel=1e-4)
    decoded = model.decode(model.transform(items)).orderBy("item_id").toPandas()
    np.testing.assert_allclose(np.stack(decoded["decoded"]), faiss_recon, rtol=1e-5, atol=1e-5)
    from pipelines.pq.faiss_io import export_faiss

    exported = faiss.read_index(export_faiss(model, str(tmp_path / "ivfpq.faiss"), model.transform(items)))
    faiss.extract_index_ivf(exported).nprobe = NLIST
    index.nprobe = NLIST
    np.testing.assert_array_equal(
        exported.search(QX, K)[1], index.search(_unit(QX) if metric == "cosine" else QX, K)[1]
    )


def test_residual_codes_quantise_better_than_raw_ivf_codes(items):
    raw = PQEncoder(m=M, nbits=NBITS, nlist=NLIST, byResidual=False, maxIter=10).fit(items)
    residual = PQEncoder(m=M, nbits=NBITS, nlist=NLIST, maxIter=10).fit(items)
    np.testing.assert_array_equal(raw.coarse, residual.coarse)
    assert reconstruction_mse(residual, residual.transform(items)) < 0.8 * reconstruction_mse(raw, raw.transform(items))


def test_save_load_keeps_residual_and_old_models_read_as_raw(fitted, items, tmp_path):
    _, model, coded = fitted
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = PQEncoderModel.load(str(tmp_path / "model"))
    assert loaded.getByResidual() and loaded.residual
    got = loaded.transform(items).select("item_id", "code").orderBy("item_id").toPandas()
    assert got["code"].tolist() == coded["code"].tolist()
    meta_file = next((tmp_path / "model" / "metadata").glob("part-*"))
    meta = json.loads(meta_file.read_text())
    for key in ("paramMap", "defaultParamMap"):
        meta[key].pop("byResidual", None)
    meta_file.write_text(json.dumps(meta))
    for crc in meta_file.parent.glob(".*.crc"):  # Hadoop's checksum of the file rewritten above
        crc.unlink()
    assert not PQEncoderModel.load(str(tmp_path / "model")).residual


def test_residual_codes_without_their_list_column_are_a_clear_error(fitted, items, queries):
    _, model, _ = fitted
    codes_only = model.transform(items).select("item_id", "code")
    with pytest.raises(PQError, match=r"IVF codes need their list column 'list_id'"):
        model.decode(codes_only)
    with pytest.raises(PQError, match=r"IVF codes need their list column 'list_id'"):
        search(model, codes_only, queries, K)
