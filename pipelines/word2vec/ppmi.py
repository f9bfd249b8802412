"""``ppmi``: count-based vectors. Window co-occurrence counts as a Spark aggregate (each partition
pre-aggregates its pairs with numpy), shifted positive PMI with context-distribution smoothing in
Spark, then a truncated SVD of the sparse PPMI matrix on the driver (``scipy.sparse.linalg.svds``);
vectors are ``U * sqrt(S)`` (symmetric eigenvalue weighting, Levy et al. 2015)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy.sparse.linalg import svds

from pipelines.connect import share
from pipelines.word2vec.errors import ModelTooLargeError
from pipelines.word2vec.vocabulary import Vocabulary

PAIRS_SCHEMA = "w INT, c INT, n DOUBLE"
FLUSH_PAIRS = 20_000_000  # pre-aggregate at most this many pairs at once in a Python worker


@dataclass(frozen=True)
class PpmiSettings:
    vector_size: int = 100
    window: int = 5
    shift: float = 1.0  # k of "shifted" PPMI: max(PMI - log k, 0)
    context_alpha: float = 0.75  # context-distribution smoothing exponent
    max_vocab: int = 200000  # largest vocabulary factorised on the driver
    seed: int = 1


def _pairs_fn(vocab_bc, window: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """``mapInArrow`` body: all (word, context) pairs within ``window`` (weighted ``(window - d + 1) / window``
    as word2vec's dynamic window), out-of-vocabulary tokens removed first, summed over up to ``FLUSH_PAIRS`` pairs."""

    def summed(keys: list[np.ndarray], weights: list[np.ndarray], size: int) -> Iterator[pa.RecordBatch]:
        key, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        total = np.bincount(inverse, weights=np.concatenate(weights))
        for start in range(0, len(key), 1_000_000):
            k = key[start : start + 1_000_000]
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array((k // size).astype(np.int32)),
                    pa.array((k % size).astype(np.int32)),
                    pa.array(total[start : start + 1_000_000]),
                ],
                names=["w", "c", "n"],
            )

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        vocab = vocab_bc.value
        size = len(vocab)
        keys: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        pending = 0
        for batch in batches:
            lists = batch.column(0)
            ids = pc.index_in(lists.flatten(), value_set=vocab).fill_null(-1).to_numpy(zero_copy_only=False)
            lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
            sent = np.repeat(np.arange(len(lengths)), lengths)
            keep = ids >= 0
            ids, sent = ids[keep].astype(np.int64), sent[keep]
            for d in range(1, window + 1):
                same = sent[:-d] == sent[d:]
                w, c = ids[:-d][same], ids[d:][same]
                keys += [w * size + c, c * size + w]
                weights.append(np.full(2 * len(w), (window - d + 1) / window))
                pending += 2 * len(w)
            if pending > FLUSH_PAIRS:
                yield from summed(keys, weights, size)
                keys, weights, pending = [], [], 0
        if keys:
            yield from summed(keys, weights, size)

    return run


def ppmi_matrix(
    corpus: DataFrame, vocab: Vocabulary, settings: PpmiSettings, tokens_col: str = "tokens"
) -> sp.csr_matrix:
    """Shifted PPMI as a sparse ``(V, V)`` matrix: counts and PMI in Spark, only positive cells collected."""
    spark = corpus.sparkSession
    vocab_bc = share(spark, pa.array(vocab.words, pa.string()), "the vocabulary")
    try:
        pairs = (
            corpus.select(tokens_col)
            .mapInArrow(_pairs_fn(vocab_bc, settings.window), PAIRS_SCHEMA)
            .groupBy("w", "c")
            .agg(F.sum("n").alias("n"))
            .cache()
        )
        word = pairs.groupBy("w").agg(F.sum("n").alias("n_w"))
        context = pairs.groupBy("c").agg(F.pow(F.sum("n"), settings.context_alpha).alias("p_c"))
        total = pairs.agg(F.sum("n")).first()[0] or 0.0
        smoothed = context.agg(F.sum("p_c")).first()[0] or 0.0
        if total <= 0:
            return sp.csr_matrix((len(vocab), len(vocab)), dtype=np.float32)
        pmi = F.log(F.col("n") * smoothed / (F.col("n_w") * F.col("p_c"))) - F.lit(float(np.log(settings.shift)))
        cells = (
            pairs.join(F.broadcast(word), "w")
            .join(F.broadcast(context), "c")
            .select("w", "c", pmi.cast("float").alias("v"))
            .filter(F.col("v") > 0)
            .toArrow()
        )
        pairs.unpersist()
    finally:
        vocab_bc.destroy()
    rows, cols, vals = (cells.column(name).to_numpy() for name in ("w", "c", "v"))
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(vocab), len(vocab)), dtype=np.float32)


def train_ppmi(
    corpus: DataFrame,
    vocab: Vocabulary,
    settings: PpmiSettings,
    tokens_col: str = "tokens",
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, dict]:
    """PPMI vectors ``(V, vector_size)`` in vocabulary order, and figures."""
    if len(vocab) > settings.max_vocab:
        raise ModelTooLargeError(
            f"ppmi factorises the {len(vocab)}-word matrix on the driver; the limit is "
            f"max_vocab={settings.max_vocab}: raise min_count or set max_vocab_size"
        )
    started = time.time()
    matrix = ppmi_matrix(corpus, vocab, settings, tokens_col)
    log(f"ppmi matrix {matrix.shape[0]} x {matrix.shape[1]}, {matrix.nnz} positive cells, {time.time() - started:.1f}s")
    k = min(settings.vector_size, min(matrix.shape) - 1)
    if k < 1 or matrix.nnz == 0:
        return np.zeros((len(vocab), settings.vector_size), np.float32), {"nnz": int(matrix.nnz)}
    v0 = np.random.default_rng(settings.seed).standard_normal(min(matrix.shape))
    u, s, _ = svds(matrix, k=k, v0=v0)
    vectors = np.zeros((len(vocab), settings.vector_size), np.float32)
    vectors[:, :k] = (u * np.sqrt(s))[:, ::-1]
    return vectors, {"nnz": int(matrix.nnz), "train_s": round(time.time() - started, 3)}
