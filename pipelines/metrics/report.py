"""One evaluation report of a scored binary table: every binary metric in the fewest passes, plus plots.

Passes: one aggregate (input checks, log loss, calibration and its bins, counts at the threshold), one range
shuffle with pass 1 (AUC) and pass 2 (average precision, best F1, curve points) over the
persisted partitions, and for GAUC one hash shuffle by group.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from typing import Any

from pyspark.sql import DataFrame

from pipelines.metrics.binary import (
    calibration_bins_of,
    calibration_sums,
    confusion_of,
    probability_metrics_of,
    probability_sums,
    threshold_sums,
)
from pipelines.metrics.curves import ScoreOrder
from pipelines.metrics.grouped import grouped_auc_of
from pipelines.metrics.plots import plot_calibration, plot_pr, plot_roc
from pipelines.metrics.validation import MetricsInputError, prepare_binary

PROBABILITY_METRICS = ("log_loss", "normalized_entropy", "calibration")


def evaluation_report(
    df: DataFrame,
    *,
    score_col: str,
    label_col: str,
    weight_col: str | None = None,
    group_col: str | None = None,
    threshold: float = 0.5,
    curve_points: int = 200,
    plot_dir: str | os.PathLike | None = None,
    drop_invalid: bool = False,
    positive_label: Any = 1,
    negative_label: Any = 0,
    calibration_bins: int = 10,
    curves: bool = False,
) -> dict[str, Any]:
    """Binary metrics (and GAUC when ``group_col`` is given) as a JSON-serialisable dict.

    GAUC weighs each group by its rows and ignores ``weight_col``. ``calibration_bins`` equal-width score
    bins give the reliability-diagram points (``calibration_bins``, summed in the checks' pass). Writes
    ``roc.png`` and ``pr.png`` (``curve_points`` points each) and, for probabilities, ``calibration.png``
    into ``plot_dir`` when given. ``curves`` adds the ROC points (``roc_curve``: ``fpr`` and ``tpr`` lists of at
    most ``curve_points``) for a caller that draws its own plot, from the same pass.
    Metrics that do not apply are null with the reason under ``notes``: log loss, normalized
    entropy and calibration when scores are not probabilities, GAUC when no group has both classes.
    Bad input raises MetricsInputError as for the single metrics.
    """
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    if calibration_bins < 1:
        raise ValueError(f"calibration_bins must be at least 1, got {calibration_bins}")
    sums = {**probability_sums(), **threshold_sums(threshold), **calibration_sums(calibration_bins)}
    frame = prepare_binary(
        df,
        score_col,
        label_col,
        weight_col,
        group_col=group_col,
        positive_label=positive_label,
        negative_label=negative_label,
        drop_invalid=drop_invalid,
        sums=sums,
    )
    with ScoreOrder(frame, keep=True) as order:
        auc = order.roc_auc()
        sweep = order.sweep(curve_points if plot_dir is not None or curves else None)
    notes: list[str] = []
    report: dict[str, Any] = {
        "rows": frame.rows,
        "rows_dropped": frame.rows_dropped,
        "positive_weight": frame.positive_weight,
        "negative_weight": frame.negative_weight,
        "roc_auc": auc,
        "pr_auc": sweep.average_precision,
    }
    try:
        report.update(asdict(probability_metrics_of(frame, score_col)))
        report["calibration_bins"] = calibration_bins_of(frame, calibration_bins)
    except MetricsInputError as exc:
        report.update(dict.fromkeys(PROBABILITY_METRICS), calibration_bins=None)
        notes.append(str(exc))
    if curves:
        roc = sweep.roc_table()
        report["roc_curve"] = {"fpr": roc.fpr.tolist(), "tpr": roc.tpr.tolist()}
    report["at_threshold"] = confusion_of(frame, threshold).as_dict()
    report["best_f1"] = sweep.best_f1.as_dict()
    if group_col is not None:
        try:
            report["gauc"] = grouped_auc_of(frame, group_col).as_dict()
        except MetricsInputError as exc:
            report["gauc"] = None
            notes.append(str(exc))
    if plot_dir is not None:
        base_rate = frame.positive_weight / (frame.positive_weight + frame.negative_weight)
        report["plots"] = {
            "roc": plot_roc(sweep.roc_table(), os.path.join(plot_dir, "roc.png"), auc=auc),
            "pr": plot_pr(
                sweep.pr_table(),
                os.path.join(plot_dir, "pr.png"),
                average_precision=sweep.average_precision,
                base_rate=base_rate,
            ),
        }
        if report["calibration_bins"]:
            report["plots"]["calibration"] = plot_calibration(
                report["calibration_bins"], os.path.join(plot_dir, "calibration.png"), calibration=report["calibration"]
            )
    report["notes"] = notes
    return report
