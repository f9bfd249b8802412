"""TF-IDF: MLlib term counts (``CountVectorizer`` or ``HashingTF``) plus an IDF stage with scikit-learn's formulas.

MLlib's ``IDF`` computes ``ln((n + 1) / (df + 1))``; scikit-learn's ``TfidfVectorizer`` computes
``ln((1 + n) / (1 + df)) + 1`` (``smooth_idf``) or ``ln(n / df) + 1``, optionally ``1 + ln(tf)``
(``sublinear_tf``) and then l2-normalises each row. ``SklearnIdf`` offers both formulas and those
options, so the same tokens give ``TfidfVectorizer``'s matrix, term by term. Document frequencies are
counted by MLlib's ``IDF`` in the JVM; only the idf vector (one number per term) reaches the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from pyspark import StorageLevel
from pyspark.ml import Estimator, Model, Pipeline, PipelineModel, Transformer
from pyspark.ml.feature import IDF, CountVectorizer, CountVectorizerModel, HashingTF, Normalizer
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.stages import ArrayModel, StageParams, param
from pipelines.text.tokenizer import TextTokenizer
from udfs.text import tfidf_udf, vector_entries_udf

FORMULAS = ("sklearn", "spark")
NORMS = ("l2", "l1", "none")
MODES = ("vocabulary", "hashing")
_INT_MAX = 2**31 - 1


def idf_weights(doc_freq: np.ndarray, num_docs: int, formula: str = "sklearn", smooth: bool = True) -> np.ndarray:
    """Inverse document frequencies: scikit-learn's (smooth or not) or MLlib's formula."""
    df = doc_freq.astype(np.float64)
    if formula == "spark":
        return np.log((num_docs + 1.0) / (df + 1.0))
    n = float(num_docs)
    if smooth:  # scikit-learn adds one document containing every term
        df, n = df + 1.0, n + 1.0
    return np.log(n / df) + 1.0


class _IdfParams(StageParams):
    inputCol = param("tf", "column of term-count vectors")
    outputCol = param("tfidf", "output: the weighted vectors")
    formula = param("sklearn", f"idf formula: one of {FORMULAS}")
    useIdf = param(True, "weight terms by idf (false: normalised tf only)")
    smoothIdf = param(True, "sklearn formula: add one to document counts")
    sublinearTf = param(False, "replace tf with 1 + ln(tf)")
    norm = param("l2", f"row normalisation: one of {NORMS}")

    def _validate(self) -> None:
        if self.value("formula") not in FORMULAS:
            raise ValueError(f"formula must be one of {FORMULAS}, got {self.value('formula')!r}")
        if self.value("norm") not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.value('norm')!r}")


class SklearnIdf(Estimator, _IdfParams, DefaultParamsReadable, DefaultParamsWritable):
    """Fits idf weights on term-count vectors; its model applies tf transform, idf and norm."""

    def _fit(self, dataset: DataFrame) -> "SklearnIdfModel":
        counted = IDF(inputCol=self.getInputCol(), minDocFreq=0).fit(dataset)
        doc_freq = np.asarray(counted.docFreq, dtype=np.int64)
        idf = idf_weights(doc_freq, counted.numDocs, self.getOrDefault(self.formula), self.getOrDefault(self.smoothIdf))
        model = SklearnIdfModel(idf=idf, docFreq=doc_freq, numDocs=counted.numDocs)
        return self._copyValues(model)


class SklearnIdfModel(Model, _IdfParams, ArrayModel):
    """Fitted idf vector with the document frequencies and corpus size it came from."""

    def __init__(self, idf: np.ndarray | None = None, docFreq: np.ndarray | None = None, numDocs: int = 0) -> None:
        super().__init__()
        self.idf = np.asarray(idf if idf is not None else [], dtype=np.float64)
        self.docFreq = np.asarray(docFreq if docFreq is not None else [], dtype=np.int64)
        self.numDocs = int(numDocs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        self._validate()
        weights = tfidf_udf(
            self.idf if self.getOrDefault(self.useIdf) else None,
            self.getOrDefault(self.sublinearTf),
            self.getOrDefault(self.norm),
        )
        return dataset.withColumn(self.getOutputCol(), weights(self.getInputCol()))

    def arrays(self) -> dict[str, np.ndarray | None]:
        return {"idf": self.idf, "doc_freq": self.docFreq, "num_docs": np.int64(self.numDocs)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray | None]) -> "SklearnIdfModel":
        return cls(idf=arrays["idf"], docFreq=arrays["doc_freq"], numDocs=int(arrays["num_docs"]))


@dataclass(frozen=True)
class TfidfSettings:
    """Term counting and weighting; the names and meanings follow ``TfidfVectorizer``.

    ``min_df``/``max_df``: an int is a number of documents, a float a share of them (as in scikit-learn;
    MLlib would read ``max_df=1.0`` as one document). ``max_features`` 0 keeps every term.
    """

    mode: str = "vocabulary"
    min_df: int | float = 1
    max_df: int | float = 1.0
    max_features: int = 0
    num_features: int = 1 << 18
    binary: bool = False
    idf: str = "sklearn"
    use_idf: bool = True
    smooth_idf: bool = True
    sublinear_tf: bool = False
    norm: str = "l2"

    def __post_init__(self) -> None:
        for name, allowed in (("mode", MODES), ("idf", FORMULAS), ("norm", NORMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("min_df", "max_df"):
            value = getattr(self, name)
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: a float is a share of documents in [0, 1], got {value}")

    def counter(self, input_col: str, output_col: str) -> Estimator | Transformer:
        """``CountVectorizer`` (vocabulary mode) or ``HashingTF`` (hashing mode)."""
        if self.mode == "hashing":
            return HashingTF(
                inputCol=input_col, outputCol=output_col, numFeatures=self.num_features, binary=self.binary
            )
        max_df = float(_INT_MAX) if isinstance(self.max_df, float) and self.max_df >= 1.0 else float(self.max_df)
        return CountVectorizer(
            inputCol=input_col,
            outputCol=output_col,
            minDF=float(self.min_df),
            maxDF=max_df,
            vocabSize=self.max_features or _INT_MAX,
            binary=self.binary,
        )

    def idf_stage(self, input_col: str, output_col: str) -> SklearnIdf:
        return SklearnIdf(
            inputCol=input_col,
            outputCol=output_col,
            formula=self.idf,
            useIdf=self.use_idf,
            smoothIdf=self.smooth_idf,
            sublinearTf=self.sublinear_tf,
            norm=self.norm,
        )


def build_tfidf_pipeline(
    tokenizer: TextTokenizer | None, settings: TfidfSettings, tokens_col: str = "tokens", output_col: str = "tfidf"
) -> Pipeline:
    """(tokeniser ->) term counts -> ``SklearnIdf``; without a tokeniser the input is ``tokens_col``."""
    if tokenizer is not None:
        tokenizer = tokenizer.copy().setParams(outputCol=tokens_col)
    tf_col = f"{output_col}_tf"
    stages = [tokenizer] if tokenizer is not None else []
    stages += [settings.counter(tokens_col, tf_col), settings.idf_stage(tf_col, output_col)]
    return Pipeline(stages=stages)


def fit_tfidf(
    docs: DataFrame,
    tokenizer: TextTokenizer | None,
    settings: TfidfSettings,
    tokens_col: str = "tokens",
    output_col: str = "tfidf",
) -> tuple[PipelineModel, DataFrame]:
    """Fit ``build_tfidf_pipeline(...)`` on ``docs``, computing each stage's output once.

    ``Pipeline.fit`` re-runs every stage before an estimator for that estimator (the tokeniser for
    term counts, tokeniser and term counts again for IDF). Here the tokens and then the term counts
    are persisted, and the tokens released once the counts are all computed. Returns the fitted
    pipeline and ``docs`` transformed by it, computed from the persisted counts. Without a tokeniser,
    ``docs`` holds ``tokens_col`` already.
    """
    stages = build_tfidf_pipeline(tokenizer, settings, tokens_col, output_col).getStages()
    frames = [docs]
    fitted: list[Transformer] = []
    for stage in stages[:-1]:
        fitted.append(stage.fit(frames[-1]) if isinstance(stage, Estimator) else stage)
        frames.append(fitted[-1].transform(frames[-1]).persist(StorageLevel.MEMORY_AND_DISK))
    fitted.append(stages[-1].fit(frames[-1]))
    for frame in frames[1:-1]:
        frame.unpersist()
    return PipelineModel(fitted), fitted[-1].transform(frames[-1])


def tfidf_features(model: PipelineModel, docs: DataFrame) -> DataFrame:
    """Apply a fitted TF-IDF pipeline, keeping the document columns and the TF-IDF vector only."""
    idf = idf_model(model)
    return model.transform(docs).select(*docs.columns, idf.getOutputCol())


def idf_model(model: PipelineModel) -> SklearnIdfModel:
    """The fitted IDF stage of a TF-IDF pipeline."""
    return next(s for s in model.stages if isinstance(s, SklearnIdfModel))


def term_counter(model: PipelineModel) -> CountVectorizerModel | HashingTF:
    """The term-counting stage of a TF-IDF pipeline."""
    return next(s for s in model.stages if isinstance(s, (CountVectorizerModel, HashingTF)))


def tokenizer_stage(model: PipelineModel) -> TextTokenizer | None:
    """The tokeniser of a TF-IDF pipeline, if it has one."""
    return next((s for s in model.stages if isinstance(s, TextTokenizer)), None)


def vector_entries(
    features: DataFrame,
    vector_col: str = "tfidf",
    id_col: str = "doc_id",
    unit: bool = False,
    top: int = 0,
    order: np.ndarray | None = None,
) -> DataFrame:
    """The non-zero entries of a sparse vector column as rows ``(id_col, index, weight)``.

    ``unit`` first scales each vector to l2 norm 1 (MLlib ``Normalizer``), so that dot products of
    entries are cosines whatever the TF-IDF norm. Empty vectors give no rows. ``top`` > 0 keeps only
    the ``top`` largest positive entries of each vector, equal weights by ``order[index]``.
    """
    if unit:
        features = (
            Normalizer(p=2.0, inputCol=vector_col, outputCol=f"{vector_col}_unit")
            .transform(features)
            .drop(vector_col)
            .withColumnRenamed(f"{vector_col}_unit", vector_col)
        )
    pairs = features.select(id_col, vector_entries_udf(vector_col, top, order).alias("e"))
    return pairs.select(
        id_col, F.inline(F.arrays_zip(F.col("e.indices").alias("index"), F.col("e.values").alias("weight")))
    )
