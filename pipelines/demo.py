"""The end-to-end demo behind ``make demo``: the recommender pipeline on generated data, in local mode.

It runs ``conf/pipelines/recsys_demo.yaml`` with the orchestration runner in this job's SparkSession
(generate -> ingest -> split -> item2vec -> PQ -> recall -> features -> GBDT+LR -> baselines -> evaluation),
writes the run's HTML report, and prints NDCG@10 of each method and where the outputs and the report are
(the evaluate step prints the whole comparison table).
The GBDT+LR click-model chain runs as its own pipeline, ``conf/pipelines/clicks_demo.yaml``.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pipelines.cli import JobError
from pipelines.config import check_date
from pipelines.orchestration.definition import load_pipeline
from pipelines.orchestration.report import write_report
from pipelines.orchestration.runner import Runner, StepFailed

if TYPE_CHECKING:
    from pipelines.cli import JobContext


def evaluation_metrics(manifest: dict[str, Any], step: str = "evaluate") -> dict[str, Any]:
    """The ``evaluation`` section of the evaluate step's ``_metrics.json`` in a run manifest."""
    entry = next(s for s in manifest["steps"] if s["name"] == step)
    metrics = entry.get("metrics") or {}
    return metrics.get("evaluation") or {}


def headline(evaluation: dict[str, Any], k: int = 10) -> str:
    """One line: NDCG@k of our ranked lists against popularity and ALS."""
    methods = evaluation.get("methods") or {}
    parts = [f"{m} {methods[m][f'ndcg@{k}']:.4f}" for m in ("ours", "ours_recall_only", "popularity", "als")
             if m in methods and f"ndcg@{k}" in methods[m]]
    return f"NDCG@{k}: " + ", ".join(parts)


def demo_job(ctx: "JobContext") -> None:
    """``jobs/demo.py``: run the recommender pipeline for one date and print the report's path."""
    cfg = ctx.config
    run_date = check_date("run_date", cfg["run_date"]) if cfg["run_date"] else \
        ctx.run_date or dt.date.today().isoformat()
    definition = cfg["pipeline"]
    pipeline = load_pipeline(definition, cfg["output"]["path"])
    runner = Runner(pipeline, "session", force=cfg["force"], spark=ctx.spark, argv=["demo", definition])
    try:
        manifest = runner.run(run_date)
    except StepFailed as exc:
        raise JobError(f"{pipeline.name}: {exc}") from None
    report = write_report(manifest.path)
    evaluation = evaluation_metrics(manifest.data)
    print(headline(evaluation))
    print(f"outputs: {pipeline.root}")
    print(f"manifest: {manifest.path}")
    print(f"report: {report}")
    ctx.metrics["demo"] = {"pipeline": pipeline.name, "run_date": run_date, "report": report,
                           "duration_s": manifest.data["duration_s"], "evaluation": evaluation}
