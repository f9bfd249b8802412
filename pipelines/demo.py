"""The end-to-end demo behind ``make demo``: generate data, ingest it, summarise it, train, evaluate.

Each capability that lands adds its step here (TF-IDF, Word2Vec, GBDT+LR, PQ, evaluation), so
the demo always runs everything the product can do, on data it makes itself.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.datagen import write_demo_data
from pipelines.gbdt_lr.job import train_job
from pipelines.ingest import ingest_dataset
from pipelines.metrics.job import evaluate_job

if TYPE_CHECKING:
    from pipelines.cli import JobContext


HEADLINE = ("rows", "roc_auc", "pr_auc", "log_loss", "normalized_entropy", "calibration")


def summarise(tables: dict[str, DataFrame]) -> dict[str, Any]:
    """A handful of aggregates per table, computed in Spark (one small row each)."""
    corpus = tables["corpus"].select(F.size(F.split(F.trim("text"), r"\s+")).alias("tokens"))
    c = corpus.agg(F.count(F.lit(1)).alias("docs"), F.sum("tokens").alias("tokens"),
                   F.avg("tokens").alias("mean")).first()
    s = tables["interactions"].agg(
        F.count(F.lit(1)).alias("events"), F.countDistinct("user_id").alias("users"),
        F.countDistinct("session_id").alias("sessions"), F.countDistinct("item_id").alias("items")).first()
    k = tables["clicks"].agg(F.count(F.lit(1)).alias("rows"), F.avg("label").alias("ctr"),
                             F.avg(F.col("i5").isNull().cast("double")).alias("i5_missing")).first()
    by_device = {r["c1"]: round(r["ctr"], 4) for r in
                 tables["clicks"].groupBy("c1").agg(F.avg("label").alias("ctr")).collect()}
    return {
        "corpus": {"documents": c["docs"], "tokens": c["tokens"], "mean_tokens_per_doc": round(c["mean"], 2)},
        "interactions": {"events": s["events"], "users": s["users"], "sessions": s["sessions"],
                         "items": s["items"], "mean_session_length": round(s["events"] / s["sessions"], 2)},
        "clicks": {"rows": k["rows"], "ctr": round(k["ctr"], 4), "i5_missing_share": round(k["i5_missing"], 4),
                   "ctr_by_device": dict(sorted(by_device.items()))},
    }


def render_report(summary: dict[str, Any], ingest: dict[str, Any], evaluation: dict[str, Any]) -> str:
    """The summary and the click model's evaluation as Markdown, for people."""
    lines = ["# Demo pipeline report", "", "## Ingest", "",
             "| table | records | good | quarantined | share |", "|---|---|---|---|---|"]
    for key, m in ingest.items():
        lines.append(f"| {key} | {m['rows_in']:,} | {m['rows_good']:,} | {m['rows_quarantined']:,} | "
                     f"{m['malformed_fraction']:.2%} |")
    for section, values in summary.items():
        lines += ["", f"## {section.capitalize()}", ""]
        lines += [f"- {name.replace('_', ' ')}: {json.dumps(value)}" for name, value in values.items()]
    lines += ["", "## Evaluation of the GBDT+LR click model (test split)", ""]
    lines += [f"- {name.replace('_', ' ')}: {value}" for name, value in evaluation.items()]
    return "\n".join(lines) + "\n"


def demo_job(ctx: "JobContext") -> None:
    """``jobs/demo.py``: every step of the product that exists, in one session."""
    cfg = ctx.config
    root = cfg["output"]["path"].rstrip("/")
    ctx.log("step 1: generate demo data")
    raw = write_demo_data(ctx, f"{root}/raw", cfg["size"], cfg["seed"], cfg["malformed_fraction"],
                          key_prefix="raw_")
    ctx.commit()
    ctx.log("step 2: ingest")
    clean = {}
    for key, files in raw.items():
        source = {"path": f"{root}/raw/{key}", "kind": "table", "format": "json" if key == "corpus" else files.fmt,
                  "schema": files.schema, "options": files.options}
        clean[key] = ingest_dataset(ctx, key, source, f"{root}/clean/{key}", f"{root}/quarantine/{key}",
                                    cfg["max_malformed_fraction"])
    ctx.commit()
    ctx.log("step 3: summary")
    tables = {k: ctx.spark.read.parquet(ctx.committed[k].final_path) for k in clean}
    summary = summarise(tables)
    ctx.metrics["summary"] = summary
    ctx.log("step 4: GBDT+LR click model on the clean clicks")
    steps = cfg["steps"]
    trained = ctx.run_step("train_gbdt_lr", train_job, {
        **steps["train_gbdt_lr"], "input": {"path": ctx.committed["clicks"].final_path},
        "output": {"path": f"{root}/gbdt_lr"}})
    ctx.log("step 5: evaluation of the GBDT+LR test scores")
    evaluated = ctx.run_step("evaluate", evaluate_job, {
        "input": {"path": trained.committed["test_scores"].final_path}, "output": {"path": f"{root}/evaluation"}})
    plots = evaluated.committed["report"].final_path
    ctx.metrics["evaluation"] = {**{k: evaluated.metrics["evaluation"][k] for k in HEADLINE},
                                 "roc_plot": f"{plots}/roc.png", "pr_plot": f"{plots}/pr.png"}
    report = render_report(summary, ctx.metrics["ingest"], ctx.metrics["evaluation"])
    ctx.stage_files("report", f"{root}/report", {"report.md": report,
                                                 "summary.json": json.dumps(summary, indent=2) + "\n"})
    print(report)
