"""The end-to-end demo behind ``make demo``: the recommender pipeline on generated data, in local mode.

It runs ``conf/pipelines/recsys_demo.yaml`` with the orchestration runner in this job's SparkSession
(generate -> ingest -> split -> item2vec -> PQ -> recall -> features -> GBDT+LR -> baselines -> evaluation),
writes the run's HTML report, and prints NDCG@10 of each method, the funnel (candidates per user and the
test target's recall after recall and after ranking) and where the outputs and the report are (the evaluate
step prints the whole comparison table). Every figure comes from the steps' metrics in the run manifest.
The GBDT+LR click-model chain runs as its own pipeline, ``conf/pipelines/clicks_demo.yaml``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pipelines.config import check_date
from pipelines.job_runtime import JobError
from pipelines.orchestration.definition import load_pipeline
from pipelines.orchestration.report import write_report
from pipelines.orchestration.runner import Runner, StepFailed

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext


def step_metrics(manifest: dict[str, Any], section: str) -> dict[str, Any]:
    """The ``section`` of the first step's metrics in a run manifest that has it (empty if none)."""
    for entry in manifest["steps"]:
        found = (entry.get("metrics") or {}).get(section)
        if found:
            return found
    return {}


def headline(evaluation: dict[str, Any], k: int = 10) -> str:
    """One line: NDCG@k of our ranked lists against popularity and ALS."""
    methods = evaluation.get("methods") or {}
    parts = [
        f"{m} {methods[m][f'ndcg@{k}']:.4f}"
        for m in ("ours", "ours_recall_only", "popularity", "als")
        if m in methods and f"ndcg@{k}" in methods[m]
    ]
    return f"NDCG@{k}: " + ", ".join(parts)


def funnel(manifest: dict[str, Any], k: int = 10) -> list[str]:
    """The test users' funnel: candidates per user and target recall after recall, then in the ranked top k.

    From the recall step's coverage, the features step's row counts and the evaluation's methods; a stage
    whose metrics are missing is left out.
    """
    recall, features = step_metrics(manifest, "recall"), step_metrics(manifest, "features").get("test") or {}
    methods = step_metrics(manifest, "evaluation").get("methods") or {}
    lines = []
    if features.get("users") and "test_target_in_candidates" in recall:
        lines.append(
            f"  recall: {features['rows'] / features['users']:.1f} candidates per user, "
            f"test target among them for {recall['test_target_in_candidates']:.3f} of users"
        )
    ours, alone = methods.get("ours") or {}, methods.get("ours_recall_only") or {}
    if f"ndcg@{k}" in ours and f"ndcg@{k}" in alone:
        lines.append(
            f"  ranking: top {k}, test target in it for {ours[f'recall@{k}']:.3f} of users "
            f"(recall order {alone[f'recall@{k}']:.3f})"
        )
        ndcg, base = ours[f"ndcg@{k}"], alone[f"ndcg@{k}"]
        lift = f" ({ndcg / base - 1:+.1%})" if base else ""
        lines.append(f"  NDCG@{k}: ours {ndcg:.4f}, recall order {base:.4f}{lift}")
    return ["funnel (test users):", *lines] if lines else []


def demo_job(ctx: "JobContext") -> None:
    """``jobs/demo.py``: run the recommender pipeline for one date and print the report's path."""
    cfg = ctx.config
    run_date = (
        check_date("run_date", cfg["run_date"]) if cfg["run_date"] else ctx.run_date or dt.date.today().isoformat()
    )
    definition = cfg["pipeline"]
    pipeline = load_pipeline(definition, cfg["output"]["path"])
    runner = Runner(
        pipeline, "session", force=cfg["force"], spark=ctx.spark, argv=["demo", definition], parent_run=ctx.tracking
    )
    try:
        manifest = runner.run(run_date)
    except StepFailed as exc:
        raise JobError(f"{pipeline.name}: {exc}") from None
    report = write_report(manifest.path)
    evaluation = step_metrics(manifest.data, "evaluation")
    print(headline(evaluation))
    for line in funnel(manifest.data):
        print(line)
    print(f"outputs: {pipeline.root}")
    print(f"manifest: {manifest.path}")
    print(f"report: {report}")
    ctx.metrics["demo"] = {
        "pipeline": pipeline.name,
        "run_date": run_date,
        "report": report,
        "duration_s": manifest.data["duration_s"],
        "evaluation": evaluation,
    }
