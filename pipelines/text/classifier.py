"""Text classifiers over a tokens column, and the one pipeline a trained classifier is saved as.

A classifier is fitted by a *builder*: it takes the training rows (``doc_id``, ``tokens``, an ``array<string>``,
and ``label_index``, a double 0..K-1) and the job configuration, and returns the fitted stages from tokens to
``prediction`` (double) and ``probability`` (vector), as Spark's ``LogisticRegression`` writes them, with a summary
of what it chose. ``BUILDERS`` maps each ``model`` name to its builder, so another model plugs in with one entry.
``fit_text_classifier`` wraps the stages into tokeniser -> label indexer -> classifier -> label names, so a saved
model turns raw text into a predicted label string.

``tfidf_lr``: our TF-IDF (``pipelines.text.tfidf``) into Spark's multinomial ``LogisticRegression`` with elastic net;
``reg_param`` x ``elastic_net_param`` is searched on a stratified validation split of the training rows (TF-IDF
fitted on the rest), then TF-IDF and the chosen regression are refitted on all training rows. The driver holds the
fitted vocabulary, idf and coefficients (classes x terms) and a classes x classes confusion matrix per candidate.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from pyspark import StorageLevel
from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import IndexToString, StringIndexer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.metrics.multiclass import multiclass_metrics
from pipelines.sampling import stratified_split
from pipelines.text.fasttext import FastTextClassifier
from pipelines.text.tfidf import TfidfSettings, fit_tfidf
from pipelines.text.tokenizer import TextTokenizer

TOKENS = "tokens"
LABEL = "label"
LABEL_INDEX = "label_index"
PREDICTION = "prediction"
PROBABILITY = "probability"
PREDICTED_LABEL = "predicted_label"
FEATURES = "tfidf"
TUNING_METRICS = ("accuracy", "macro_f1")

Log = Callable[[str], None]
Builder = Callable[[DataFrame, Mapping[str, Any], Log], tuple[list[Transformer], dict[str, Any]]]


def _logistic_regression(cfg: Mapping[str, Any], reg_param: float, elastic_net_param: float) -> LogisticRegression:
    return LogisticRegression(
        featuresCol=FEATURES,
        labelCol=LABEL_INDEX,
        family="multinomial",
        regParam=reg_param,
        elasticNetParam=elastic_net_param,
        maxIter=cfg["max_iter"],
        tol=cfg["tol"],
        standardization=cfg["standardization"],
    )


def fit_tfidf_lr(train: DataFrame, cfg: Mapping[str, Any], log: Log) -> tuple[list[Transformer], dict[str, Any]]:
    """TF-IDF + multinomial LR, its regularisation chosen on a validation split (``validation`` section) by
    ``validation.metric``; ties go to the earlier candidate in grid order."""
    section, validation = cfg["tfidf_lr"], cfg["validation"]
    settings = TfidfSettings(**section["tfidf"])
    rest, held = stratified_split(train, LABEL_INDEX, validation["fraction"], validation["seed"], "validation split")
    tfidf, fit_rows = fit_tfidf(rest, None, settings, TOKENS, FEATURES)
    fit_rows = fit_rows.select(FEATURES, LABEL_INDEX).persist(StorageLevel.MEMORY_AND_DISK)
    held_rows = tfidf.transform(held).select(FEATURES, LABEL_INDEX).persist(StorageLevel.MEMORY_AND_DISK)
    candidates = []
    for reg_param in section["reg_param"]:
        for elastic_net_param in section["elastic_net_param"]:
            fitted = _logistic_regression(section, reg_param, elastic_net_param).fit(fit_rows)
            scores = multiclass_metrics(fitted.transform(held_rows), LABEL_INDEX, PREDICTION)
            candidates.append(
                {
                    "reg_param": reg_param,
                    "elastic_net_param": elastic_net_param,
                    "accuracy": scores.accuracy,
                    "macro_f1": scores.macro_f1,
                }
            )
            log(
                f"tfidf_lr validation: reg_param {reg_param:g}, elastic_net_param {elastic_net_param:g}: "
                f"accuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}"
            )
    fit_rows.unpersist()
    held_rows.unpersist()
    best = max(candidates, key=lambda c: c[validation["metric"]])  # max keeps the first of equals
    tfidf, rows = fit_tfidf(train, None, settings, TOKENS, FEATURES)
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    lr = _logistic_regression(section, best["reg_param"], best["elastic_net_param"]).fit(rows)
    rows.unpersist()
    vocabulary = getattr(tfidf.stages[0], "vocabulary", None)
    return [*tfidf.stages, lr], {
        "validation": candidates,
        "chosen": best,
        "features": len(vocabulary) if vocabulary is not None else settings.num_features,
        "iterations": lr.summary.totalIterations if lr.hasSummary else None,
    }


def fit_fasttext(train: DataFrame, cfg: Mapping[str, Any], log: Log) -> tuple[list[Transformer], dict[str, Any]]:
    """Supervised fastText (``pipelines.text.fasttext``) on the tokens, with the ``fasttext`` section's settings
    (fastText's own names, snake_case: ``word_ngrams`` is ``-wordNgrams``)."""
    params = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), key): value for key, value in cfg["fasttext"].items()}
    log(f"fasttext: {params}")
    model = FastTextClassifier(inputCol=TOKENS, labelCol=LABEL_INDEX, **params).fit(train)
    return [model], {"settings": dict(cfg["fasttext"]), "training": model.summary}


