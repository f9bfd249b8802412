"""The vocabulary step as Spark aggregates: counts, min_count, max size, subsampling keep-probabilities.

The corpus is a DataFrame with an ``array<string>`` column and stays distributed; only the vocabulary
(one row per kept word) comes to the driver. Words are ordered by count (descending), ties by word, so
index 0 is the most frequent word, as in word2vec and gensim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.frames import from_pandas
from pipelines.word2vec.errors import EmptyCorpusError, EmptyVocabularyError


@dataclass(frozen=True)
class Vocabulary:
    """Kept words with their counts, most frequent first, and the corpus totals they came from."""

    words: list[str]
    counts: np.ndarray  # int64, descending
    corpus_tokens: int  # all tokens, including words dropped by min_count
    sentences: int  # non-empty token sequences

    def __len__(self) -> int:
        return len(self.words)

    @property
    def retained_tokens(self) -> int:
        return int(self.counts.sum())

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def to_frame(self, spark: SparkSession, sample: float = 0.0) -> DataFrame:
        """``(word, count, index, keep_probability)`` as a DataFrame (for joins and inspection)."""
        import pandas as pd

        keep = keep_probabilities(self.counts, sample)
        pdf = pd.DataFrame(
            {
                "word": self.words,
                "count": self.counts.astype(np.int64),
                "index": np.arange(len(self), dtype=np.int32),
                "keep_probability": keep,
            }
        )
        return from_pandas(spark, pdf, "word STRING, count BIGINT, index INT, keep_probability DOUBLE")


def build_vocabulary(
    corpus: DataFrame, tokens_col: str = "tokens", min_count: int = 5, max_vocab_size: int = 0
) -> Vocabulary:
    """Count words with a Spark aggregate; keep those with ``count >= min_count``, then the
    ``max_vocab_size`` most frequent (0: all). Raises before any training on an empty corpus/vocabulary."""
    tokens = F.col(tokens_col)
    totals = corpus.agg(
        F.coalesce(F.sum(F.size(tokens)), F.lit(0)).alias("tokens"), F.count_if(F.size(tokens) > 0).alias("sentences")
    ).first()
    if totals["tokens"] <= 0:
        raise EmptyCorpusError(f"the corpus has no tokens (column '{tokens_col}'): nothing to train on")
    counts = (
        corpus.select(F.explode(tokens).alias("word"))
        .groupBy("word")
        .count()
        .filter(F.col("count") >= min_count)
        .orderBy(F.desc("count"), "word")
    )
    if max_vocab_size > 0:
        counts = counts.limit(max_vocab_size)
    table = counts.toPandas()
    if table.empty:
        raise EmptyVocabularyError(
            f"no word occurs at least min_count={min_count} times in "
            f"{totals['tokens']} tokens; lower min_count or give more text"
        )
    return Vocabulary(
        table["word"].tolist(), table["count"].to_numpy(np.int64), int(totals["tokens"]), int(totals["sentences"])
    )


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: keep an occurrence of word w with ``(sqrt(c_w / t) + 1) * t / c_w`` (capped at 1),
    ``t = sample * total`` (gensim's and the C tool's formula); ``sample <= 0`` keeps everything."""
    counts = np.asarray(counts, np.float64)
    if sample <= 0 or counts.size == 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum() if sample < 1.0 else sample * (3 + np.sqrt(5)) / 2
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)
