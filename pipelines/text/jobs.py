"""Mains of ``jobs/build_tfidf.py``, ``jobs/similar_docs.py``, ``jobs/train_text_classifier.py`` and
``jobs/predict_text.py``.

``build_tfidf`` writes three outputs under ``output.path``: ``model`` (the fitted pipeline, Spark ML
persistence: tokeniser, term counts, IDF), ``features`` (``doc_id``, TF-IDF vector) and ``keywords``.
``similar_docs`` reads ``model`` and ``features`` back as the index and writes the neighbours of every
indexed document (``mode: corpus``) or of new documents (``mode: query``).
``train_text_classifier`` writes ``model`` (one pipeline from text to a label, ``pipelines.text.classifier``),
``test_predictions`` and ``report`` (confusion matrix PNG, per-class table) under ``output.path``, with the
multiclass metrics in every ``_metrics.json``; ``predict_text`` applies such a model to a corpus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config import ConfigError
from pipelines.errors import ModelError, load_model
from pipelines.fs import qualify
from pipelines.ingest import read_corpus_source
from pipelines.metrics.plots import confusion_png
from pipelines.output import partition_path
from pipelines.sampling import stratified_split
from pipelines.stages import config_params
from pipelines.text.classifier import (
    LABEL,
    PREDICTED_LABEL,
    check_settings,
    evaluate,
    fit_text_classifier,
    is_text_classifier,
    predict_labels,
    text_tokenizer,
)
from pipelines.text.keywords import keyword_entries, term_index, top_keywords
from pipelines.text.similar import IvfSettings, similar_documents
from pipelines.text.stop_words import stop_words
from pipelines.text.tfidf import TfidfSettings, fit_tfidf, idf_model, term_counter, tfidf_features, vector_entries
from pipelines.text.tokenizer import TextTokenizer
from pipelines.text.validation import TextInputError, check_invalid, clean_corpus

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext

TOKENS = "tokens"
MODES = ("corpus", "query")


def tokenizer_from_config(cfg: Mapping[str, Any]) -> TextTokenizer:
    """The tokeniser described by a job's ``tokenizer`` section."""
    try:
        return TextTokenizer(
            stopWords=stop_words(cfg["stop_words"], cfg["extra_stop_words"]),
            **config_params(cfg, "segmenter", "pattern", "normalization", "lowercase", "ngram_max", "user_dict"),
        )
    except ValueError as exc:
        raise ConfigError(f"tokenizer: {exc}") from None


def read_documents(ctx: "JobContext", key: str, source: Mapping[str, Any], section: str = "input") -> DataFrame:
    """Read the corpus of config section ``section`` as ``(doc_id, text[, label])``, repaired and checked
    (``clean_corpus``, ``check_invalid``); counts go to metrics."""
    ingested = read_corpus_source(ctx.spark, source)
    docs, counts = clean_corpus(ingested.data)
    ctx.metrics.setdefault("text", {})[key] = {
        **counts.as_dict(),
        "malformed_records": ingested.rows_malformed,
        "encoding": source["encoding"],
        "duplicates": ingested.duplicates,
    }
    ctx.log(
        f"{key}: {counts.documents} documents, {counts.empty_documents} empty, {counts.invalid_documents} with "
        f"bytes invalid in {source['encoding']}, {ingested.rows_malformed} malformed records skipped, "
        f"{ingested.duplicates} byte-identical duplicates dropped"
    )
    root = qualify(source["path"])
    example = (
        f"{root.rstrip('/')}/{counts.invalid_example}"
        if source["format"] == "files"
        else f"document {counts.invalid_example!r}"
    )
    check_invalid(counts, root, example, section, source["encoding"], source["max_invalid_fraction"])
    return docs.persist(StorageLevel.MEMORY_AND_DISK)


