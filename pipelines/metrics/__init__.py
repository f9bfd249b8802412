"""Exact evaluation metrics computed in Spark aggregates, never by collecting rows to the driver.

Binary classification (``score`` higher means more likely positive, labels in {0, 1} unless
``positive_label``/``negative_label`` say otherwise, optional non-negative weights):
:func:`roc_auc`, :func:`pr_auc`, :func:`log_loss`, :func:`normalized_entropy`,
:func:`calibration`, :func:`confusion_at_threshold`, :func:`best_f1_threshold`,
:func:`roc_curve`, :func:`pr_curve` and, per group, :func:`grouped_auc`. Recommendations:
:func:`ranking_metrics`. Plots (PNG): :func:`plot_roc`, :func:`plot_pr`,
:func:`plot_calibration`, :func:`plot_at_k`. Multiclass: :func:`multiclass_metrics`. Everything at once:
:func:`evaluation_report`. For ``CrossValidator``: :class:`ExactBinaryEvaluator` (AUC, PR-AUC, log loss, NE,
GAUC as a Spark ML evaluator). Bad input raises :class:`MetricsInputError`; a missing column raises
``pipelines.errors.InputError``, as in every job.

Each metric reads its input two to four times (checks, then one shuffle or more): cache an input
that is expensive to recompute.
"""

from pipelines.metrics.binary import (
    ConfusionCounts,
    ProbabilityMetrics,
    calibration,
    confusion_at_threshold,
    log_loss,
    normalized_entropy,
)
from pipelines.metrics.curves import best_f1_threshold, pr_auc, pr_curve, roc_auc, roc_curve
from pipelines.metrics.evaluators import ExactBinaryEvaluator
from pipelines.metrics.grouped import GroupedAUC, grouped_auc
from pipelines.metrics.multiclass import MulticlassMetrics, multiclass_metrics
from pipelines.metrics.plots import plot_at_k, plot_calibration, plot_pr, plot_roc
from pipelines.metrics.ranking import RankingMetrics, ranking_metrics
from pipelines.metrics.report import evaluation_report
from pipelines.metrics.validation import MetricsInputError

__all__ = [
    "ConfusionCounts",
    "ExactBinaryEvaluator",
    "GroupedAUC",
    "MetricsInputError",
    "MulticlassMetrics",
    "ProbabilityMetrics",
    "RankingMetrics",
    "best_f1_threshold",
    "calibration",
    "confusion_at_threshold",
    "evaluation_report",
    "grouped_auc",
    "log_loss",
    "multiclass_metrics",
    "normalized_entropy",
    "plot_at_k",
    "plot_calibration",
    "plot_pr",
    "plot_roc",
    "pr_auc",
    "pr_curve",
    "ranking_metrics",
    "roc_auc",
    "roc_curve",
]
