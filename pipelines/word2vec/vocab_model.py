"""What word2vec's and fastText's stages share besides ``RoundParams``: the model's vocabulary and training
figures, the Parquet tables of its matrices, and the trainers' progress log."""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from pipelines.frames import from_pandas, vector_matrix
from pipelines.stages import SavedModel


class VocabularyModel(SavedModel):
    """A saved model over a vocabulary: ``words`` (most frequent first) with their ``counts``, and ``summary``, the
    figures of its training, kept in the metadata so that a loaded model still reports them."""

    def set_vocabulary(self, words: Sequence[str] | None, counts: np.ndarray | None) -> None:
        """Hold ``words`` and ``counts`` (none: an empty vocabulary), with an empty ``summary``."""
        self.words = list(words or [])
        self.counts = np.asarray(counts if counts is not None else [], np.int64)
        self.summary: dict[str, Any] = {}

    def trained(self, summary: Mapping[str, Any]) -> Any:
        """This model with its training figures: what an estimator's ``_fit`` returns."""
        self.summary = dict(summary)
        return self

    def extra_metadata(self) -> dict[str, Any]:
        return {"summary": self.summary}

    def loaded(self, metadata: Mapping[str, Any]) -> None:
        self.summary = metadata.get("summary", {})


def write_rows(spark: SparkSession, matrix: np.ndarray, path: str, key: str) -> None:
    """``matrix`` as Parquet at ``path``, one ``(key INT, vector ARRAY<FLOAT>)`` row per row, numbered by ``key``
    (Parquet keeps no row order)."""
    rows = pd.DataFrame({key: np.arange(len(matrix), dtype=np.int32), "vector": list(matrix)})
    from_pandas(spark, rows, f"{key} INT, vector ARRAY<FLOAT>").write.parquet(path)


def read_rows(spark: SparkSession, path: str, key: str) -> np.ndarray:
    """The matrix ``write_rows`` wrote at ``path``, its rows in ``key`` order."""
    return vector_matrix(spark.read.parquet(path).orderBy(key).toArrow())


def progress_log(tag: str) -> Callable[[str], None]:
    """A trainer's ``log``: each message on stderr after ``[tag]``, flushed so that it shows while Spark runs."""

    def log(message: str) -> None:
        print(f"[{tag}] {message}", file=sys.stderr, flush=True)

    return log
