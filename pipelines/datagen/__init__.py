"""Deterministic demo data sized by one parameter: a topical corpus, item sessions and a click log.

``size=1.0`` gives 2,000 documents, 1,000 users (about 24,000 interactions) over 1,000 items, and
50,000 clicks; every table scales linearly. The same seed gives the same rows on any cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.datagen.chunks import generate
from pipelines.datagen.clicks import CLICKS_SCHEMA, clicks_chunk
from pipelines.datagen.corpus import CORPUS_SCHEMA, WORDS_SCHEMA, corpus_chunk, word_topics
from pipelines.datagen.sessions import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, items_chunk, sessions_chunk
from pipelines.frames import from_pandas

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext

BASE_ROWS = {"corpus": 2000, "users": 1000, "items": 1000, "clicks": 50000}


def scaled(size: float) -> dict[str, int]:
    """Row counts for a size factor (at least one row of each)."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return {k: max(1, round(v * size)) for k, v in BASE_ROWS.items()}


def demo_tables(spark: SparkSession, size: float = 1.0, seed: int = 42) -> dict[str, DataFrame]:
    """The typed demo tables: corpus, interactions, items and clicks."""
    n = scaled(size)
    return {
        "corpus": generate(spark, corpus_chunk, CORPUS_SCHEMA, seed, n["corpus"], 200),
        "interactions": generate(
            spark, partial(sessions_chunk, n_items=n["items"]), INTERACTIONS_SCHEMA, seed, n["users"], 200
        ),
        "items": generate(spark, partial(items_chunk, n_items=n["items"]), ITEMS_SCHEMA, seed, n["items"], 5000),
        "clicks": generate(spark, clicks_chunk, CLICKS_SCHEMA, seed, n["clicks"], 10000),
    }


@dataclass(frozen=True)
class RawFile:
    """A table rendered as the files a user would receive: format, reader options, schema."""

    df: DataFrame
    fmt: str
    options: dict[str, str]
    schema: str


def _picked(key: Column, seed: int, fraction: float) -> Column:
    """A deterministic per-row coin: the same rows are picked whatever the partitioning."""
    return (F.abs(F.xxhash64(key, F.lit(seed))) % 1_000_000) < int(round(fraction * 1_000_000))


def raw_files(tables: dict[str, DataFrame], seed: int = 42, malformed_fraction: float = 0.0) -> dict[str, RawFile]:
    """Corpus as JSON lines, the rest as CSV with a header; a share of clicks and corpus lines broken."""
    clicks = tables["clicks"].select(*[F.col(c).cast("string") for c in tables["clicks"].columns])
    clicks = clicks.withColumn(
        "i1", F.when(_picked(F.col("click_id"), seed, malformed_fraction), F.lit("n/a?")).otherwise(F.col("i1"))
    )
    json_line = F.to_json(F.struct(F.col("doc_id").alias("id"), "text"))
    corpus = tables["corpus"].select(
        F.when(_picked(F.col("doc_id"), seed, malformed_fraction), F.substring(json_line, 1, 40))
        .otherwise(json_line)
        .alias("value")
    )
    csv = {"header": "true"}
    return {
        "corpus": RawFile(corpus, "text", {}, "id BIGINT, text STRING"),
        "interactions": RawFile(tables["interactions"], "csv", csv, INTERACTIONS_SCHEMA),
        "items": RawFile(tables["items"], "csv", csv, ITEMS_SCHEMA),
        "clicks": RawFile(clicks, "csv", csv, CLICKS_SCHEMA),
    }


def corpus_files(corpus: DataFrame) -> DataFrame:
    """The corpus as a labelled corpus arrives, one file per document in a folder per class: rows to write as text
    partitioned by ``topic`` and ``doc_id`` (``topic=<k>/doc_id=<id>/part-*.txt``, one line each)."""
    return corpus.select("topic", "doc_id", "text")


def write_demo_data(
    ctx: "JobContext",
    output_path: str,
    size: float,
    seed: int,
    malformed_fraction: float,
    key_prefix: str = "",
    with_corpus_files: bool = False,
) -> dict[str, RawFile]:
    """Stage every raw demo file under ``output_path/<table>``, and with ``with_corpus_files`` the corpus once more
    as one file per document (``output_path/corpus_files``, see ``corpus_files``); returns what was written."""
    tables = demo_tables(ctx.spark, size, seed)
    files = raw_files(tables, seed, malformed_fraction)
    for key, raw in files.items():
        ctx.stage(f"{key_prefix}{key}", raw.df, f"{output_path}/{key}", fmt=raw.fmt, options=raw.options)
    if with_corpus_files:
        path = f"{output_path}/corpus_files"
        ctx.stage(f"{key_prefix}corpus_files", corpus_files(tables["corpus"]), path, "text", ["topic", "doc_id"])
    ctx.metrics["datagen"] = {
        "size": size,
        "seed": seed,
        "malformed_fraction": malformed_fraction,
        "rows": scaled(size),
    }
    return files


def generate_job(ctx: "JobContext") -> None:
    """``jobs/generate_demo_data.py``: the raw demo files, and each vocabulary word's topic (``words``, CSV)."""
    cfg = ctx.config
    out = cfg["output"]["path"]
    write_demo_data(ctx, out, cfg["size"], cfg["seed"], cfg["malformed_fraction"], "", cfg["corpus_files"])
    words = word_topics(cfg["seed"])
    ctx.stage(
        "words",
        from_pandas(ctx.spark, words, WORDS_SCHEMA),
        f"{cfg['output']['path']}/words",
        fmt="csv",
        options={"header": "true"},
    )
    ctx.metrics["datagen"]["rows"]["words"] = len(words)
