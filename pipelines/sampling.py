"""Seeded draws that follow each row's values, not its place in the table.

Spark's ``rand(seed)``, ``sample`` and ``randomSplit`` draw by partition and position, so a table whose rows
arrive in another order (written by tasks in the order shuffle blocks came in, or recomputed after a lost
executor) gets other draws from the same seed, and a model trained on it other numbers. Hashing each row's
values with the seed and a purpose gives a row the same draw wherever it sits; rows with equal values draw
alike, and draws for different purposes are independent.
"""

from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_SCALE = float(2**53)


def row_uniform(df: DataFrame, seed: int, purpose: str, columns: Sequence[str] | None = None) -> Column:
    """A number in [0, 1) per row: the xxhash64 of ``purpose``, ``seed`` and the row's ``columns`` (all by default)."""
    hashed = F.xxhash64(F.lit(purpose), F.lit(int(seed)), *[F.col(c) for c in (columns or df.columns)])
    return F.pmod(hashed, F.lit(2**53)).cast("double") / _SCALE


def hash_split(df: DataFrame, weights: Sequence[float], seed: int, purpose: str) -> list[DataFrame]:
    """``randomSplit`` by ``row_uniform``: parts in proportion to ``weights`` (normalised), the same rows in each
    part whatever the table's order or partitioning."""
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"split weights must be non-negative with a positive sum, got {list(weights)}")
    draw = row_uniform(df, seed, purpose)
    bounds = [0.0]
    for weight in weights:
        bounds.append(bounds[-1] + weight / total)
    bounds[-1] = 1.0
    return [df.filter((draw >= lo) & (draw < hi)) for lo, hi in zip(bounds, bounds[1:])]


def hash_sample(df: DataFrame, fraction: float, seed: int, purpose: str) -> DataFrame:
    """Each row kept with probability ``fraction``, drawn by ``row_uniform``."""
    return df.filter(row_uniform(df, seed, purpose) < fraction)


def stratified_split(
    df: DataFrame, label_col: str, fraction: float, seed: int, purpose: str
) -> tuple[DataFrame, DataFrame]:
    """``(rest, part)``: ``part`` holds ``round(fraction * n)`` of each class's ``n`` rows (as scikit-learn's
    stratified split does, small classes keep their share), the rows with the smallest ``row_uniform`` draws.

    One window per class numbers its rows, so a class's rows meet in one task; both parts recompute the draws,
    so pass a persisted ``df``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    by_class = Window.partitionBy(label_col)
    ranked = df.select(
        "*",
        F.row_number().over(by_class.orderBy(row_uniform(df, seed, purpose))).alias("_rank"),
        F.count(F.lit(1)).over(by_class).alias("_size"),
    )
    chosen = F.col("_rank") <= F.round(F.col("_size") * fraction)
    return ranked.filter(~chosen).select(*df.columns), ranked.filter(chosen).select(*df.columns)
