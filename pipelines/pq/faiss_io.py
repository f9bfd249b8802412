"""Export a trained quantiser and its codes as a Faiss index (Faiss is imported lazily, only here).

The model becomes a ``faiss.IndexPQ`` with our centroids (same ``(M, K, dsub)`` layout, same packed
code layout), in an ``IndexIDMap2`` carrying our item ids, wrapped in an ``IndexPreTransform`` for
cosine normalisation / the OPQ rotation. Faiss reports squared L2 for ``l2`` and inner products
(larger is nearer) for ``ip`` and ``cosine``. IVF models become a ``faiss.IndexIVFPQ`` over a flat quantiser
holding our coarse centroids (``IndexFlatL2``, or ``IndexFlatIP`` for inner products: our centroids are then
unit length, so both pick the same lists), ``by_residual`` as the model, with each code in its list.
Exporting codes collects them on the driver: a Faiss index is a single-machine object.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from pipelines.pq.encoder import PQEncoderModel
from pipelines.pq.validation import PQError, check_list_col
from udfs.pq import series_to_codes


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise PQError("Faiss export needs the faiss-cpu package (pip install faiss-cpu==1.15.1)") from None
    return faiss


def _ivf_index(
    model: PQEncoderModel, metric: int, codes: np.ndarray | None, ids: np.ndarray | None, lists: np.ndarray | None
) -> Any:
    """``IndexIVFPQ`` of an IVF model, its codes added to their ``lists`` (Faiss's list-number prefix)."""
    faiss = _faiss()
    d, nlist = model.dim, len(model.coarse)
    quantizer = faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
    quantizer.add(model.coarse)
    index = faiss.IndexIVFPQ(quantizer, d, nlist, model.getM(), model.getNbits(), metric)
    index.referenced_objects = [quantizer]
    index.by_residual = model.residual
    faiss.copy_array_to_vector(model.codebooks.ravel(), index.pq.centroids)
    index.is_trained = True
    index.precompute_table()
    if codes is not None:
        if lists is None:
            raise PQError("exporting IVF codes needs their list ids")
        width = index.coarse_code_size()
        prefix = (lists.astype("<u8")[:, None] >> (8 * np.arange(width, dtype="<u8"))) & 0xFF
        sa_codes = np.hstack([prefix.astype(np.uint8), np.ascontiguousarray(codes, np.uint8)])
        index.add_sa_codes(sa_codes, None if ids is None else np.ascontiguousarray(ids, np.int64))
    return index


def to_faiss(
    model: PQEncoderModel,
    codes: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    lists: np.ndarray | None = None,
) -> Any:
    """A Faiss index equivalent to ``model``, holding the packed ``codes`` with int64 ``ids`` (if given) and,
    for an IVF model, their ``lists``."""
    faiss = _faiss()
    d, m, nbits = model.dim, model.getM(), model.getNbits()
    metric = faiss.METRIC_L2 if model.getMetric() == "l2" else faiss.METRIC_INNER_PRODUCT
    if model.coarse is not None:
        return _wrapped(model, _ivf_index(model, metric, codes, ids, lists))
    pq = faiss.IndexPQ(d, m, nbits, metric)
    faiss.copy_array_to_vector(model.codebooks.ravel(), pq.pq.centroids)
    pq.is_trained = True
    index = pq
    if codes is not None:
        codes = np.ascontiguousarray(codes, np.uint8)
        if ids is None:
            pq.add_sa_codes(codes)
        else:
            index = faiss.IndexIDMap2(pq)
            index.add_sa_codes(codes, np.ascontiguousarray(ids, np.int64))
            index.referenced_objects = [pq]
    return _wrapped(model, index)


def _wrapped(model: PQEncoderModel, index: Any) -> Any:
    """``index`` behind the model's cosine normalisation and OPQ rotation, if any."""
    faiss = _faiss()
    d = model.dim
    transforms = []
    if model.getMetric() == "cosine":
        transforms.append(faiss.NormalizationTransform(d, 2.0))
    if model.rotation is not None:
        rotate = faiss.LinearTransform(d, d, False)
        faiss.copy_array_to_vector(np.ascontiguousarray(model.rotation.T).ravel(), rotate.A)
        rotate.is_trained = True
        transforms.append(rotate)
    if not transforms:
        return index
    wrapped = faiss.IndexPreTransform(index)
    for transform in reversed(transforms):
        wrapped.prepend_transform(transform)
    wrapped.referenced_objects = [index, *transforms]
    return wrapped


def collect_codes(
    model: PQEncoderModel, coded: DataFrame, id_col: str = "item_id"
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Item ids (int64), packed codes and (IVF models) list ids of a coded table, on the driver."""
    ivf = model.coarse is not None
    columns = [id_col, model.getOutputCol()] + ([check_list_col(coded, model.getListCol())] if ivf else [])
    pdf = coded.select(*columns).toPandas()
    try:
        ids = pdf[id_col].to_numpy(np.int64)
    except (TypeError, ValueError):
        raise PQError(f"Faiss needs integer item ids; column '{id_col}' is {coded.schema[id_col].dataType}") from None
    lists = pdf[model.getListCol()].to_numpy(np.int64) if ivf else None
    return ids, series_to_codes(pdf[model.getOutputCol()], model.code_size), lists


def export_faiss(model: PQEncoderModel, path: str, coded: DataFrame | None = None, id_col: str = "item_id") -> str:
    """Write the model (and the codes of ``coded``, if given) as a Faiss index file at ``path``."""
    ids, codes, lists = (None, None, None) if coded is None else collect_codes(model, coded, id_col)
    _faiss().write_index(to_faiss(model, codes, ids, lists), path)
    return path
