"""Export a trained quantiser and its codes as a Faiss index (Faiss is imported lazily, only here).

The model becomes a ``faiss.IndexPQ`` with our centroids (same ``(M, K, dsub)`` layout, same packed
code layout), in an ``IndexIDMap2`` carrying our item ids, wrapped in an ``IndexPreTransform`` for
cosine normalisation / the OPQ rotation. Faiss reports squared L2 for ``l2`` and inner products
(larger is nearer) for ``ip`` and ``cosine``. IVF models export their flat PQ codes (lists dropped).
Exporting codes collects them on the driver: a Faiss index is a single-machine object.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from pipelines.pq.encoder import PQEncoderModel
from pipelines.pq.validation import PQError
from udfs.pq import series_to_codes


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise PQError("Faiss export needs the faiss-cpu package (pip install faiss-cpu==1.15.1)") from None
    return faiss


def to_faiss(model: PQEncoderModel, codes: np.ndarray | None = None, ids: np.ndarray | None = None) -> Any:
    """A Faiss index equivalent to ``model``, holding the packed ``codes`` with int64 ``ids`` (if given)."""
    faiss = _faiss()
    d, m, nbits = model.dim, model.getM(), model.getNbits()
    metric = faiss.METRIC_L2 if model.getMetric() == "l2" else faiss.METRIC_INNER_PRODUCT
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
) -> tuple[np.ndarray, np.ndarray]:
    """Item ids (int64) and packed codes of a coded table, on the driver."""
    pdf = coded.select(id_col, model.getOutputCol()).toPandas()
    try:
        ids = pdf[id_col].to_numpy(np.int64)
    except (TypeError, ValueError):
        raise PQError(
            f"Faiss needs integer item ids; column '{id_col}' is {coded.schema[id_col].dataType}"
        ) from None
    return ids, series_to_codes(pdf[model.getOutputCol()], model.code_size)


def export_faiss(
    model: PQEncoderModel, path: str, coded: DataFrame | None = None, id_col: str = "item_id"
) -> str:
    """Write the model (and the codes of ``coded``, if given) as a Faiss index file at ``path``."""
    codes, ids = (None, None) if coded is None else collect_codes(model, coded, id_col)[::-1]
    _faiss().write_index(to_faiss(model, codes, ids), path)
    return path
