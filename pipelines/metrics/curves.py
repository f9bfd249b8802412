"""Exact metrics that need the score order: ROC-AUC, average precision, the F1-optimal threshold, curves.

How, without collecting rows: the valid rows are range-partitioned by score. Spark's range
partitioner sends equal scores to the same partition, and partition bounds are ordered, so each
partition is a contiguous slice of the score order. Each partition is reduced in numpy to its
distinct scores ("blocks") with their positive and negative weight.

* Pass 1 returns, per partition, its lowest score, totals, number of blocks and the partial
  Mann-Whitney sum ``sum_k P_k * (N_below_k + N_k / 2)`` counting only its own negatives. The
  AUC numerator is linear in the negatives of lower partitions, so the driver adds
  ``P_partition * N_lower_partitions`` and needs no second pass: ties count half, weights are exact.
* Pass 2 (average precision, the F1-optimal threshold, curve points) needs each block's weight
  above it across partitions: the driver ships each partition its offsets (one triple per
  partition) and each partition returns its sums and the curve points that fall in it.

Float64 arithmetic throughout: unweighted sums are integers, exact below 2**53.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.connect import default_parallelism
from pipelines.frames import from_pandas
from pipelines.metrics.binary import ConfusionCounts
from pipelines.metrics.validation import LABEL, SCORE, WEIGHT, BinaryFrame, BinaryInput, binary_metric

ROWS_PER_PARTITION = 2_000_000
"""At least one range partition per this many rows: bounds a task's numpy memory (about 100 MB)."""
COMPACT_ROWS = 1 << 20
"""Reduce a partition's raw rows to blocks every this many rows, so that heavy ties stay small."""
SIGNED = "signed"

_SUMMARY_SCHEMA = "lo double, positives double, negatives double, blocks long, mann_whitney double"
_SWEEP_SCHEMA = (
    "precision_sum double, f1 double, f1_threshold double, f1_tp double, f1_fp double, "
    "thresholds array<double>, tps array<double>, fps array<double>"
)

Blocks = tuple[np.ndarray, np.ndarray, np.ndarray]


