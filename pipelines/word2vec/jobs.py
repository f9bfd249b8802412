"""Mains of ``jobs/train_word2vec.py`` and ``jobs/evaluate_embeddings.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config import ConfigError
from pipelines.errors import load_model
from pipelines.frames import from_pandas, require_columns
from pipelines.fs import require_input
from pipelines.text.jobs import read_documents, tokenizer_from_config
from pipelines.word2vec.evaluation import category_neighbour_share, evaluate_words
from pipelines.word2vec.model import Word2Vec, Word2VecModel
from pipelines.word2vec.subwords import with_oov_vectors

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext

KINDS = ("corpus", "sessions")
MODEL_KEYS = {
    "trainer": "trainer",
    "vector_size": "vectorSize",
    "window": "window",
    "min_count": "minCount",
    "max_vocab_size": "maxVocabSize",
    "sample": "sample",
    "architecture": "architecture",
    "loss": "loss",
    "negative": "negative",
    "alpha": "alpha",
    "min_alpha": "minAlpha",
    "epochs": "epochs",
    "num_partitions": "numPartitions",
    "syncs_per_epoch": "syncsPerEpoch",
    "combine": "combine",
    "max_memory_fraction": "maxMemoryFraction",
    "ppmi_shift": "ppmiShift",
    "ppmi_context_alpha": "ppmiContextAlpha",
    "seed": "seed",
}
SUBWORD_KEYS = {"min_n": "minN", "max_n": "maxN", "buckets": "buckets"}
OOV_VECTOR = "_subword_vector"


def model_params(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model`` section of ``train_word2vec.yaml`` as ``Word2Vec`` Params (``subwords`` flattened)."""
    params = {MODEL_KEYS[k]: v for k, v in model_cfg.items() if k != "subwords"}
    return {**params, **{SUBWORD_KEYS[k]: v for k, v in model_cfg["subwords"].items()}}


def read_inferred(ctx: "JobContext", source: Mapping[str, Any]) -> DataFrame:
    """The table ``{path, format, options}`` names (CSV: with a header, types inferred)."""
    reader = ctx.spark.read.format(source["format"]).options(**{k: str(v) for k, v in source["options"].items()})
    if source["format"] == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader.load(require_input(ctx.fs, source["path"]))


def session_sequences(interactions: DataFrame, session_col: str, item_col: str, time_col: str) -> DataFrame:
    """One ``tokens`` array per session: its item ids (as strings) ordered by time, ties by item."""
    require_columns(interactions, (session_col, item_col, time_col), "sessions")
    events = F.sort_array(F.collect_list(F.struct(F.col(time_col).alias("t"), F.col(item_col).alias("i"))))
    return (
        interactions.filter(F.col(item_col).isNotNull())
        .groupBy(session_col)
        .agg(events.alias("events"))
        .select(F.transform("events", lambda e: e["i"].cast("string")).alias("tokens"))
    )


def training_sequences(ctx: "JobContext", source: Mapping[str, Any], tokenizer_cfg: Mapping[str, Any]) -> DataFrame:
    """The token arrays to train on, from a corpus (tokenised) or from sessions (item2vec)."""
    if source["kind"] not in KINDS:
        raise ConfigError(f"input.kind: expected one of {list(KINDS)}, got {source['kind']!r}")
    if source["kind"] == "corpus":
        docs = read_documents(ctx, "corpus", source)
        tokens = tokenizer_from_config(tokenizer_cfg).setParams(inputCol="text", outputCol="tokens").transform(docs)
    else:
        interactions = read_inferred(ctx, source)
        tokens = session_sequences(interactions, source["session_col"], source["item_col"], source["time_col"])
    return (
        tokens.select("tokens").filter(F.size("tokens") >= source["min_length"]).persist(StorageLevel.MEMORY_AND_DISK)
    )


def train_word2vec_job(ctx: "JobContext") -> None:
    """Train word (or item) vectors; write the model, the vectors table and the word2vec text export."""
    cfg = ctx.config
    estimator = Word2Vec(inputCol="tokens", **model_params(cfg["model"]))
    estimator.settings()
    estimator.check_session(ctx.spark)
    sequences = training_sequences(ctx, cfg["input"], cfg["tokenizer"])
    ctx.log(f"training {cfg['model']['trainer']} on {cfg['input']['kind']}")
    model = estimator.fit(sequences)
    ctx.metrics["word2vec"] = {"input": cfg["input"]["kind"], "trainer": cfg["model"]["trainer"], **model.summary}
    ctx.log(f"{len(model.words)} words, {model.summary.get('train_s', 0):.1f}s training")
    root = cfg["output"]["path"].rstrip("/")
    ctx.stage_model("model", model, f"{root}/model")
    ctx.stage("vectors", model.vectors_frame(ctx.spark), f"{root}/vectors")
    if cfg["output"]["text_export"]:
        ctx.stage_files("text", f"{root}/text", {"vectors.txt": model.to_word2vec_text()})


def _queries(ctx: "JobContext", model: Word2VecModel, cfg: Mapping[str, Any]) -> DataFrame:
    table = ctx.spark.read.format(cfg["format"]).load(require_input(ctx.fs, cfg["path"]))
    index = model.index(ctx.spark)
    if cfg["mode"] == "most_similar":
        word_col = "word" if "word" in table.columns else None
        vector_col = "vector" if "vector" in table.columns else None
        if model.ngrams is not None and word_col and not vector_col:  # subwords: words never seen answered too
            table = with_oov_vectors(
                table, word_col, OOV_VECTOR, model.words, model.ngrams, model.value("minN"), model.value("maxN")
            )
            return index.most_similar(table, cfg["k"], word_col, OOV_VECTOR).drop(OOV_VECTOR)
        return index.most_similar(table, cfg["k"], word_col, vector_col)
    if cfg["mode"] == "analogy":
        return index.analogies(table, cfg["k"])
    raise ConfigError(f"queries.mode: expected most_similar or analogy, got {cfg['mode']!r}")


def evaluate_embeddings_job(ctx: "JobContext") -> None:
    """Quality figures of a saved model into ``_metrics.json`` and ``results/``; optional batch queries."""
    cfg = ctx.config
    model = load_model(Word2VecModel.load, require_input(ctx.fs, cfg["model_path"]))
    if cfg["kind"] == "words":
        quality = evaluate_words(ctx.spark, model.words, model.vectors, cfg["eval_dir"], cfg["restrict_vocab"])
        figures = {
            "analogy_accuracy": quality["analogy"]["accuracy"],
            "wordsim353_spearman": quality["wordsim353"]["spearman"],
            "simlex999_spearman": quality["simlex999"]["spearman"],
        }
    elif cfg["kind"] == "items":
        items = cfg["items"]
        categories = read_inferred(ctx, items)
        quality = category_neighbour_share(
            ctx.spark, model.words, model.vectors, categories, items["key_col"], items["category_col"], items["k"]
        )
        figures = {"same_category_share": quality["same_category_share"], "chance": quality["chance"]}
    else:
        raise ConfigError(f"kind: expected words or items, got {cfg['kind']!r}")
    ctx.metrics["evaluation"] = {"kind": cfg["kind"], "words": len(model.words), **quality}
    ctx.log(", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
    root = cfg["output"]["path"].rstrip("/")
    results = pd.DataFrame({"metric": list(figures), "value": [float(v) for v in figures.values()]})
    ctx.stage("results", from_pandas(ctx.spark, results, "metric STRING, value DOUBLE"), f"{root}/results")
    if cfg["queries"]["path"]:
        ctx.stage("answers", _queries(ctx, model, cfg["queries"]), f"{root}/answers")
