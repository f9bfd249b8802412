"""Arrow UDFs of the supervised fastText model (``pipelines.text.fasttext``): the ids of each row of tokens, and
class log-probabilities.

Both take a batch of token lists as Arrow and work on the whole batch in numpy (``pipelines.text.fasttext_ids``,
``pipelines.text.fasttext_kernel``). Declared at each call, like the project's other UDFs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import types as T
from pyspark.sql.functions import arrow_udf

from pipelines.text.fasttext_ids import compact_ids, line_ids
from pipelines.text.fasttext_kernel import Tree, hidden, log_probabilities

PREDICTION_TYPE = "logProbability array<double>, prediction double"


@dataclass(frozen=True)
class Scorer:
    """What a task needs to score rows: vocabulary (id order), used buckets (sorted), the two matrices."""

    words: pa.Array
    buckets: np.ndarray
    w_in: np.ndarray
    w_out: np.ndarray
    word_ngrams: int
    bucket: int
    loss: str
    tree: Tree | None

    def log_probabilities(self, tokens: pa.Array) -> np.ndarray:
        lengths, ids = line_ids(tokens, self.words, self.word_ngrams, self.bucket)
        ids = compact_ids(ids, len(self.words), self.buckets)
        return log_probabilities(self.w_out, hidden(self.w_in, lengths, ids), self.loss, self.tree)


def _lists(rows: np.ndarray) -> pa.ListArray:
    offsets = np.arange(len(rows) + 1, dtype=np.int32) * rows.shape[1]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.ravel().astype(np.float64)))


def ids_udf(words: Any, word_ngrams: int, bucket: int) -> Any:
    """Arrow UDF: tokens -> fastText's raw ids of the row (``line_ids``); ``words`` is a broadcast (or shipped)
    Arrow array of the vocabulary."""

    def ids(tokens: pa.Array) -> pa.Array:
        lengths, flat = line_ids(tokens, words.value, word_ngrams, bucket)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.astype(np.int32)))

    return arrow_udf(ids, T.ArrayType(T.IntegerType()))


def predict_udf(scorer: Any) -> Any:
    """Arrow UDF: tokens -> ``struct(logProbability, prediction)`` for a broadcast (or shipped) ``Scorer``; the
    prediction is the most probable class, ties to the lower index."""

    def predict(tokens: pa.Array) -> pa.Array:
        lp = scorer.value.log_probabilities(tokens)
        return pa.StructArray.from_arrays(
            [_lists(lp), pa.array(lp.argmax(axis=1).astype(np.float64))], names=["logProbability", "prediction"]
        )

    return arrow_udf(predict, PREDICTION_TYPE)
