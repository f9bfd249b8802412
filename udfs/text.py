"""Vectorised UDF bodies for text: Unicode normalisation, jieba segmentation, sparse TF-IDF arithmetic.

The segmenters are built once per Python worker (jieba's dictionary takes about a second to load) and
kept in a module-level cache, which survives between tasks because Spark reuses its Python workers.
Sparse vectors travel as Arrow structs ``(type, size, indices, values)``; the arithmetic runs on the
flattened entries of a whole batch at once with numpy, never row by row.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column
from pyspark.sql import types as T
from pyspark.sql.functions import arrow_udf, pandas_udf

if TYPE_CHECKING:
    import jieba

_SEGMENTERS: dict[str, "jieba.Tokenizer"] = {}
ENTRIES_TYPE = T.StructType([T.StructField("indices", T.ArrayType(T.IntegerType())),
                             T.StructField("values", T.ArrayType(T.DoubleType()))])


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


def _normalise(texts: pd.Series, form: str) -> pd.Series:
    return texts.str.normalize(form) if form else texts


def normalise_udf(form: str) -> Callable[[Column], Column]:
    """Unicode normalisation (NFC, NFKC, NFD, NFKD) of a string column; Spark SQL has none."""

    @pandas_udf(T.StringType())
    def normalise(texts: pd.Series) -> pd.Series:
        return _normalise(texts, form)

    return normalise


def segment_udf(form: str, user_dict: str) -> Callable[[Column], Column]:
    """Normalise then cut each text into words with jieba (precise mode); array<string> per text."""

    @pandas_udf(T.ArrayType(T.StringType()))
    def segment(texts: pd.Series) -> pd.Series:
        cut = segmenter(user_dict).lcut
        return pd.Series([cut(text) for text in _normalise(texts, form)], index=texts.index)

    return segment


def _flat(vectors: pa.StructArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row lengths, flat indices and flat values (float64 copy) of a batch of sparse vectors."""
    if pc.any(pc.equal(vectors.field("type"), 1)).as_py():
        raise ValueError("expected sparse vectors (CountVectorizer/HashingTF output), got a dense vector")
    indices, values = vectors.field("indices"), vectors.field("values")
    lengths = pc.fill_null(pc.list_value_length(indices), 0).to_numpy(zero_copy_only=False)
    return (lengths, indices.flatten().to_numpy(zero_copy_only=False).astype(np.int32),
            values.flatten().to_numpy(zero_copy_only=False).astype(np.float64))


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
        [pc.fill_null(vectors.field("type"), 0), vectors.field("size"),
         _lists(lengths, indices, fields[2].type), _lists(lengths, values, fields[3].type)], fields=fields)


def tfidf_udf(idf: np.ndarray | None, sublinear_tf: bool, norm: str) -> Callable[[Column], Column]:
    """Arrow UDF: count vectors -> TF-IDF vectors (see ``reweight``); ``idf`` None means all ones."""
    from pyspark.ml.linalg import VectorUDT

    @arrow_udf(VectorUDT())
    def tfidf(vectors: pa.Array) -> pa.Array:
        return reweight(vectors, idf, sublinear_tf, norm)

    return tfidf


@arrow_udf(ENTRIES_TYPE)
def vector_entries_udf(vectors: pa.Array) -> pa.Array:
    """Arrow UDF: a sparse vector column as ``struct(indices, values)``, ready to explode in the JVM."""
    lengths, indices, values = _flat(vectors)
    return pa.StructArray.from_arrays([_lists(lengths, indices, pa.list_(pa.int32())),
                                       _lists(lengths, values, pa.list_(pa.float64()))],
                                      names=["indices", "values"])
