"""Vectorised bodies of the Word2Vec query UDFs: cosine top-k of a batch of query vectors against a
broadcast unit-normalised matrix, blocked so a batch never materialises more than ``block x V`` scores."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd

BLOCK = 256


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def top_k_cosine(
    queries: np.ndarray, unit: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the ``k`` rows of ``unit`` nearest each (unit) query, best first.
    ``exclude`` is ``(n, m)`` row indices to skip per query (-1 for none), e.g. the query words."""
    n, k = len(queries), min(k, len(unit))
    idx, sims = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    for start in range(0, n, BLOCK):
        scores = queries[start : start + BLOCK] @ unit.T
        if exclude is not None:
            ex = exclude[start : start + BLOCK]
            rows = np.repeat(np.arange(len(ex)), ex.shape[1])
            cols = ex.ravel()
            keep = cols >= 0
            scores[rows[keep], cols[keep]] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        idx[start : start + BLOCK] = np.take_along_axis(part, order, axis=1)
        sims[start : start + BLOCK] = np.take_along_axis(part_scores, order, axis=1)
    return idx, sims


def _lookup(index: dict[str, int], words: pd.Series) -> np.ndarray:
    return np.array([index.get(w, -1) if isinstance(w, str) else -1 for w in words], np.int64)


def _answers(words: np.ndarray, idx: np.ndarray, sims: np.ndarray, valid: np.ndarray) -> tuple[list, list]:
    neighbours = [list(words[row]) if ok else None for row, ok in zip(idx, valid)]
    similarities = [row.astype(float).tolist() if ok else None for row, ok in zip(sims, valid)]
    return neighbours, similarities


def most_similar_fn(
    get: Callable[[], tuple[np.ndarray, np.ndarray, dict[str, int]]],
    k: int,
    word_col: str | None,
    vector_col: str | None,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """``mapInPandas`` body: each query row (a word, or a vector when the word is null/absent) gets its
    ``k`` nearest words (the query word itself excluded) and their cosines; unknown words get nulls."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        words, unit, index = get()
        dim = unit.shape[1]
        for pdf in batches:
            rows = _lookup(index, pdf[word_col]) if word_col else np.full(len(pdf), -1)
            q = np.zeros((len(pdf), dim), np.float32)
            q[rows >= 0] = unit[rows[rows >= 0]]
            valid = rows >= 0
            if vector_col:
                given = np.array([v is not None and len(v) == dim for v in pdf[vector_col]]) & ~valid
                if given.any():
                    q[given] = unit_rows(np.stack([np.asarray(v, np.float32) for v in pdf[vector_col][given]]))
                valid |= given
            idx, sims = top_k_cosine(q, unit, k, rows[:, None])
            out = pdf.copy()
            out["neighbours"], out["similarities"] = _answers(words, idx, sims, valid)
            yield out

    return run


def analogy_fn(
    get: Callable[[], tuple[np.ndarray, np.ndarray, dict[str, int]]], k: int, cols: tuple[str, str, str]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """``mapInPandas`` body: ``a : b :: c : ?`` by 3CosAdd on unit vectors (``b - a + c``), the three
    question words excluded, as gensim's ``most_similar(positive=[b, c], negative=[a])``; questions with a
    word outside the (possibly restricted) vocabulary get nulls."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        words, unit, index = get()
        for pdf in batches:
            a, b, c = (_lookup(index, pdf[col]) for col in cols)
            valid = (a >= 0) & (b >= 0) & (c >= 0)
            q = np.zeros((len(pdf), unit.shape[1]), np.float32)
            q[valid] = unit_rows(unit[b[valid]] - unit[a[valid]] + unit[c[valid]])
            idx, sims = top_k_cosine(q, unit, k, np.stack([a, b, c], axis=1))
            out = pdf.copy()
            out["neighbours"], out["similarities"] = _answers(words, idx, sims, valid)
            yield out

    return run


def mean_vector_udf(bc):
    """Pandas UDF: the mean of a row's known token vectors (zeros when none is known), as MLlib's transform."""
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(T.ArrayType(T.FloatType()))
    def mean_vector(tokens: pd.Series) -> pd.Series:
        index, vectors = bc.value
        out = []
        for row in tokens:
            ids = [index[w] for w in (row if row is not None else []) if w in index]
            out.append(vectors[ids].mean(axis=0) if ids else np.zeros(vectors.shape[1], np.float32))
        return pd.Series(out, index=tokens.index, dtype=object)

    return mean_vector
