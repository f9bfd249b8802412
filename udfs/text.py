"""Vectorised UDF bodies for text: decoding bytes, jieba segmentation, sparse TF-IDF arithmetic,
blocked cosine top-k.

The segmenters are built once per Python worker (jieba's dictionary takes about a second to load) and
kept in a module-level cache, which survives between tasks because Spark reuses its Python workers.
Sparse vectors travel as Arrow structs ``(type, size, indices, values)``; the arithmetic runs on the
flattened entries of a whole batch at once with numpy, never row by row. Blocks of documents travel as
one row each (a scipy CSR matrix as bytes); a pair of blocks is one sparse matrix product.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark.sql import Column
from pyspark.sql import types as T
from pyspark.sql.functions import arrow_udf, pandas_udf

if TYPE_CHECKING:
    import jieba

_SEGMENTERS: dict[str, "jieba.Tokenizer"] = {}
ENTRIES_TYPE = T.StructType(
    [T.StructField("indices", T.ArrayType(T.IntegerType())), T.StructField("values", T.ArrayType(T.DoubleType()))]
)


def segmenter(user_dict: str = "") -> "jieba.Tokenizer":
    """This worker's jieba ``Tokenizer`` for ``user_dict`` ("" for none), loaded on first use."""
    if user_dict not in _SEGMENTERS:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        if user_dict:
            tokenizer.load_userdict(_local_file(user_dict))
        _SEGMENTERS[user_dict] = tokenizer
    return _SEGMENTERS[user_dict]


def _local_file(path: str) -> str:
    """``path`` itself, or the copy shipped to this executor with ``--files`` / ``addFile``."""
    if os.path.exists(path):
        return path
    from pyspark import SparkFiles

    shipped = SparkFiles.get(os.path.basename(path))
    if not os.path.exists(shipped):
        raise FileNotFoundError(f"jieba user dictionary not found: {path} (nor shipped as {shipped})")
    return shipped


def decode_udf(encoding: str) -> Callable[[Column], Column]:
    """Bytes -> text in ``encoding`` (a Python codec), invalid sequences replaced with U+FFFD so they can be counted.

    Python's codecs (gb18030, big5, ...) decode a whole byte string in C; the loop is over the batch's rows only.
    """

    @pandas_udf(T.StringType())
    def decode(raw: pd.Series) -> pd.Series:
        return pd.Series(
            [None if b is None else bytes(b).decode(encoding, errors="replace") for b in raw],
            index=raw.index,
            dtype=object,
        )

    return decode


def segment_udf(user_dict: str) -> Callable[[Column], Column]:
    """Cut each text into words with jieba (precise mode); array<string> per text."""

    @pandas_udf(T.ArrayType(T.StringType()))
    def segment(texts: pd.Series) -> pd.Series:
        cut = segmenter(user_dict).lcut
        return pd.Series([cut(text) for text in texts], index=texts.index)

    return segment


