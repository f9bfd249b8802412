"""The two PQ jobs: ``build_pq`` (train and encode the item table) and ``search_pq`` (batch top-k).

Both quarantine rows whose vector is null, of the wrong dimension or has a NaN/inf component
(committed at once, like ingest's quarantine) and fail above ``max_bad_fraction``.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.errors import load_model
from pipelines.frames import require_columns
from pipelines.fs import require_input
from pipelines.job_runtime import JobContext
from pipelines.output import qualify
from pipelines.pq.encoder import PQEncoder, PQEncoderModel
from pipelines.pq.evaluation import RECALL_KS, index_summary, recall_at, reconstruction_mse
from pipelines.pq.search import exact_neighbours, search
from pipelines.pq.validation import (
    Checked,
    check_bad_fraction,
    check_layout,
    check_unique_ids,
    infer_dim,
    split_vectors,
)
from pipelines.session import job_description
from pipelines.stages import config_params

# quantizer settings named as PQEncoder's Params (in snake_case)
ENCODER_KEYS = (
    "m",
    "nbits",
    "metric",
    "max_iter",
    "seed",
    "distributed_min_rows",
    "opq",
    "opq_iter",
    "nlist",
    "by_residual",
)


def read_vectors(ctx: JobContext, source: Mapping[str, Any], id_name: str) -> DataFrame:
    """``(id_name, vector)`` from a Parquet/JSON table with ``id_col`` and ``vector_col``."""
    path = require_input(ctx.fs, source["path"])
    df = ctx.spark.read.format(source["format"]).load(path)
    require_columns(df, (source["id_col"], source["vector_col"]), path)
    return df.select(F.col(source["id_col"]).alias(id_name), F.col(source["vector_col"]).alias("vector"))


def checked_vectors(
    ctx: JobContext, key: str, df: DataFrame, dim: int, source: str, quarantine_path: str, limit: float
) -> Checked:
    """Split off bad vectors, commit them to quarantine, record counts, enforce the limit."""
    checked = split_vectors(df, "vector", dim)
    committed = ctx.commit_now(f"{key}_quarantine", checked.bad, quarantine_path) if checked.rows_bad else None
    ctx.metrics.setdefault("input", {})[key] = {
        "source": qualify(source),
        "rows_in": checked.rows_in,
        "rows_quarantined": checked.rows_bad,
        "quarantined_by_reason": checked.bad_by_reason,
        "quarantine_path": committed,
    }
    ctx.log(f"{key}: {checked.rows_in} vectors, {checked.rows_bad} quarantined")
    check_bad_fraction(checked, limit, qualify(source), committed)
    return checked


def build_pq_job(ctx: JobContext) -> None:
    """``jobs/build_pq.py``: train the quantiser on a sample, encode every item, save codes and model."""
    cfg, q = ctx.config, ctx.config["quantizer"]
    items = read_vectors(ctx, cfg["input"], "item_id")
    dim = q["dim"] or infer_dim(items, "vector")
    check_layout(dim, q["m"], q["nbits"])
    codes_path = cfg["output"]["codes_path"]
    checked = checked_vectors(
        ctx,
        "items",
        items,
        dim,
        cfg["input"]["path"],
        cfg["output"]["quarantine_path"] or f"{codes_path}_quarantine",
        cfg["max_bad_fraction"],
    )
    good = checked.good.cache()
    check_unique_ids(good, "item_id", qualify(cfg["input"]["path"]))
    encoder = PQEncoder(
        inputCol="vector",
        outputCol="code",
        listCol="list_id",
        sampleSize=q["train_sample_size"],
        initMode=q["init"],
        **config_params(q, *ENCODER_KEYS),
    )
    started = time.time()
    model = encoder.fit(good)
    train_s = time.time() - started
    ctx.log(f"trained {q['m']} x {1 << q['nbits']} centroids in {train_s:.1f}s")
    columns = (
        ["item_id", "code"]
        + (["list_id"] if q["nlist"] else [])
        + (["vector"] if cfg["output"]["keep_vectors"] else [])
    )
    started = time.time()
    with job_description(ctx.spark, "build_pq: encode and write codes"):
        out = ctx.stage("codes", model.transform(good).select(*columns), codes_path)
    encode_s = time.time() - started
    ctx.stage_model("model", model, cfg["output"]["model_path"], dated=True)
    fraction = min(1.0, cfg["evaluate"]["mse_sample_size"] / max(out.rows or 1, 1))
    mse = reconstruction_mse(model, model.transform(good.sample(fraction=fraction, seed=q["seed"])))
    ctx.metrics["pq"] = {
        **index_summary(model),
        "train_s": round(train_s, 3),
        "encode_and_write_s": round(encode_s, 3),
        "vectors_encoded": out.rows,
        "vectors_per_s": round((out.rows or 0) / max(encode_s, 1e-9), 1),
        "reconstruction_mse": mse,
        "mse_sample_fraction": round(fraction, 6),
    }
    good.unpersist()


def search_pq_job(ctx: JobContext) -> None:
    """``jobs/search_pq.py``: exact ADC top-k of every query over the coded items, with optional recall."""
    cfg, s = ctx.config, ctx.config["search"]
    model = load_model(PQEncoderModel.load, qualify(cfg["items"]["model_path"]))
    items = ctx.spark.read.parquet(qualify(cfg["items"]["codes_path"]))
    vectors = None
    if cfg["items"]["vectors"]["path"]:
        vectors = read_vectors(ctx, cfg["items"]["vectors"], "item_id")
    elif "vector" in items.columns:
        vectors = items.select("item_id", "vector")
    raw = read_vectors(ctx, cfg["queries"], "query_id")
    out_path = cfg["output"]["path"]
    checked = checked_vectors(
        ctx,
        "queries",
        raw,
        model.dim,
        cfg["queries"]["path"],
        cfg["output"]["quarantine_path"] or f"{out_path}_quarantine",
        cfg["max_bad_fraction"],
    )
    queries = checked.good.select("query_id", "vector").cache()  # read by the checks, the search and the recall
    started = time.time()
    result = search(
        model,
        items,
        queries,
        s["k"],
        s["nprobe"],
        s["rerank_k"],
        vectors,
        "vector",
        s["query_block"],
        s["partitions"],
    )
    out = ctx.stage("neighbours", result, out_path)
    search_s = time.time() - started
    ctx.metrics["search"] = {
        **index_summary(model),
        "queries": checked.rows_in - checked.rows_bad,
        "k": s["k"],
        "nprobe": s["nprobe"],
        "rerank_k": s["rerank_k"],
        "search_and_write_s": round(search_s, 3),
    }
    e = cfg["evaluate"]
    if e["sample_size"] > 0 and vectors is not None:
        ids = sample_ids(queries, e["sample_size"], e["seed"])
        truth = exact_neighbours(vectors, queries.join(ids, "query_id"), 1, model.getMetric())
        found = ctx.spark.read.parquet(out.staging_path).join(ids, "query_id")
        recall = recall_at(found, truth, [k for k in RECALL_KS if k <= s["k"]])
        sampled = min(e["sample_size"], checked.rows_in - checked.rows_bad)
        ctx.metrics["evaluation"] = {"queries_sampled": sampled, **recall}
        ctx.log(f"recall on {sampled} queries: {recall}")
    elif e["sample_size"] > 0:
        ctx.log("evaluation skipped: no raw item vectors (set items.vectors.path or build with keep_vectors)")
    queries.unpersist()


def sample_ids(queries: DataFrame, n: int, seed: int) -> DataFrame:
    """``query_id`` of a seeded pseudo-random subset of ``n`` queries (all of them when there are fewer),
    chosen in Spark: the ``n`` smallest seeded hashes of the id."""
    return queries.select("query_id").orderBy(F.xxhash64("query_id", F.lit(seed)), "query_id").limit(n)