def _reduce(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> Blocks:
    """Distinct scores in ascending order with the positive and negative weight at each."""
    order = np.argsort(score)
    score = score[order]
    distinct = score[1:] != score[:-1]
    if distinct.all():  # continuous scores: nothing to add up
        return score, pos[order], neg[order]
    starts = np.flatnonzero(np.r_[True, distinct])
    return score[starts], np.add.reduceat(pos[order], starts), np.add.reduceat(neg[order], starts)


def _compact(batches: list[pa.RecordBatch]) -> Blocks:
    table = pa.Table.from_batches(batches)
    signed = table.column(SIGNED).to_numpy()
    return _reduce(table.column(SCORE).to_numpy(), np.maximum(signed, 0.0), np.maximum(-signed, 0.0))


def _partition_blocks(batches: Iterator[pa.RecordBatch]) -> Blocks | None:
    """A partition's rows as blocks, or None for an empty partition."""
    chunks: list[Blocks] = []
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= COMPACT_ROWS:
            chunks.append(_compact(pending))
            pending, pending_rows = [], 0
    if pending_rows:
        chunks.append(_compact(pending))
    if not chunks:
        return None
    if len(chunks) == 1:
        return chunks[0]
    return _reduce(*(np.concatenate(parts) for parts in zip(*chunks)))


def partitions_for(frame: BinaryFrame) -> int:
    """One partition per core (one wave of tasks), or more when one would exceed ROWS_PER_PARTITION rows."""
    cores = default_parallelism(frame.df.sparkSession)
    return max(cores, math.ceil(frame.rows / ROWS_PER_PARTITION))


def exclusive_cumsum(values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values)
    np.cumsum(values[:-1], out=out[1:])
    return out


def _summarise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Pass 1: one row per non-empty partition."""
    blocks = _partition_blocks(batches)
    if blocks is None:
        return
    score, pos, neg = blocks
    mann_whitney = float(np.dot(pos, exclusive_cumsum(neg) + 0.5 * neg))
    yield pa.RecordBatch.from_pydict(
        {
            "lo": [score[0]],
            "positives": [pos.sum()],
            "negatives": [neg.sum()],
            "blocks": [score.size],
            "mann_whitney": [mann_whitney],
        }
    )


def _sweep_partition(
    batches: Iterator[pa.RecordBatch],
    offsets: dict[float, tuple[float, float, int]],
    positives: float,
    selected: np.ndarray,
) -> Iterator[pa.RecordBatch]:
    """Pass 2: precision sum, best F1 and the selected curve points of one partition.

    Blocks are walked from the highest score down; at a block's threshold everything scoring at
    least that much is predicted positive. ``offsets`` maps a partition's lowest score to the
    positive weight, negative weight and block count of all partitions with higher scores.
    """
    blocks = _partition_blocks(batches)
    if blocks is None:
        return
    score, pos, neg = (values[::-1] for values in blocks)
    pos_above, neg_above, blocks_above = offsets[float(score[-1])]
    tp = pos_above + np.cumsum(pos)
    fp = neg_above + np.cumsum(neg)
    f1 = 2 * tp / (tp + fp + positives)
    best = int(np.argmax(f1))  # the first maximum: the highest threshold among equals
    # Curve point i is block i - 1 in the global descending order; point 0 predicts nothing positive.
    first = blocks_above + 1
    lo, hi = np.searchsorted(selected, [first, first + score.size])
    take = selected[lo:hi] - first
    yield pa.RecordBatch.from_pydict(
        {
            "precision_sum": [float(np.dot(pos, tp / (tp + fp)))],
            "f1": [f1[best]],
            "f1_threshold": [score[best]],
            "f1_tp": [tp[best]],
            "f1_fp": [fp[best]],
            "thresholds": [score[take]],
            "tps": [tp[take]],
            "fps": [fp[take]],
        }
    )


def curve_indices(blocks: int, points: int) -> np.ndarray:
    """Which of the ``blocks + 1`` curve points to keep: all when they fit, else evenly spaced ones.

    The first (nothing predicted positive) and last (everything predicted positive) are always kept.
    """
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if points > blocks:
        return np.arange(blocks + 1)
    return np.unique(np.round(np.linspace(0, blocks, points)).astype(np.int64))


@dataclass(frozen=True)
class _Part:
    lo: float
    positives: float
    negatives: float
    blocks: int
    mann_whitney: float


@dataclass(frozen=True)
class Sweep:
    """Pass 2's result: average precision, the F1-optimal threshold and curve points (descending)."""

    positives: float
    negatives: float
    average_precision: float
    best_f1: ConfusionCounts
    thresholds: np.ndarray
    tps: np.ndarray
    fps: np.ndarray

    def roc_table(self) -> pd.DataFrame:
        """Columns threshold, fpr, tpr; the first row (threshold inf) predicts nothing positive."""
        return pd.DataFrame(
            {"threshold": self.thresholds, "fpr": self.fps / self.negatives, "tpr": self.tps / self.positives}
        )

    def pr_table(self) -> pd.DataFrame:
        """Columns threshold, precision, recall; at threshold inf precision is 1 by convention, as in scikit-learn."""
        predicted = self.tps + self.fps
        precision = np.divide(self.tps, predicted, out=np.ones_like(self.tps), where=predicted > 0)
        return pd.DataFrame({"threshold": self.thresholds, "precision": precision, "recall": self.tps / self.positives})


class ScoreOrder:
    """A binary frame's rows range-partitioned by score, with pass 1 already run.

    With ``keep=True`` the partitioned rows are persisted so that :meth:`sweep` sees the very
    same partitions; use it as a context manager to release them.
    """

    def __init__(self, frame: BinaryFrame, *, keep: bool = False):
        rows = frame.df
        if frame.weighted:
            rows = rows.where(F.col(WEIGHT) > 0)  # as scikit-learn: zero weights add no thresholds
        signed = F.when(F.col(LABEL) == 1, F.col(WEIGHT)).otherwise(-F.col(WEIGHT))
        rows = rows.select(SCORE, signed.alias(SIGNED))
        self._ranked = rows.repartitionByRange(partitions_for(frame), SCORE)
        self._kept = keep
        if keep:
            self._ranked = self._ranked.persist()
        summaries = self._ranked.mapInArrow(_summarise, _SUMMARY_SCHEMA).collect()
        self.parts = sorted((_Part(**row.asDict()) for row in summaries), key=lambda part: part.lo)
        self.positives = math.fsum(part.positives for part in self.parts)
        self.negatives = math.fsum(part.negatives for part in self.parts)

    def __enter__(self) -> ScoreOrder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._kept:
            self._ranked.unpersist()

    def roc_auc(self) -> float:
        """Exact ROC-AUC (Mann-Whitney, ties count half) from the partition summaries."""
        numerator, negatives_below = 0.0, 0.0
        for part in self.parts:
            numerator += part.mann_whitney + part.positives * negatives_below
            negatives_below += part.negatives
        return numerator / (self.positives * self.negatives)

    def sweep(self, points: int | None = None) -> Sweep:
        """Pass 2; ``points`` curve points (None: none, only average precision and the best F1)."""
        if not self._kept:
            raise RuntimeError("sweep() needs the partitions of pass 1: build the ScoreOrder with keep=True")
        offsets: dict[float, tuple[float, float, int]] = {}
        pos_above, neg_above, blocks_above = 0.0, 0.0, 0
        for part in reversed(self.parts):
            offsets[part.lo] = (pos_above, neg_above, blocks_above)
            pos_above, neg_above, blocks_above = (
                pos_above + part.positives,
                neg_above + part.negatives,
                blocks_above + part.blocks,
            )
        selected = curve_indices(blocks_above, points) if points is not None else np.empty(0, np.int64)
        task = functools.partial(_sweep_partition, offsets=offsets, positives=self.positives, selected=selected)
        rows = self._ranked.mapInArrow(task, _SWEEP_SCHEMA).collect()
        best = max(rows, key=lambda row: (row.f1, row.f1_threshold))
        thresholds, tps, fps = (
            np.concatenate([np.empty(0), *(row[name] for row in rows)]) for name in ("thresholds", "tps", "fps")
        )
        if points is not None:  # the point that predicts nothing positive, as in scikit-learn
            thresholds, tps, fps = np.r_[np.inf, thresholds], np.r_[0.0, tps], np.r_[0.0, fps]
        order = np.argsort(-thresholds, kind="stable")
        return Sweep(
            positives=self.positives,
            negatives=self.negatives,
            average_precision=math.fsum(row.precision_sum for row in rows) / self.positives,
            best_f1=ConfusionCounts.from_counts(
                best.f1_threshold, best.f1_tp, best.f1_fp, self.positives, self.negatives
            ),
            thresholds=thresholds[order],
            tps=tps[order],
            fps=fps[order],
        )


def _sweep(data: BinaryInput, points: int | None) -> Sweep:
    with ScoreOrder(data.prepare(), keep=True) as order:
        return order.sweep(points)


def _curve_frame(data: BinaryInput, table: pd.DataFrame) -> DataFrame:
    """A curve table (all columns double) as a Spark DataFrame in the input's session."""
    schema = ", ".join(f"{name} double" for name in table.columns)
    return from_pandas(data.df.sparkSession, table, schema)


@binary_metric
def roc_auc(data: BinaryInput) -> float:
    """Exact ROC-AUC: the probability that a positive outscores a negative, ties counting half.

    Optional non-negative sample weights. One aggregate pass for the input checks, then one
    range-partitioned pass; equal to scikit-learn's ``roc_auc_score`` up to float64 rounding,
    where Spark's evaluator bins scores by default.
    """
    return ScoreOrder(data.prepare()).roc_auc()


@binary_metric
def pr_auc(data: BinaryInput) -> float:
    """Average precision as scikit-learn defines it: sum over thresholds of recall gain times precision.

    Not the trapezoidal area under the PR curve, which is optimistic with ties and sparse curves.
    """
    return _sweep(data, None).average_precision


@binary_metric
def best_f1_threshold(data: BinaryInput) -> ConfusionCounts:
    """Confusion counts at the score threshold with the highest F1 (the highest such threshold on ties)."""
    return _sweep(data, None).best_f1


@binary_metric
def roc_curve(data: BinaryInput, *, points: int = 200) -> DataFrame:
    """ROC points (threshold, fpr, tpr) by descending threshold, at most ``points`` rows.

    With ``points`` above the number of distinct scores this is scikit-learn's
    ``roc_curve(drop_intermediate=False)``; otherwise evenly spaced points of it, ends included.
    """
    return _curve_frame(data, _sweep(data, points).roc_table())


@binary_metric
def pr_curve(data: BinaryInput, *, points: int = 200) -> DataFrame:
    """Precision-recall points (threshold, precision, recall) by descending threshold, at most ``points`` rows.

    With ``points`` above the number of distinct scores this is scikit-learn's
    ``precision_recall_curve`` reversed, its final (precision 1, recall 0) point at threshold inf.
    """
    return _curve_frame(data, _sweep(data, points).pr_table())
