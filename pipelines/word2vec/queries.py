"""Batch queries over word vectors: ``most_similar`` (by word or by vector) and analogies, over tables
of queries. The unit-normalised matrix is broadcast once; queries stay distributed (``mapInPandas``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pipelines.connect import require_classic
from pipelines.word2vec.kernel import broadcast_key
from udfs.word2vec import analogy_fn, most_similar_fn, unit_rows

ANSWER_FIELDS = [
    T.StructField("neighbours", T.ArrayType(T.StringType())),
    T.StructField("similarities", T.ArrayType(T.DoubleType())),
]
_WORKER_INDEX: dict[int, tuple] = {}


class VectorIndex:
    """Words and their unit vectors, broadcast to the executors for top-k cosine queries."""

    def __init__(self, spark: SparkSession, words: Sequence[str], vectors: np.ndarray, restrict_vocab: int = 0):
        require_classic(
            spark, "word vector queries (most_similar, analogies)", "executors cache the index by its broadcast's id"
        )
        n = len(words) if restrict_vocab <= 0 else min(restrict_vocab, len(words))
        self.words = np.asarray(list(words[:n]), dtype=object)
        self._bc = spark.sparkContext.broadcast((self.words, unit_rows(vectors[:n])))

    def getter(self):
        bc, key = self._bc, broadcast_key(self._bc)

        def get():
            cached = _WORKER_INDEX.get(key)
            if cached is None:
                _WORKER_INDEX.clear()
                words, unit = bc.value
                cached = _WORKER_INDEX[key] = (words, unit, {w: i for i, w in enumerate(words)})
            return cached

        return get

    def most_similar(
        self, queries: DataFrame, k: int = 10, word_col: str | None = "word", vector_col: str | None = None
    ) -> DataFrame:
        """Each query row plus ``neighbours`` (k words, best first) and their cosine ``similarities``."""
        schema = T.StructType(queries.schema.fields + ANSWER_FIELDS)
        return queries.mapInPandas(most_similar_fn(self.getter(), k, word_col, vector_col), schema)

    def analogies(self, queries: DataFrame, k: int = 1, cols: tuple[str, str, str] = ("a", "b", "c")) -> DataFrame:
        """Each ``a : b :: c : ?`` row plus the ``k`` best answers (3CosAdd) and their cosines."""
        schema = T.StructType(queries.schema.fields + ANSWER_FIELDS)
        return queries.mapInPandas(analogy_fn(self.getter(), k, cols), schema)

    def close(self) -> None:
        self._bc.destroy()
