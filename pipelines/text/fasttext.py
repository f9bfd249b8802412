"""Supervised fastText as Spark ML stages: ``FastTextClassifier`` (Estimator) and ``FastTextClassificationModel``.

The classifier reads a tokens column (``array<string>``, ``TextTokenizer``'s output) and a label column of class
indices (double ``0 .. K-1``, e.g. ``StringIndexer``'s), and trains official fastText's supervised model
(``fasttext_ids``: vocabulary words and hashed word n-grams; ``fasttext_kernel``: averaged embeddings, a linear
layer, softmax or hierarchical softmax; ``fasttext_trainer``: shard-parallel SGD on Spark). The model adds
``rawPrediction`` (class log-probabilities), ``probability`` and ``prediction`` (double), as Spark's
``LogisticRegression`` does.

The driver holds the vocabulary (one string and count per word), the sorted used bucket ids and the two matrices
(see ``fasttext_trainer``); a model is saved as ML metadata plus two Parquet tables written through the session
(``data/input``: one row per input-matrix row with its word and count or its bucket; ``data/output``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param.shared import HasLabelCol, HasPredictionCol, HasProbabilityCol, HasRawPredictionCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.connect import share
from pipelines.errors import UserError
from pipelines.frames import from_pandas, vector_matrix
from pipelines.stages import param
from pipelines.text.fasttext_ids import EOS
from pipelines.text.fasttext_kernel import Tree
from pipelines.text.fasttext_trainer import FastTextSettings, train_fasttext
from pipelines.word2vec.trainer_sgns import RoundParams
from pipelines.word2vec.vocab_model import VocabularyModel, progress_log, read_rows, write_rows
from pipelines.word2vec.vocabulary import build_vocabulary
from udfs.fasttext import Scorer, ids_udf, predict_udf

INPUT_SCHEMA = "index INT, word STRING, count BIGINT, bucket INT, vector ARRAY<FLOAT>"


class FastTextError(UserError):
    """Bad fastText input or settings: a label column that is not class indices, a bad parameter value."""


class _FastTextParams(RoundParams, HasLabelCol, HasPredictionCol, HasProbabilityCol, HasRawPredictionCol):
    """Official fastText's supervised defaults; batchSize, numPartitions, syncsPerEpoch, epochsPerSync and combine
    are ours (combine: see fasttext_trainer)."""

    seed = param(0, "random seed")
    dim = param(100, "embedding dimensions")
    lr = param(0.1, "initial learning rate (decays linearly to 0)")
    epoch = param(5, "passes over the training rows")
    minCount = param(1, "words seen fewer times get no id of their own")
    wordNgrams = param(1, "word n-grams of 2..wordNgrams words are hashed into buckets (1: none)")
    bucket = param(2_000_000, "hash buckets of word n-grams (only those seen in training take memory)")
    loss = param("softmax", "softmax | hs (hierarchical softmax over a Huffman tree of class counts)")
    batchSize = param(32, "rows per vectorised SGD step of the numpy kernel")
    epochsPerSync = param(
        1, "epochs each partition trains between synchronisations (>1: local SGD over whole shards, fewer rounds)"
    )
    combine = param("average", "average | rows | sum of the partitions' deltas (see fasttext_trainer)")

    def buckets_in_use(self) -> int:
        """fastText's bucket count in force: none without word n-grams."""
        return self.value("bucket") if self.value("wordNgrams") > 1 else 0


class FastTextClassifier(Estimator, _FastTextParams, DefaultParamsReadable, DefaultParamsWritable):
    """Official fastText's supervised classifier, trained on Spark."""

    def settings(self) -> FastTextSettings:
        """The training settings, validated (a ``FastTextError`` names the bad value)."""
        v = self.value
        if v("minCount") < 1 or v("wordNgrams") < 1 or v("bucket") < 0:
            raise FastTextError("fasttext: minCount and wordNgrams must be at least 1, bucket at least 0")
        sgd = ("dim", "lr", "epoch", "loss", "batchSize")
        rounds = ("numPartitions", "syncsPerEpoch", "epochsPerSync", "combine")
        try:
            return FastTextSettings(*self.values(*sgd, *rounds, "seed"))
        except ValueError as exc:
            raise FastTextError(f"fasttext: {exc}") from None

    def _class_counts(self, labels: DataFrame) -> np.ndarray:
        """Rows per class ``0 .. K-1`` (K small, on the driver); refuses labels that are not class indices."""
        label = self.getLabelCol()
        counts = labels.groupBy(F.col(label).alias("label")).count().toPandas().sort_values("label")
        values = counts["label"].to_numpy(np.float64)
        if counts.empty or np.isnan(values).any() or (values < 0).any() or (values != np.round(values)).any():
            raise FastTextError(
                f"label column '{label}': expected class indices 0, 1, ... (doubles, no nulls, e.g. "
                f"StringIndexer's output), got {values[:5].tolist()}"
            )
        if len(values) < 2:
            raise FastTextError(f"label column '{label}': expected at least 2 classes, got {len(values)}")
        out = np.zeros(int(values.max()) + 1, np.int64)
        out[values.astype(np.int64)] = counts["count"].to_numpy(np.int64)
        return out

    def _fit(self, dataset: DataFrame) -> "FastTextClassificationModel":
        settings = self.settings()
        spark = dataset.sparkSession
        rows = dataset.select(F.col(self.getInputCol()).alias("tokens"), F.col(self.getLabelCol()).alias("label"))
        counts = self._class_counts(rows.withColumnRenamed("label", self.getLabelCol()))
        lines = rows.select(
            F.concat(F.coalesce("tokens", F.array().cast("array<string>")), F.array(F.lit(EOS))).alias("tokens")
        )
        vocab = build_vocabulary(lines, "tokens", self.value("minCount"))
        words = pa.array(vocab.words, pa.string())
        words_bc = share(spark, words, "the fastText vocabulary")
        ids = rows.select(
            F.col("label"), ids_udf(words_bc, self.value("wordNgrams"), self.buckets_in_use())("tokens").alias("ids")
        )
        try:
            w_in, w_out, buckets, summary = train_fasttext(
                ids, len(words), counts, vocab.corpus_tokens, settings, log=progress_log("fasttext")
            )
        finally:
            words_bc.destroy()
        model = self._copyValues(FastTextClassificationModel(vocab.words, vocab.counts, buckets, w_in, w_out, counts))
        figures = {"words": len(vocab), "buckets_used": int(len(buckets)), "classes": int(len(counts))}
        return model.trained({**figures, "rows": int(counts.sum()), **summary})