def _flat(vectors: pa.StructArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row lengths, flat indices and flat values (float64 copy) of a batch of sparse vectors."""
    if pc.any(pc.equal(vectors.field("type"), 1)).as_py():
        raise ValueError("expected sparse vectors (CountVectorizer/HashingTF output), got a dense vector")
    indices, values = vectors.field("indices"), vectors.field("values")
    lengths = pc.fill_null(pc.list_value_length(indices), 0).to_numpy(zero_copy_only=False)
    return (
        lengths,
        indices.flatten().to_numpy(zero_copy_only=False).astype(np.int32),
        values.flatten().to_numpy(zero_copy_only=False).astype(np.float64),
    )


def _lists(lengths: np.ndarray, flat: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat), type=value_type)


def reweight(vectors: pa.StructArray, idf: np.ndarray | None, sublinear_tf: bool, norm: str) -> pa.StructArray:
    """TF-IDF from term counts, in scikit-learn's order of operations: ``1 + ln(tf)`` if sublinear,
    times ``idf[term]``, then each row divided by its l2 (or l1) norm; empty rows stay empty."""
    lengths, indices, values = _flat(vectors)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    if sublinear_tf:
        values = np.log(values) + 1.0
    if idf is not None:
        values = values * idf[indices]
    if norm != "none":
        per_row = np.abs(values) if norm == "l1" else values * values
        totals = np.bincount(rows, weights=per_row, minlength=len(lengths))
        if norm == "l2":
            totals = np.sqrt(totals)
        totals[totals == 0.0] = 1.0
        values = values / totals[rows]
    fields = list(vectors.type)
    return pa.StructArray.from_arrays(
        [
            pc.fill_null(vectors.field("type"), 0),
            vectors.field("size"),
            _lists(lengths, indices, fields[2].type),
            _lists(lengths, values, fields[3].type),
        ],
        fields=fields,
    )


def tfidf_udf(idf: np.ndarray | None, sublinear_tf: bool, norm: str) -> Callable[[Column], Column]:
    """Arrow UDF: count vectors -> TF-IDF vectors (see ``reweight``); ``idf`` None means all ones."""
    from pyspark.ml.linalg import VectorUDT

    @arrow_udf(VectorUDT())
    def tfidf(vectors: pa.Array) -> pa.Array:
        return reweight(vectors, idf, sublinear_tf, norm)

    return tfidf


def _vector_entries(vectors: pa.Array, top: int = 0, order: np.ndarray | None = None) -> pa.Array:
    lengths, indices, values = _flat(vectors)
    if top:
        rows = np.repeat(np.arange(len(lengths)), lengths)
        keep = values > 0
        rows, indices, values = rows[keep], indices[keep], values[keep]
        sort = np.lexsort((order[indices], -values, rows))
        rows, indices, values = rows[sort], indices[sort], values[sort]
        first = np.arange(len(rows)) - np.searchsorted(rows, rows) < top
        rows, indices, values = rows[first], indices[first], values[first]
        lengths = np.bincount(rows, minlength=len(lengths))
    return pa.StructArray.from_arrays(
        [_lists(lengths, indices, pa.list_(pa.int32())), _lists(lengths, values, pa.list_(pa.float64()))],
        names=["indices", "values"],
    )


def vector_entries_udf(vectors: Column | str, top: int = 0, order: np.ndarray | None = None) -> Column:
    """Arrow UDF: a sparse vector column as ``struct(indices, values)``, ready to explode in the JVM. Declared at
    each call (as every UDF here is), so that it is a Spark Connect UDF in a Connect session even when this module
    was imported before that session existed.

    ``top`` > 0 keeps only each vector's ``top`` largest positive entries, largest first, equal values by
    ``order[index]``: cutting inside the batch spares the JVM exploding, joining and sorting every entry."""
    return arrow_udf(lambda batch: _vector_entries(batch, top, order), ENTRIES_TYPE)(vectors)


def block_schema(id_type: T.DataType) -> T.StructType:
    """One row per block of documents: its ids in row order and its CSR matrix (``pack_block``)."""
    return T.StructType(
        [
            T.StructField("block", T.IntegerType()),
            T.StructField("ids", T.ArrayType(id_type)),
            T.StructField("indptr", T.BinaryType()),
            T.StructField("indices", T.BinaryType()),
            T.StructField("data", T.BinaryType()),
        ]
    )


def pack_block(entries: pd.DataFrame) -> pd.DataFrame:
    """``applyInPandas`` body: the entries ``(block, doc_id, index, weight)`` of one block as one row.

    Rows are the block's documents sorted by id, so a lower column is a lower id (the tie-break of
    ``top_k_positive``); the CSR arrays travel as raw bytes (int64 indptr, int32 indices, float64 data).
    """
    entries = entries.sort_values(["doc_id", "index"], kind="stable")
    rows, ids = pd.factorize(entries["doc_id"], sort=True)
    indptr = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(ids)), out=indptr[1:])
    return pd.DataFrame(
        {
            "block": [int(entries["block"].iloc[0])],
            "ids": [np.asarray(ids)],
            "indptr": [indptr.tobytes()],
            "indices": [entries["index"].to_numpy(np.int32).tobytes()],
            "data": [entries["weight"].to_numpy(np.float64).tobytes()],
        }
    )


def _csr(ids: np.ndarray, indptr: bytes, indices: bytes, data: bytes) -> sp.csr_matrix:
    cols = np.frombuffer(indices, dtype=np.int32)
    return sp.csr_matrix(
        (np.frombuffer(data, dtype=np.float64), cols, np.frombuffer(indptr, dtype=np.int64)),
        shape=(len(ids), int(cols.max()) + 1 if len(cols) else 0),
    )


def top_k_positive(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores``, the columns of its ``k`` largest positive scores, equal scores by lower column.

    Returns ``(rows, cols)`` ordered by row, then rank. ``np.partition`` finds each row's k-th largest
    score; every score at or above it (ties included) is then sorted, so the cut is deterministic.
    """
    keep = scores > 0
    if scores.shape[1] > k:
        kth = np.partition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k]
        keep &= scores >= kth[:, None]
    rows, cols = np.nonzero(keep)
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    first = np.arange(len(rows)) - np.searchsorted(rows, rows) < k
    return rows[first], cols[first]