BUILDERS: dict[str, Builder] = {"tfidf_lr": fit_tfidf_lr, "fasttext": fit_fasttext}


def check_settings(cfg: Mapping[str, Any]) -> None:
    """Refuse an unknown model, tuning metric or TF-IDF setting before any data is read (``ValueError``)."""
    if cfg["model"] not in BUILDERS:
        raise ValueError(f"model: expected one of {list(BUILDERS)}, got {cfg['model']!r}")
    if cfg["validation"]["metric"] not in TUNING_METRICS:
        raise ValueError(
            f"validation.metric: expected one of {list(TUNING_METRICS)}, got {cfg['validation']['metric']!r}"
        )
    if cfg["model"] == "tfidf_lr":
        section = cfg["tfidf_lr"]
        if not section["reg_param"] or not section["elastic_net_param"]:
            raise ValueError("tfidf_lr.reg_param and tfidf_lr.elastic_net_param: expected non-empty lists")
        TfidfSettings(**section["tfidf"])


def text_tokenizer(tokenizer: TextTokenizer) -> TextTokenizer:
    """A copy of ``tokenizer`` reading ``text`` and writing ``tokens``, the first stage of a saved classifier."""
    return tokenizer.copy().setParams(inputCol="text", outputCol=TOKENS)


def fit_text_classifier(
    docs: DataFrame, tokenizer: TextTokenizer, cfg: Mapping[str, Any], log: Log
) -> tuple[PipelineModel, dict[str, Any]]:
    """Fit the ``cfg["model"]`` classifier on ``docs`` (``tokens`` from ``tokenizer``, a ``text_tokenizer``, and
    ``label`` strings) and return the saved pipeline: the tokeniser, the label indexer (classes in alphabetical
    order; unseen labels kept as an extra index at prediction time), the builder's stages, and ``predicted_label``
    from ``prediction``; plus the builder's summary."""
    indexer = StringIndexer(inputCol=LABEL, outputCol=LABEL_INDEX, stringOrderType="alphabetAsc").fit(docs)
    train = indexer.transform(docs).select("doc_id", TOKENS, LABEL_INDEX).persist(StorageLevel.MEMORY_AND_DISK)
    stages, summary = BUILDERS[cfg["model"]](train, cfg, log)
    train.unpersist()
    names = IndexToString(inputCol=PREDICTION, outputCol=PREDICTED_LABEL, labels=indexer.labels)
    keep_unseen = indexer.copy({indexer.handleInvalid: "keep"})
    return PipelineModel([tokenizer, keep_unseen, *stages, names]), {
        "model": cfg["model"],
        "classes": list(indexer.labels),
        **summary,
    }


def predict_labels(model: PipelineModel, docs: DataFrame, keep: list[str]) -> DataFrame:
    """``keep`` columns of ``docs``, the predicted label and its probability, from a saved text classifier."""
    scored = model.transform(docs)
    chosen = F.get(vector_to_array(PROBABILITY), F.col(PREDICTION).cast("int"))
    return scored.select(*keep, F.col(PREDICTED_LABEL), chosen.alias(PROBABILITY))


def is_text_classifier(model: PipelineModel) -> bool:
    """Whether ``model`` is a pipeline ``fit_text_classifier`` built (its last stage names the predictions)."""
    last = model.stages[-1] if model.stages else None
    return isinstance(last, IndexToString) and last.getOutputCol() == PREDICTED_LABEL


def evaluate(scored: DataFrame) -> dict[str, Any]:
    """The multiclass report of ``label`` against ``predicted_label`` (``pipelines.metrics.multiclass``)."""
    return multiclass_metrics(scored, LABEL, PREDICTED_LABEL).as_dict()
