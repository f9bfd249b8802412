"""fastText's character n-grams of a word, hashed into buckets, and word vectors composed from them.

As official fastText (``Dictionary::computeSubwords``): the word gets boundary markers ``<word>``, its n-grams
are every run of ``min_n .. max_n`` characters (UTF-8 code points), in order of start then length, except the
markers alone (``<`` or ``>`` when ``min_n`` is 1); each goes to bucket ``hash % buckets`` with the FNV-1a
``hash`` of the supervised fastText (``fasttext_ids.fnv_hashes``). A repeated n-gram counts each time. A
vocabulary word's vector is the mean of its own row and its n-grams' rows; a word never seen in training gets
the mean of its n-grams' rows (fastText's ``getWordVector``). gensim's ``FastText``, our training kernel, hashes
the same way (``tests/test_word2vec_subwords.py`` checks both against the ``fasttext`` package).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from scipy import sparse

from pipelines.connect import share
from pipelines.text.fasttext_ids import fnv_hashes


def char_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """The character n-grams of ``<word>``, as fastText lists them (``get_subwords`` less the word itself)."""
    marked = f"<{word}>"
    return [
        marked[i : i + n]
        for i in range(len(marked))
        for n in range(min_n, max_n + 1)
        if i + n <= len(marked) and not (n == 1 and (i == 0 or i + n == len(marked)))
    ]


def ngram_buckets(words: Sequence[str], min_n: int, max_n: int, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n-grams per word, flat bucket ids)``: each word's n-gram buckets in ``char_ngrams`` order."""
    grams = [char_ngrams(word, min_n, max_n) for word in words]
    lengths = np.fromiter((len(g) for g in grams), np.int64, len(grams))
    flat = pa.array([gram for word_grams in grams for gram in word_grams], pa.string())
    return lengths, (fnv_hashes(flat) % np.uint32(buckets)).astype(np.int64)


def compose(
    words: Sequence[str], word_rows: np.ndarray | None, ngrams: np.ndarray, min_n: int, max_n: int
) -> np.ndarray:
    """Word vectors as fastText composes them: the mean of each word's own row (``word_rows``, None for words
    out of the vocabulary) and its n-grams' rows of ``ngrams``. A word with neither gets zeros."""
    lengths, ids = ngram_buckets(words, min_n, max_n, len(ngrams))
    own = 0 if word_rows is None else 1
    rows = np.repeat(np.arange(len(words)), lengths)
    weights = 1.0 / np.maximum(lengths + own, 1)
    mean = sparse.csr_matrix((weights[rows].astype(np.float32), (rows, ids)), shape=(len(words), len(ngrams)))
    vectors = np.asarray(mean @ ngrams, np.float32)  # duplicate (row, bucket) pairs add up, as fastText's
    if word_rows is not None:
        vectors += word_rows * weights[:, None].astype(np.float32)
    return vectors


def with_oov_vectors(
    table: DataFrame, word_col: str, out_col: str, words: Sequence[str], ngrams: np.ndarray, min_n: int, max_n: int
) -> DataFrame:
    """``table`` plus ``out_col``: each word's vector from its n-grams when it is not one of ``words`` (null for
    the vocabulary's words and null words), computed in a pandas UDF against the shared n-gram rows."""
    shared = share(table.sparkSession, (frozenset(words), ngrams, min_n, max_n), "the n-gram rows")

    @F.pandas_udf(T.ArrayType(T.FloatType()))
    def oov_vector(batch: pd.Series) -> pd.Series:
        known, rows, lo, hi = shared.value
        unknown = [w for w in batch if w is not None and w not in known]
        vectors = iter(compose(unknown, None, rows, lo, hi)) if unknown else iter(())
        out = [next(vectors) if w is not None and w not in known else None for w in batch]
        return pd.Series(out, index=batch.index, dtype=object)

    return table.withColumn(out_col, oov_vector(F.col(word_col)))
