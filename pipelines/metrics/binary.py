"""Binary metrics that are plain sums over rows: log loss, normalized entropy, calibration, confusion counts.

Each is one aggregate pass, fused with the input checks (see ``validation.prepare_binary``).
Metrics that need the score order (AUC, average precision, the F1-optimal threshold, curves)
live in ``curves``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from pipelines.metrics.validation import (
    LABEL,
    SCORE,
    WEIGHT,
    BinaryFrame,
    BinaryInput,
    MetricsInputError,
    binary_metric,
)
from pipelines.records import Record

# scikit-learn clips probabilities to [eps, 1 - eps] with eps the float64 machine epsilon.
EPS = 2.220446049250313e-16


@dataclass(frozen=True)
class ConfusionCounts(Record):
    """Weighted confusion counts and the rates derived from them, predicting positive when score >= threshold.

    Precision is 0 when nothing is predicted positive (scikit-learn's ``zero_division`` default).
    """

    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float
    precision: float
    recall: float
    f1: float
    accuracy: float

    @classmethod
    def from_counts(cls, threshold: float, tp: float, fp: float, positives: float, negatives: float) -> ConfusionCounts:
        predicted = tp + fp
        return cls(
            threshold=float(threshold),
            tp=tp,
            fp=fp,
            tn=negatives - fp,
            fn=positives - tp,
            precision=tp / predicted if predicted > 0 else 0.0,
            recall=tp / positives,
            f1=2 * tp / (predicted + positives),
            accuracy=(tp + negatives - fp) / (positives + negatives),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ProbabilityMetrics:
    """Metrics that read the score as the probability of the positive class.

    ``normalized_entropy`` is the mean log loss divided by the entropy of the mean label (He et al.
    2014, "Practical lessons from predicting clicks on ads at Facebook"); ``calibration`` is the
    sum of predictions over the sum of labels (1.0 is calibrated on average).
    """

    log_loss: float
    normalized_entropy: float
    calibration: float


def probability_sums() -> dict[str, Column]:
    """Row expressions whose sums give :class:`ProbabilityMetrics` (see ``prepare_binary``'s ``sums``)."""
    score, label, weight = F.col(SCORE), F.col(LABEL), F.col(WEIGHT)
    p = F.least(F.greatest(score, F.lit(EPS)), F.lit(1 - EPS))
    return {
        "_log_loss": -weight * F.when(label == 1, F.log(p)).otherwise(F.log(1 - p)),
        "_weight": weight,
        "_predicted": weight * score,
        "_out_of_range": ((score < 0) | (score > 1)).cast("int"),
    }


def calibration_sums(bins: int) -> dict[str, Column]:
    """Row expressions whose sums give :func:`calibration_bins_of`: per score bin of width ``1/bins``,
    the weight, the weighted score and the weighted label (scores outside [0, 1] land in the end bins)."""
    score, label, weight = F.col(SCORE), F.col(LABEL), F.col(WEIGHT)
    bin_of = F.least(F.greatest(F.floor(score * bins), F.lit(0)), F.lit(bins - 1))
    sums = {}
    for b in range(bins):
        inside = bin_of == b
        sums.update(
            {
                f"_cal{b}_weight": F.when(inside, weight),
                f"_cal{b}_predicted": F.when(inside, weight * score),
                f"_cal{b}_observed": F.when(inside, weight * label),
            }
        )
    return sums


def calibration_bins_of(frame: BinaryFrame, bins: int) -> list[dict[str, float]]:
    """Reliability-diagram points from a frame prepared with :func:`calibration_sums`: for each non-empty bin,
    its score range, weight, mean (weighted) prediction and observed positive rate."""
    points = []
    for b in range(bins):
        weight = frame.sums[f"_cal{b}_weight"]
        if weight > 0:
            points.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "weight": weight,
                    "predicted": frame.sums[f"_cal{b}_predicted"] / weight,
                    "observed": frame.sums[f"_cal{b}_observed"] / weight,
                }
            )
    return points


def threshold_sums(threshold: float) -> dict[str, Column]:
    """Row expressions whose sums are the true and false positive weight at ``threshold``."""
    predicted = F.col(SCORE) >= F.lit(float(threshold))
    return {
        "_tp": F.when(predicted & (F.col(LABEL) == 1), F.col(WEIGHT)),
        "_fp": F.when(predicted & (F.col(LABEL) == 0), F.col(WEIGHT)),
    }


def probability_metrics_of(frame: BinaryFrame, score_col: str) -> ProbabilityMetrics:
    """:class:`ProbabilityMetrics` from a frame prepared with :func:`probability_sums`."""
    outside = int(frame.sums["_out_of_range"])
    if outside:
        raise MetricsInputError(
            f"column '{score_col}': {outside} rows with scores outside [0, 1]; "
            "log loss, normalized entropy and calibration need probabilities"
        )
    total = frame.sums["_weight"]
    mean_label = frame.positive_weight / total
    entropy = -(mean_label * math.log(mean_label) + (1 - mean_label) * math.log(1 - mean_label))
    loss = frame.sums["_log_loss"] / total
    return ProbabilityMetrics(
        log_loss=loss, normalized_entropy=loss / entropy, calibration=frame.sums["_predicted"] / frame.positive_weight
    )


def confusion_of(frame: BinaryFrame, threshold: float) -> ConfusionCounts:
    """:class:`ConfusionCounts` from a frame prepared with :func:`threshold_sums`."""
    return ConfusionCounts.from_counts(
        threshold, frame.sums["_tp"], frame.sums["_fp"], frame.positive_weight, frame.negative_weight
    )


def _probability(data: BinaryInput) -> ProbabilityMetrics:
    return probability_metrics_of(data.prepare(probability_sums()), data.score_col)


@binary_metric
def log_loss(data: BinaryInput) -> float:
    """Mean (weighted) log loss of probability scores, clipped to [eps, 1-eps] as scikit-learn does."""
    return _probability(data).log_loss


@binary_metric
def normalized_entropy(data: BinaryInput) -> float:
    """Log loss divided by the entropy of the mean label: below 1.0 beats predicting the base rate."""
    return _probability(data).normalized_entropy


@binary_metric
def calibration(data: BinaryInput) -> float:
    """Sum of predicted probabilities over the sum of labels (weighted): 1.0 is calibrated on average."""
    return _probability(data).calibration


@binary_metric
def confusion_at_threshold(data: BinaryInput, *, threshold: float = 0.5) -> ConfusionCounts:
    """Confusion counts, precision, recall, F1 and accuracy when predicting positive at score >= threshold."""
    return confusion_of(data.prepare(threshold_sums(threshold)), threshold)
