"""``mllib``: Spark's own ``pyspark.ml.feature.Word2Vec`` (skip-gram, hierarchical softmax), for comparison;
its vectors are returned in our vocabulary order so every trainer's output has the same shape."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pyspark.ml.feature import Word2Vec as SparkWord2Vec
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame

from pipelines.word2vec.vocabulary import Vocabulary


@dataclass(frozen=True)
class MllibSettings:
    """MLlib's Params, from ``Word2Vec``'s (whose defaults apply)."""

    vector_size: int
    window: int
    min_count: int
    num_partitions: int
    max_iter: int
    step_size: float
    seed: int


def train_mllib(
    corpus: DataFrame, vocab: Vocabulary, settings: MllibSettings, tokens_col: str = "tokens"
) -> tuple[np.ndarray, dict]:
    started = time.time()
    model = SparkWord2Vec(
        vectorSize=settings.vector_size,
        windowSize=settings.window,
        minCount=settings.min_count,
        numPartitions=settings.num_partitions,
        maxIter=settings.max_iter,
        stepSize=settings.step_size,
        seed=settings.seed,
        inputCol=tokens_col,
    ).fit(corpus)
    table = model.getVectors().select("word", vector_to_array("vector", "float32").alias("v")).toArrow()
    index = {w: i for i, w in enumerate(table.column("word").to_pylist())}
    found = np.array([index.get(w, -1) for w in vocab.words])
    matrix = np.stack(table.column("v").to_numpy(zero_copy_only=False)) if table.num_rows else np.zeros((0, 1))
    vectors = np.zeros((len(vocab), settings.vector_size), np.float32)
    vectors[found >= 0] = matrix[found[found >= 0]]
    return vectors, {"train_s": round(time.time() - started, 3), "mllib_words": int(table.num_rows)}