class FastTextClassificationModel(Model, _FastTextParams, VocabularyModel):
    """The trained matrices: input rows for the vocabulary words (most frequent first) then the used n-gram
    buckets (sorted), output rows per class (softmax) or inner tree node (hs); class counts for the tree."""

    def __init__(
        self,
        words: list[str] | None = None,
        counts: np.ndarray | None = None,
        buckets: np.ndarray | None = None,
        w_in: np.ndarray | None = None,
        w_out: np.ndarray | None = None,
        class_counts: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.set_vocabulary(words, counts)
        self.buckets = np.asarray(buckets if buckets is not None else [], np.int64)
        self.w_in = np.asarray(w_in if w_in is not None else np.zeros((0, 0)), np.float32)
        self.w_out = np.asarray(w_out if w_out is not None else np.zeros((0, 0)), np.float32)
        self.class_counts = np.asarray(class_counts if class_counts is not None else [], np.int64)

    @property
    def numClasses(self) -> int:
        return len(self.class_counts)

    def scorer(self) -> Scorer:
        """The model as the prediction UDF uses it."""
        tree = Tree.build(self.class_counts) if self.value("loss") == "hs" else None
        return Scorer(
            pa.array(self.words, pa.string()),
            self.buckets,
            self.w_in,
            self.w_out,
            self.value("wordNgrams"),
            self.buckets_in_use(),
            self.value("loss"),
            tree,
        )

    def _transform(self, dataset: DataFrame) -> DataFrame:
        bc = share(dataset.sparkSession, self.scorer(), "the fastText model")
        tmp = f"__{self.uid}_scores"
        scored = dataset.withColumn(tmp, predict_udf(bc)(F.col(self.getInputCol())))
        return (
            scored.withColumn(self.getRawPredictionCol(), array_to_vector(F.col(f"{tmp}.logProbability")))
            .withColumn(
                self.getProbabilityCol(), array_to_vector(F.transform(f"{tmp}.logProbability", lambda x: F.exp(x)))
            )
            .withColumn(self.getPredictionCol(), F.col(f"{tmp}.prediction"))
            .drop(tmp)
        )

    def extra_metadata(self) -> dict[str, Any]:
        return {"classCounts": self.class_counts.tolist(), **super().extra_metadata()}

    def save_data(self, path: str, spark: SparkSession) -> None:
        """The input rows (``data/input``: words with their counts, then buckets) and the output rows
        (``data/output``) as Parquet."""
        nwords, rows = len(self.words), len(self.w_in)
        table = pd.DataFrame(
            {
                "index": np.arange(rows, dtype=np.int32),
                "word": self.words + [None] * (rows - nwords),
                "count": pd.array(list(self.counts) + [None] * (rows - nwords), "Int64"),
                "bucket": pd.array([None] * nwords + list(self.buckets), "Int32"),
                "vector": list(self.w_in),
            }
        )
        from_pandas(spark, table, INPUT_SCHEMA).write.parquet(f"{path}/data/input")
        write_rows(spark, self.w_out, f"{path}/data/output", "index")

    @classmethod
    def load_data(cls, path: str, spark: SparkSession, metadata: Mapping[str, Any]) -> "FastTextClassificationModel":
        table = spark.read.parquet(f"{path}/data/input").orderBy("index").toArrow()
        word = table.column("word").is_valid().to_numpy(zero_copy_only=False)
        is_word, is_bucket = pa.array(word), pa.array(~word)
        return cls(
            table.column("word").filter(is_word).to_pylist(),
            table.column("count").filter(is_word).to_numpy(),
            table.column("bucket").filter(is_bucket).to_numpy(),
            vector_matrix(table),
            read_rows(spark, f"{path}/data/output", "index"),
            metadata["classCounts"],
        )