def build_tfidf_job(ctx: "JobContext") -> None:
    """Fit tokeniser + TF-IDF on a corpus; write the model, the TF-IDF vectors and each document's keywords."""
    cfg = ctx.config
    docs = read_documents(ctx, "corpus", cfg["input"])
    tokenizer = tokenizer_from_config(cfg["tokenizer"])
    try:
        settings = TfidfSettings(**cfg["tfidf"])
    except ValueError as exc:
        raise ConfigError(f"tfidf: {exc}") from None
    model, transformed = fit_tfidf(docs, tokenizer, settings, TOKENS)
    vectors = idf_model(model).getOutputCol()
    transformed = transformed.select("doc_id", TOKENS, vectors)
    stats = transformed.agg(
        F.sum(F.size(TOKENS)).alias("tokens"), F.count_if(F.size(TOKENS) == 0).alias("empty_vectors")
    ).first()
    counter = term_counter(model)
    ctx.metrics["text"]["tfidf"] = {
        "mode": settings.mode,
        "tokens": stats["tokens"],
        "empty_vectors": stats["empty_vectors"],
        "features": len(counter.vocabulary) if settings.mode == "vocabulary" else settings.num_features,
    }
    root = cfg["output"]["path"].rstrip("/")
    ctx.stage_model("model", model, f"{root}/model", dated=True)
    features = transformed.select("doc_id", vectors)
    ctx.stage("features", features, f"{root}/features")
    k = cfg["keywords"]["k"]
    keywords = top_keywords(keyword_entries(model, features, k, vectors), term_index(model, transformed, TOKENS), k)
    ctx.stage("keywords", keywords, f"{root}/keywords")


def tfidf_part(ctx: "JobContext", tfidf_path: str, name: str) -> str:
    """``<tfidf_path>/<name>``, or its ``ds=<run date>`` partition when this job runs for a date and
    ``build_tfidf`` wrote one for it (a dated ``build_tfidf`` commits ``model/ds=...`` and ``features/ds=...``)."""
    path = f"{tfidf_path.rstrip('/')}/{name}"
    if ctx.run_date:
        dated = partition_path(path, ctx.run_date)
        if ctx.fs.exists(dated):
            return dated
    return path