def _neighbours(scores: np.ndarray, ids: np.ndarray, neighbour_ids: np.ndarray, k: int) -> pd.DataFrame:
    rows, cols = top_k_positive(scores, k)
    return pd.DataFrame({"doc_id": ids[rows], "neighbour_id": neighbour_ids[cols], "cosine": scores[rows, cols]})


def block_pair_top_k(k: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """``mapInPandas`` body over pairs of packed blocks ``q_*`` and ``d_*`` (``pack_block``) with flags
    ``exclude_self`` (the blocks may hold the same documents: none is its own neighbour) and ``mirror`` (also
    the top-k of the ``d`` documents among the ``q`` ones, for the all-pairs upper triangle).

    Each pair is one scipy sparse product ``Q @ D.T``, densified (block x block), and its rows' top-k;
    out come ``(doc_id, neighbour_id, cosine)``, at most ``k`` per document and pair of blocks.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for pair in batch.itertuples(index=False):
                q = _csr(pair.q_ids, pair.q_indptr, pair.q_indices, pair.q_data)
                d = _csr(pair.d_ids, pair.d_indptr, pair.d_indices, pair.d_data)
                width = max(q.shape[1], d.shape[1])
                q.resize(q.shape[0], width)
                d.resize(d.shape[0], width)
                scores = (q @ d.T).toarray()
                if pair.exclude_self:
                    _, rows, cols = np.intersect1d(pair.q_ids, pair.d_ids, assume_unique=True, return_indices=True)
                    scores[rows, cols] = 0.0
                yield _neighbours(scores, pair.q_ids, pair.d_ids, k)
                if pair.mirror:
                    yield _neighbours(np.ascontiguousarray(scores.T), pair.d_ids, pair.q_ids, k)

    return run


def sparse_vectors_udf(size: int) -> Callable[[Column, Column], Column]:
    """Arrow UDF: ``indices`` and ``values`` list columns (indices sorted, below ``size``) as sparse ML vectors."""
    from pyspark.ml.linalg import VectorUDT

    @arrow_udf(VectorUDT())
    def sparse(indices: pa.Array, values: pa.Array) -> pa.Array:
        fields = [
            pa.field("type", pa.int8()),
            pa.field("size", pa.int32()),
            pa.field("indices", pa.list_(pa.int32())),
            pa.field("values", pa.list_(pa.float64())),
        ]
        return pa.StructArray.from_arrays(
            [
                pa.array(np.zeros(len(indices), np.int8)),
                pa.array(np.full(len(indices), size, np.int32)),
                indices.cast(fields[2].type),
                values.cast(fields[3].type),
            ],
            fields=fields,
        )

    return sparse


def nearest_centroids_udf(centroids: np.ndarray, n: int) -> Callable[[Column, Column], Column]:
    """pandas UDF over sparse vectors given as ``indices`` and ``values`` lists: the indices of each one's
    ``n`` nearest ``centroids`` (Euclidean; by cosine for unit-length centroids), nearest first, equal distances
    by lower index."""
    half_norms = 0.5 * (centroids * centroids).sum(axis=1)

    def run(indices: pd.Series, values: pd.Series) -> pd.Series:
        lengths = indices.map(len).to_numpy()
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.concatenate(indices.to_numpy()) if len(indices) else np.zeros(0)
        data = np.concatenate(values.to_numpy()) if len(values) else np.zeros(0)
        points = sp.csr_matrix((data, flat.astype(np.int64), indptr), shape=(len(indices), centroids.shape[1]))
        distance = half_norms[None, :] - np.asarray(points @ centroids.T)
        return pd.Series(list(np.argsort(distance, axis=1, kind="stable")[:, :n].astype(np.int32)))

    return pandas_udf(run, T.ArrayType(T.IntegerType()))
