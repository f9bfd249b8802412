"""The per-partition kernel: gensim's compiled Word2Vec (or FastText, with subwords), built in one place from our
vocabulary counts.

``make_gensim_model`` is the only constructor of a gensim model in the project: the vocabulary (order
and counts) is ours, so gensim's subsampling table, noise table and Huffman tree come from the same
counts as ``vocabulary``/``coding``. ``train_shard`` runs one slice of training on one shard from given
weights and returns the trained weights; models are cached per Python worker (Spark reuses workers). With
subwords (``max_n > 0``) the model is gensim's ``FastText`` and its layers are the words' own input rows, the
output layer and the n-gram buckets' input rows (``layers``).
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

logging.getLogger("gensim").setLevel(logging.WARNING)

ARCHITECTURES = ("skipgram", "cbow")
LOSSES = ("negative", "hierarchical")


@dataclass(frozen=True)
class KernelSettings:
    """What the compiled kernel needs; the names follow the job configuration."""

    vector_size: int = 100
    window: int = 5
    sample: float = 1e-3
    architecture: str = "skipgram"
    loss: str = "negative"
    negative: int = 5
    ns_exponent: float = 0.75
    seed: int = 1
    min_n: int = 3  # subwords: character n-grams of min_n .. max_n characters
    max_n: int = 0  # 0: no subwords (word2vec); else fastText's skip-gram/CBOW
    buckets: int = 200_000  # subwords: rows n-grams are hashed into

    @property
    def subwords(self) -> bool:
        return self.max_n > 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: expected one of {list(ARCHITECTURES)}, got {self.architecture!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {self.loss!r}")
        if self.vector_size < 1 or self.window < 1 or (self.loss == "negative" and self.negative < 1):
            raise ValueError("vector_size, window and negative must be positive")
        if self.subwords and not (1 <= self.min_n <= self.max_n and self.buckets >= 1):
            raise ValueError(
                f"subwords: expected 1 <= min_n <= max_n and buckets >= 1, got min_n {self.min_n}, "
                f"max_n {self.max_n}, buckets {self.buckets}"
            )

    def gensim_kwargs(self) -> dict:
        hs = self.loss == "hierarchical"
        return dict(
            vector_size=self.vector_size,
            window=self.window,
            sample=self.sample,
            sg=int(self.architecture == "skipgram"),
            hs=int(hs),
            negative=0 if hs else self.negative,
            ns_exponent=self.ns_exponent,
            seed=self.seed,
            min_count=1,
            sorted_vocab=0,
            workers=1,
            **(dict(min_n=self.min_n, max_n=self.max_n, bucket=self.buckets) if self.subwords else {}),
        )


def make_gensim_model(words: Sequence[str], counts: np.ndarray, settings: KernelSettings):
    """A gensim ``Word2Vec`` (``FastText`` with subwords) with our vocabulary (our order, our counts) and gensim's
    seeded initial weights. A FastText model does not compose its word vectors after training (gensim's
    ``adjust_vectors``, a Python loop over every word's n-grams, seconds a task and round): ``subwords.compose``
    does it once, at the end."""
    from gensim.models import FastText, Word2Vec

    model = (FastText if settings.subwords else Word2Vec)(**settings.gensim_kwargs())
    model.build_vocab_from_freq({w: int(c) for w, c in zip(words, counts)})
    if list(model.wv.index_to_key[:10]) != list(words[:10]) or len(model.wv) != len(words):
        raise RuntimeError("gensim reordered or dropped vocabulary words")
    if settings.subwords:
        model.wv.adjust_vectors = lambda: None
    return model


def output_weights(model) -> np.ndarray:
    """The output layer the loss trains: ``syn1`` (hierarchical softmax) or ``syn1neg`` (negative sampling)."""
    return model.syn1 if model.hs else model.syn1neg


def layers(model) -> tuple[np.ndarray, ...]:
    """The arrays training changes: (input, output), and with subwords the n-gram buckets' input rows third."""
    if hasattr(model.wv, "vectors_ngrams"):
        return model.wv.vectors_vocab, output_weights(model), model.wv.vectors_ngrams
    return model.wv.vectors, output_weights(model)


_CACHE: dict[int, object] = {}


def broadcast_key(bc) -> int:
    """A broadcast's id, read on the driver: the key of per-worker caches built from its value."""
    return int(bc._jbroadcast.id())


def _cached_model(key: int, words: Sequence[str], counts: np.ndarray, settings: KernelSettings):
    """The worker's model for vocabulary ``key``. Its objects (a vocabulary dict and lists per word) are frozen
    out of the cyclic GC, which PySpark runs after every task: 65 ms a task at 71K words, 0.5 s a round
    with 8 partitions, for objects that live as long as the worker."""
    model = _CACHE.get(key)
    if model is None:
        _CACHE.clear()
        gc.unfreeze()
        gc.collect()
        model = _CACHE[key] = make_gensim_model(words, counts, settings)
        gc.collect()
        gc.freeze()
    return model


def train_shard(
    sentences: list[list[str]],
    weights: tuple[np.ndarray, ...],
    vocab_key: int,
    words: Sequence[str],
    counts: np.ndarray,
    settings: KernelSettings,
    start_alpha: float,
    end_alpha: float,
    stream: tuple[int, ...],
) -> tuple[tuple[np.ndarray, ...], int, tuple[float, float]]:
    """Train on ``sentences`` from ``weights`` (the model's ``layers``) with alpha decaying ``start_alpha ->
    end_alpha``; return (trained layers, words trained, (seconds in all, seconds training)).
    The layers are the cached model's own arrays, valid until the worker's next call: the caller takes the
    deltas block by block instead of holding a third copy of the model. ``stream`` seeds gensim's random state."""
    started = time.time()
    model = _cached_model(vocab_key, words, counts, settings)
    for layer, start in zip(layers(model), weights, strict=True):
        np.copyto(layer, start)
    model.random = np.random.RandomState(np.random.SeedSequence(stream).generate_state(1)[0])
    if not sentences:
        return layers(model), 0, (time.time() - started, 0.0)
    t0 = time.time()
    trained, _ = model.train(
        sentences,
        total_examples=len(sentences),
        epochs=1,
        start_alpha=start_alpha,
        end_alpha=end_alpha,
        compute_loss=False,
    )
    t1 = time.time()
    return layers(model), int(trained), (time.time() - started, t1 - t0)