def similar_docs_job(ctx: "JobContext") -> None:
    """Top-k cosine neighbours of every indexed document, or of new documents, from a ``build_tfidf`` output."""
    cfg = ctx.config
    if cfg["mode"] not in MODES:
        raise ConfigError(f"mode: expected one of {list(MODES)}, got {cfg['mode']!r}")
    model = load_model(PipelineModel.load, tfidf_part(ctx, cfg["tfidf_path"], "model"))
    vectors = idf_model(model).getOutputCol()
    features = ctx.spark.read.parquet(tfidf_part(ctx, cfg["tfidf_path"], "features"))
    corpus = vector_entries(features, vectors, unit=True).persist(StorageLevel.MEMORY_AND_DISK)
    queries = None
    if cfg["mode"] == "query":
        new_docs = read_documents(ctx, "queries", cfg["query"], "query")
        queries = vector_entries(tfidf_features(model, new_docs), vectors, unit=True)
    try:
        neighbours = similar_documents(
            corpus,
            cfg["k"],
            queries,
            cfg["method"],
            cfg["max_df_fraction"],
            cfg["candidates"],
            cfg["block_size"],
            cfg["exact_max_docs"],
            IvfSettings(**cfg["ivf"]),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    ctx.metrics["similar"] = {
        key: cfg[key]
        for key in ("mode", "k", "method", "exact_max_docs", "block_size", "ivf", "max_df_fraction", "candidates")
    }
    ctx.stage("neighbours", neighbours, cfg["output"]["path"])


def labelled(docs: DataFrame, where: str, section: str = "input") -> DataFrame:
    """``docs`` when every document has a label, else an error naming how many lack one and an example."""
    missing = docs.agg(
        F.count_if(F.col(LABEL).isNull()).alias("n"),
        F.min(F.when(F.col(LABEL).isNull(), F.col("doc_id"))).alias("example"),
    ).first()
    if missing["n"]:
        raise TextInputError(
            f"{where}: {missing['n']} documents have no label (e.g. {missing['example']!r}); "
            f"files take it from their folder or {section}.label_pattern, json/parquet rows from "
            f"{section}.label_col"
        )
    return docs


def report_markdown(report: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """The test figures and the per-class table of a trained classifier."""
    lines = [
        f"# {summary['model']} on the test split",
        "",
        f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, "
        f"weighted F1 {report['weighted_f1']:.4f}, {report['rows']} documents",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, label in enumerate(report["labels"]):
        lines.append(
            f"| {label} | {report['precision'][i]:.4f} | {report['recall'][i]:.4f} | {report['f1'][i]:.4f} "
            f"| {report['support'][i]:.0f} |"
        )
    return "\n".join(lines) + "\n"


def train_text_classifier_job(ctx: "JobContext") -> None:
    """Read a labelled corpus, split it, fit the configured classifier, report on the test split, save the model."""
    cfg = ctx.config
    try:
        check_settings(cfg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    source, split = cfg["input"], cfg["split"]
    if source["format"] != "files" and not source["label_col"]:
        raise ConfigError(
            f"input.label_col: name the label field of the {source['format']} corpus (format files "
            f"takes labels from folders or input.label_pattern)"
        )
    tokenizer = text_tokenizer(tokenizer_from_config(cfg["tokenizer"]))
    docs = labelled(read_documents(ctx, "corpus", source), qualify(source["path"]))
    if split["test_path"]:
        test_source = {**source, "path": split["test_path"]}
        train, test = docs, labelled(read_documents(ctx, "test", test_source), qualify(split["test_path"]))
    else:
        try:
            train, test = stratified_split(docs, LABEL, split["test_fraction"], split["seed"], "test split")
        except ValueError as exc:
            raise ConfigError(f"split.test_fraction: {exc}") from None
    train = tokenizer.transform(train).persist(StorageLevel.MEMORY_AND_DISK)
    model, summary = fit_text_classifier(train, tokenizer, cfg, ctx.log)
    scored = predict_labels(model, test, ["doc_id", LABEL]).persist(StorageLevel.MEMORY_AND_DISK)
    if scored.isEmpty():
        raise TextInputError(
            f"{qualify(split['test_path'] or source['path'])}: the test split is empty; give "
            f"split.test_path or a larger split.test_fraction"
        )
    report = evaluate(scored)
    ctx.metrics.update({"classifier": summary, "test": report})
    ctx.log(
        f"test: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, "
        f"weighted F1 {report['weighted_f1']:.4f} on {report['rows']} documents"
    )
    root = cfg["output"]["path"].rstrip("/")
    ctx.stage_model("model", model, f"{root}/model")
    ctx.stage("test_predictions", scored, f"{root}/test_predictions")
    ctx.stage_files(
        "report",
        f"{root}/report",
        {
            "report.md": report_markdown(report, summary),
            "confusion.png": confusion_png(
                report["labels"], report["confusion_matrix"], f"{summary['model']}: confusion matrix (rows sum to 1)"
            ),
        },
    )


def predict_text_job(ctx: "JobContext") -> None:
    """Predict the label of every document of a corpus with a saved text classifier."""
    cfg = ctx.config
    path = qualify(cfg["model_path"])
    model = load_model(PipelineModel.load, path)
    if not is_text_classifier(model):
        raise ModelError(
            f"{path}: not a text classifier (expected a train_text_classifier model, whose last stage "
            f"writes '{PREDICTED_LABEL}')"
        )
    docs = read_documents(ctx, "corpus", cfg["input"])
    keep = ["doc_id", *([LABEL] if LABEL in docs.columns else [])]
    ctx.metrics["model_path"] = path
    ctx.stage("predictions", predict_labels(model, docs, keep), cfg["output"]["path"])
