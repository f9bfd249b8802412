"""The main of ``jobs/evaluate.py``: one evaluation report of a scored table, with plots, as an output."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.frames import require_columns
from pipelines.ingest import read_input
from pipelines.metrics.report import evaluation_report
from pipelines.output import qualify

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}" if isinstance(value, float) else f"{value:,}"


def render_summary(report: dict[str, Any], source: str) -> str:
    """The report as Markdown for people: headline metrics, both thresholds' confusion counts, GAUC."""
    lines = [f"# Evaluation of {source}", "", "| metric | value |", "|---|---|"]
    for name in ("rows", "rows_dropped", "roc_auc", "pr_auc", "log_loss", "normalized_entropy", "calibration"):
        lines.append(f"| {name} | {_number(report[name])} |")
    lines += ["", "| threshold | precision | recall | F1 | accuracy | TP | FP | FN | TN |", "|---" * 9 + "|"]
    for counts in (report["at_threshold"], report["best_f1"]):
        lines.append(
            "| "
            + " | ".join(
                _number(counts[k])
                for k in ("threshold", "precision", "recall", "f1", "accuracy", "tp", "fp", "fn", "tn")
            )
            + " |"
        )
    gauc = report.get("gauc")
    if gauc:
        lines += [
            "",
            f"GAUC {_number(gauc['gauc'])} over {_number(gauc['groups'])} groups and "
            f"{_number(gauc['rows'])} rows ({_number(gauc['groups_skipped'])} groups, "
            f"{_number(gauc['rows_skipped'])} rows skipped: one class only)",
        ]
    if report.get("calibration_bins"):
        lines += ["", "| score bin | weight | mean predicted | observed rate |", "|---|---|---|---|"]
        lines += [
            f"| {b['low']:.2f}-{b['high']:.2f} | {_number(b['weight'])} | {_number(b['predicted'])} | "
            f"{_number(b['observed'])} |"
            for b in report["calibration_bins"]
        ]
    lines += [f"- note: {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def evaluate_job(ctx: "JobContext") -> dict[str, Any]:
    """Read the scored table, compute the report in Spark, stage JSON, Markdown and the ROC/PR/calibration plots."""
    cfg = ctx.config
    source = qualify(cfg["input"]["path"])
    data = read_input(ctx.spark, cfg["input"])
    columns = cfg["columns"]
    optional = {key: columns[key] or None for key in ("weight", "group")}
    wanted = [columns["score"], columns["label"], *[c for c in optional.values() if c]]
    require_columns(data, wanted, source)
    ctx.log(f"evaluating {source}")
    with tempfile.TemporaryDirectory() as plots:
        report = evaluation_report(
            data.select(*wanted),
            score_col=columns["score"],
            label_col=columns["label"],
            weight_col=optional["weight"],
            group_col=optional["group"],
            plot_dir=plots,
            positive_label=_or(cfg["positive_label"], 1),
            negative_label=_or(cfg["negative_label"], 0),
            **{key: cfg[key] for key in ("threshold", "curve_points", "drop_invalid", "calibration_bins")},
        )
        images = {Path(path).name: Path(path).read_bytes() for path in report.pop("plots").values()}
    ctx.metrics["evaluation"] = report
    summary = render_summary(report, source)
    ctx.stage_files(
        "report",
        cfg["output"]["path"],
        {"evaluation.json": json.dumps(report, indent=2) + "\n", "evaluation.md": summary, **images},
    )
    print(summary)
    return report
