"""Comparison report for GBDT+LR and its baselines: metrics, NE gains next to the paper's, plots."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame

from pipelines.gbdt_lr.features import TREE_FEATURES
from pipelines.gbdt_lr.model import GBDTLRModel
from pipelines.metrics import evaluation_report
from pipelines.session import thread_map

# He et al. (2014), table 1: normalized entropy relative to trees-only, in percent.
PAPER_RELATIVE_NE = {"gbdt_lr": 96.58, "lr_only": 99.43, "trees_only": 100.0}
MODELS = ("gbdt_lr", "lr_only", "trees_only")


def evaluate(scored: dict[str, DataFrame], label: str) -> dict[str, dict[str, Any]]:
    """``evaluation_report`` of each model's ``score``, with the ROC and calibration points its plots draw
    (computed in the metrics' own passes, not again). The models are evaluated at once from driver threads:
    each report is a chain of small Spark jobs that alone leaves the cores idle between them."""
    names = list(scored)

    def report(name: str) -> dict[str, Any]:
        return evaluation_report(scored[name], score_col="score", label_col=label, curves=True, curve_points=300)

    return dict(zip(names, thread_map(scored[names[0]].sparkSession, report, names, len(names))))


def compare(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """AUC, log loss, NE and calibration per model (from ``evaluate``), with NE relative to trees-only as in
    the paper."""
    results = {}
    for name, r in reports.items():
        results[name] = {
            k: r[k] for k in ("rows", "roc_auc", "pr_auc", "log_loss", "normalized_entropy", "calibration")
        }
    base = results["trees_only"]["normalized_entropy"]
    for name in results:
        results[name]["relative_ne_pct"] = 100.0 * results[name]["normalized_entropy"] / base
        results[name]["paper_relative_ne_pct"] = PAPER_RELATIVE_NE.get(name)
    return results


def contributions(model: GBDTLRModel, rows: DataFrame, names: list[str], n: int = 5) -> list[dict[str, Any]] | None:
    """Per-feature contributions (SHAP values, log-odds) of the trees to the first ``n`` of ``rows``, largest
    first, with each row's bias and margin; None for trees without contributions (MLlib's)."""
    if not hasattr(model.trees, "contributions"):
        return None
    prepared = model.stages["prep"].transform(rows.limit(n))
    features = np.array([r[0] for r in prepared.select(vector_to_array(TREE_FEATURES)).collect()], dtype=float)
    result = []
    for values in model.trees.contributions(features):
        ranked = sorted(zip(names, values[:-1]), key=lambda nv: -abs(nv[1]))
        result.append(
            {
                "bias": round(float(values[-1]), 6),
                "margin": round(float(values.sum()), 6),
                "top": [{"feature": f, "contribution": round(float(v), 6)} for f, v in ranked[:8]],
            }
        )
    return result


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def roc_plot(reports: dict[str, dict[str, Any]]) -> bytes:
    """Each model's ROC curve (``evaluate``'s points) in one axes."""
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    for name, r in reports.items():
        axes.plot(r["roc_curve"]["fpr"], r["roc_curve"]["tpr"], label=f"{name} (AUC {r['roc_auc']:.4f})")
    axes.plot([0, 1], [0, 1], "--", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the test split")
    axes.legend(loc="lower right")
    return _png(figure)


def calibration_plot(reports: dict[str, dict[str, Any]]) -> bytes:
    """Mean prediction against observed rate per score decile (``evaluate``'s calibration bins), per model."""
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    for name, r in reports.items():
        rows = r["calibration_bins"] or []
        axes.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], "o-", label=name)
    axes.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    axes.set(xlabel="mean predicted CTR", ylabel="observed CTR", title="Calibration by score decile")
    axes.legend(loc="upper left")
    return _png(figure)


def importance_table(importances: dict[str, list[dict[str, Any]]], rows: int | None = None) -> list[str]:
    """A Markdown table of the trees' importances, one column per kind (gain, cover), by the first kind."""
    kinds = list(importances)
    by_kind = {kind: {i["feature"]: i["importance"] for i in importances[kind]} for kind in kinds}
    lines = ["| feature | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    return lines + [
        f"| {i['feature']} | " + " | ".join(f"{by_kind[k][i['feature']]:.4f}" for k in kinds) + " |"
        for i in importances[kinds[0]][:rows]
    ]


def render_markdown(
    results: dict[str, Any],
    importances: dict[str, list[dict[str, Any]]],
    chosen: dict[str, Any],
    explained: list[dict[str, Any]] | None = None,
) -> str:
    lines = [
        "# GBDT+LR report",
        "",
        "| model | AUC | log loss | NE | calibration | NE vs trees-only | paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['roc_auc']:.4f} | {r['log_loss']:.4f} | {r['normalized_entropy']:.4f} | "
            f"{r['calibration']:.3f} | {r['relative_ne_pct']:.2f}% | {r['paper_relative_ne_pct']}% |"
        )
    lines += [
        "",
        f"GBDT+LR regParam {chosen['gbdt_lr_reg']}, LR-only regParam {chosen['lr_only_reg']}, "
        f"{len(chosen['tree_leaves'])} {chosen['learner']} trees, {sum(chosen['tree_leaves'])} leaves in all.",
        "",
        "## Tree feature importances (shares)",
        "",
    ]
    lines += importance_table(importances, 15)
    if explained:
        lines += ["", "## Why the trees scored these test rows so (contributions to the log-odds)", ""]
        for i, row in enumerate(explained):
            top = ", ".join(f"{c['feature']} {c['contribution']:+.3f}" for c in row["top"])
            lines.append(f"- row {i + 1}: margin {row['margin']:+.3f} = bias {row['bias']:+.3f} + {top} + ...")
    return "\n".join(lines) + "\n"
