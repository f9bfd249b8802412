"""Spark ML stages: ``Word2Vec`` (Estimator; the trainer is a param) and ``Word2VecModel`` (word vectors in
vocabulary order, with counts), saved as ML metadata plus the vectors table in Parquet.

The vectors table is ``(word, vector array<float>, count)``, one row per word, most frequent first (an
``index`` column keeps the order); ``to_word2vec_text`` is the word2vec/gensim text format.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import array_to_vector
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.connect import require_classic, share
from pipelines.frames import from_pandas, vector_matrix
from pipelines.stages import param
from pipelines.word2vec.errors import Word2VecError
from pipelines.word2vec.kernel import KernelSettings
from pipelines.word2vec.mllib import MllibSettings, train_mllib
from pipelines.word2vec.ppmi import PpmiSettings, train_ppmi
from pipelines.word2vec.queries import VectorIndex
from pipelines.word2vec.subwords import compose
from pipelines.word2vec.trainer_sgns import RoundParams, SgnsSettings, train_sgns
from pipelines.word2vec.vocab_model import VocabularyModel, progress_log, read_rows, write_rows
from pipelines.word2vec.vocabulary import Vocabulary, build_vocabulary
from udfs.word2vec import mean_vector_udf

TRAINERS = ("sgns", "ppmi", "mllib")
VECTORS_SCHEMA = "word STRING, vector ARRAY<FLOAT>, count BIGINT, index INT"


class _Word2VecParams(RoundParams):
    outputCol = param("vector", "output: the mean of the row's token vectors")
    seed = param(1, "random seed")
    trainer = param("sgns", f"one of {TRAINERS}")
    vectorSize = param(100, "dimensions")
    window = param(5, "context window (words each side)")
    minCount = param(5, "drop words seen fewer times")
    maxVocabSize = param(0, "keep the most frequent words only (0: all)")
    sample = param(1e-3, "subsampling threshold of frequent words (0: none)")
    architecture = param("skipgram", "sgns: skipgram | cbow")
    loss = param("negative", "sgns: negative (sampling) | hierarchical (softmax)")
    negative = param(5, "noise words per positive example")
    alpha = param(0.025, "initial learning rate")
    minAlpha = param(0.0001, "final learning rate (linear decay)")
    epochs = param(5, "passes over the corpus (mllib: maxIter)")
    maxMemoryFraction = param(0.5, "share of driver/executor memory the model may take")
    ppmiShift = param(1.0, "ppmi: k of max(PMI - log k, 0)")
    ppmiContextAlpha = param(0.75, "ppmi: context-distribution smoothing")
    minN = param(3, "sgns subwords: shortest character n-gram")
    maxN = param(0, "sgns subwords: longest character n-gram (0: no subwords)")
    buckets = param(200_000, "sgns subwords: rows the n-grams are hashed into")


class Word2Vec(Estimator, _Word2VecParams, DefaultParamsReadable, DefaultParamsWritable):
    """Word (or item) vectors from a column of token arrays; ``trainer`` picks sgns, ppmi or mllib."""

    def settings(self) -> SgnsSettings | PpmiSettings | MllibSettings:
        """The chosen trainer's settings, validated (a ``Word2VecError`` names the bad value)."""
        v = self.value
        if v("maxN") > 0 and v("trainer") != "sgns":
            raise Word2VecError(f"word2vec: subwords (maxN {v('maxN')}) need trainer 'sgns', got {v('trainer')!r}")
        try:
            if v("trainer") == "sgns":
                kernel = KernelSettings(
                    *self.values("vectorSize", "window", "sample", "architecture", "loss", "negative"),
                    seed=v("seed"),
                    min_n=v("minN"),
                    max_n=v("maxN"),
                    buckets=v("buckets"),
                )
                rounds = ("epochs", "alpha", "minAlpha", "numPartitions", "syncsPerEpoch", "combine")
                return SgnsSettings(kernel, *self.values(*rounds, "maxMemoryFraction"))
            if v("trainer") == "ppmi":
                return PpmiSettings(
                    *self.values("vectorSize", "window", "ppmiShift", "ppmiContextAlpha"), seed=v("seed")
                )
            if v("trainer") == "mllib":
                return MllibSettings(
                    *self.values("vectorSize", "window", "minCount", "numPartitions", "epochs", "alpha", "seed")
                )
        except ValueError as exc:
            raise Word2VecError(f"word2vec: {exc}") from None
        raise Word2VecError(f"trainer: expected one of {list(TRAINERS)}, got {v('trainer')!r}")

    def check_session(self, spark: SparkSession) -> None:
        """Stop at once, in one line, when the trainer cannot run on ``spark`` (sgns over Spark Connect)."""
        if self.value("trainer") == "sgns":
            require_classic(spark, "word2vec trainer 'sgns'", "it trains on RDD partitions with broadcast weights")

    def _fit(self, dataset: DataFrame) -> "Word2VecModel":
        settings = self.settings()
        self.check_session(dataset.sparkSession)
        corpus = dataset.select(F.col(self.getInputCol()).alias("tokens"))
        vocab = build_vocabulary(corpus, "tokens", self.value("minCount"), self.value("maxVocabSize"))
        ngrams = None
        if isinstance(settings, SgnsSettings):
            vectors, summary, ngrams = train_sgns(corpus, vocab, settings, log=progress_log("word2vec"))
        elif isinstance(settings, PpmiSettings):
            vectors, summary = train_ppmi(corpus, vocab, settings, log=progress_log("word2vec"))
        else:
            vectors, summary = train_mllib(corpus, vocab, settings)
        model = self._copyValues(Word2VecModel(vocab.words, vocab.counts, vectors, ngrams))
        figures = {"vocabulary": len(vocab), "corpus_tokens": vocab.corpus_tokens, "sentences": vocab.sentences}
        return model.trained({**figures, **summary})


