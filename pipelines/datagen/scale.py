"""Generators whose size and shape scale freely, for scaling benchmarks: a Zipf corpus and clustered vectors.

Unlike the demo corpus (a fixed 3,000-word world), the Zipf corpus takes its vocabulary size as a
parameter, so that tokens and vocabulary can grow together. Both are pure functions of (seed, chunk), as
``pipelines.datagen.chunks.generate`` needs, and run on the executors.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from pipelines.datagen.world import rng_for

ZIPF_CORPUS_SCHEMA = "doc_id BIGINT, text STRING"
VECTORS_SCHEMA = "item_id BIGINT, vector ARRAY<FLOAT>"


def word(i: int) -> str:
    """The ``i``-th generated word: ``z`` then ``i`` in base 26 letters (``za``, ``zb`` .. ``zba``), no stop word."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out = chr(97 + r) + out
        if i == 0:
            return "z" + out


@lru_cache(maxsize=4)
def _zipf_words(vocab_size: int, exponent: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative Zipf-Mandelbrot probabilities of ranks 1..vocab_size, and the words (cached per worker)."""
    weights = 1.0 / (np.arange(1, vocab_size + 1) + shift) ** exponent
    return np.cumsum(weights / weights.sum()), np.array([word(i) for i in range(vocab_size)], dtype=object)


def zipf_corpus_chunk(
    seed: int,
    chunk: int,
    start: int,
    count: int,
    vocab_size: int = 50_000,
    exponent: float = 1.05,
    shift: float = 2.7,
    median_length: int = 150,
) -> pd.DataFrame:
    """Documents ``start .. start+count-1``: words drawn Zipf-Mandelbrot from ``vocab_size`` words; lengths
    log-normal (sigma 1, ``median_length``, 5..5000 tokens: a heavy tail like Wikipedia articles)."""
    rng = rng_for(seed, "zipf_corpus", chunk)
    cdf, words = _zipf_words(vocab_size, exponent, shift)
    lengths = np.clip(rng.lognormal(np.log(median_length), 1.0, count).astype(np.int64), 5, 5000)
    ids = np.minimum(np.searchsorted(cdf, rng.random(int(lengths.sum()))), vocab_size - 1)
    texts = [" ".join(doc) for doc in np.split(words[ids], np.cumsum(lengths)[:-1])]
    return pd.DataFrame({"doc_id": np.arange(start, start + count, dtype=np.int64), "text": texts})


def clustered_vectors_chunk(
    seed: int, chunk: int, start: int, count: int, dim: int = 128, clusters: int = 256, spread: float = 0.3
) -> pd.DataFrame:
    """Items ``start .. start+count-1`` around ``clusters`` standard normal centres shared by every chunk
    (float32, Gaussian noise of ``spread`` times the centres' scale)."""
    centres = rng_for(seed, "vector_centres").standard_normal((clusters, dim)).astype(np.float32)
    rng = rng_for(seed, "vectors", chunk)
    noise = rng.standard_normal((count, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, count)] + spread * noise
    return pd.DataFrame({"item_id": np.arange(start, start + count, dtype=np.int64), "vector": list(vectors)})
