"""Multiclass metrics from one weighted confusion matrix: accuracy, per-class and macro/micro/weighted F1.

The matrix is a ``groupBy(label, prediction)`` aggregate, so only classes squared cells reach the
driver. Conventions follow scikit-learn: the classes are the sorted union of labels and
predictions, and a rate with a zero denominator is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.frames import require_columns
from pipelines.metrics.validation import missing_check, validate, weight_checks
from pipelines.records import Record


@dataclass(frozen=True)
class MulticlassMetrics(Record):
    """``confusion_matrix[i][j]`` is the weight of rows with label ``labels[i]`` predicted ``labels[j]``."""

    labels: list[Any]
    confusion_matrix: list[list[float]]
    accuracy: float
    macro_f1: float
    micro_f1: float
    weighted_f1: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[float]
    rows: int
    rows_dropped: int


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def multiclass_metrics(
    df: DataFrame, label_col: str, prediction_col: str, weight_col: str | None = None, *, drop_invalid: bool = False
) -> MulticlassMetrics:
    """Accuracy, F1 (per class, macro, micro, weighted by support) and the confusion matrix.

    Null or NaN labels or predictions are errors, or excluded and counted with ``drop_invalid``;
    negative weights are errors.
    """
    require_columns(df, [label_col, prediction_col] + ([weight_col] if weight_col else []))
    checks = [missing_check(df, label_col), missing_check(df, prediction_col)] + weight_checks(df, weight_col)
    checked = validate(df, checks, drop_invalid=drop_invalid)
    weight = F.col(weight_col).cast("double") if weight_col else F.lit(1.0)
    cells = (
        checked.df.groupBy(F.col(label_col).alias("label"), F.col(prediction_col).alias("prediction"))
        .agg(F.sum(weight).alias("weight"))
        .collect()
    )
    labels = sorted({cell.label for cell in cells} | {cell.prediction for cell in cells})
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)))
    for cell in cells:
        matrix[index[cell.label], index[cell.prediction]] += cell.weight
    tp = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    f1 = _ratio(2 * tp, support + predicted)
    total = matrix.sum()
    return MulticlassMetrics(
        labels=labels,
        confusion_matrix=matrix.tolist(),
        accuracy=float(tp.sum() / total),
        macro_f1=float(f1.mean()),
        micro_f1=float(2 * tp.sum() / (support.sum() + predicted.sum())),
        weighted_f1=float(np.dot(f1, support) / support.sum()),
        precision=_ratio(tp, predicted).tolist(),
        recall=_ratio(tp, support).tolist(),
        f1=f1.tolist(),
        support=support.tolist(),
        rows=checked.rows,
        rows_dropped=checked.rows_dropped,
    )