class Word2VecModel(Model, _Word2VecParams, VocabularyModel):
    """Word vectors (rows in vocabulary order) with counts; ``transform`` averages a row's token vectors. With
    subwords it keeps the n-gram buckets' rows too (``ngrams``): ``wordVector`` and ``findSynonyms`` then answer
    words out of the vocabulary from their character n-grams."""

    def __init__(
        self,
        words: list[str] | None = None,
        counts: np.ndarray | None = None,
        vectors: np.ndarray | None = None,
        ngrams: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.set_vocabulary(words, counts)
        self.vectors = np.asarray(vectors if vectors is not None else np.zeros((0, 0)), np.float32)
        self.ngrams = None if ngrams is None else np.asarray(ngrams, np.float32)

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.words, self.counts, int(self.counts.sum()), 0)

    def vectors_frame(self, spark: SparkSession) -> DataFrame:
        """The vectors table ``(word, vector, count, index)``."""
        pdf = pd.DataFrame(
            {
                "word": self.words,
                "vector": list(self.vectors),
                "count": self.counts,
                "index": np.arange(len(self.words), dtype=np.int32),
            }
        )
        return from_pandas(spark, pdf, VECTORS_SCHEMA)

    def to_word2vec_text(self) -> str:
        """The word2vec text format: a ``"<words> <dimensions>"`` line, then ``word v1 v2 ...`` per word."""
        lines = [f"{len(self.words)} {self.vectors.shape[1] if self.vectors.ndim == 2 else 0}"]
        lines += [f"{w} {' '.join(f'{x:.6g}' for x in row)}" for w, row in zip(self.words, self.vectors)]
        return "\n".join(lines) + "\n"

    def index(self, spark: SparkSession, restrict_vocab: int = 0) -> VectorIndex:
        """A broadcast index for batch ``most_similar``/``analogies`` (close it when done)."""
        return VectorIndex(spark, self.words, self.vectors, restrict_vocab)

    def getVectors(self) -> DataFrame:
        """``(word, vector)`` with ML vectors, most frequent word first, as MLlib's ``Word2VecModel.getVectors``."""
        table = self.vectors_frame(SparkSession.active())
        return table.orderBy("index").select("word", array_to_vector("vector").alias("vector"))

    def wordVector(self, word: str) -> np.ndarray:
        """``word``'s vector: its row when in the vocabulary, else (subwords) the mean of its n-grams' rows, as
        fastText's ``get_word_vector``; zeros for a word with no n-gram."""
        i = self._ids.get(word, -1)
        if i >= 0:
            return self.vectors[i]
        if self.ngrams is None:
            raise Word2VecError(
                f"the word {word!r} is not in the vocabulary ({len(self.words)} words) and the model has no subwords"
            )
        return compose([word], None, self.ngrams, self.value("minN"), self.value("maxN"))[0]

    def findSynonymsArray(self, word: str | Sequence[float], num: int) -> list[tuple[str, float]]:
        """The ``num`` words of highest cosine similarity to ``word`` (itself left out) or to a vector, best first,
        as MLlib's: computed on the driver, which holds the vectors anyway."""
        unit = self.vectors / np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True), 1e-12)
        skip = self._ids.get(word, -1) if isinstance(word, str) else -1
        if skip >= 0:
            query = unit[skip]
        else:
            try:
                query = self.wordVector(word) if isinstance(word, str) else np.asarray(word, np.float32)
            except Word2VecError as exc:
                raise Word2VecError(f"findSynonyms: {exc}") from None
            if query.shape != (unit.shape[1],):
                raise Word2VecError(
                    f"findSynonyms: expected a vector of {unit.shape[1]} numbers, got shape {query.shape}"
                )
            query = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = unit @ query
        if skip >= 0:
            scores[skip] = -np.inf
        best = np.argsort(-scores, kind="stable")[: max(0, min(num, len(self.words) - (skip >= 0)))]
        return [(self.words[i], float(scores[i])) for i in best]

    def findSynonyms(self, word: str | Sequence[float], num: int) -> DataFrame:
        """``findSynonymsArray`` as a DataFrame ``(word, similarity)``, as MLlib's."""
        found = self.findSynonymsArray(word, num)
        return SparkSession.active().createDataFrame(found, "word STRING, similarity DOUBLE")

    @property
    def _ids(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def _transform(self, dataset: DataFrame) -> DataFrame:
        """``outputCol``: the mean of the row's known token vectors (zeros when none is known), as an ML vector like
        MLlib's."""
        bc = share(dataset.sparkSession, (self._ids, self.vectors), "the word vectors")
        mean = mean_vector_udf(bc)(F.col(self.getInputCol()))
        return dataset.withColumn(self.getOutputCol(), array_to_vector(mean))

    def save_data(self, path: str, spark: SparkSession) -> None:
        """The vectors table as Parquet (``data/``); with subwords the n-gram buckets' rows as ``(bucket, vector)``
        (``ngrams/``)."""
        self.vectors_frame(spark).write.parquet(f"{path}/data")
        if self.ngrams is not None:
            write_rows(spark, self.ngrams, f"{path}/ngrams", "bucket")

    @classmethod
    def load_data(cls, path: str, spark: SparkSession, metadata: Mapping[str, Any]) -> "Word2VecModel":
        table = spark.read.parquet(f"{path}/data").orderBy("index").toArrow()
        vectors = vector_matrix(table) if table.num_rows else None
        ngrams = None
        if {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})}.get("maxN", 0) > 0:
            ngrams = read_rows(spark, f"{path}/ngrams", "bucket")
        return cls(table.column("word").to_pylist(), table.column("count").to_numpy(), vectors, ngrams)
