"""Leave-last-out per user, by time: last interaction = test target, the one before = validation target.

The validation target is what the ranker learns to find (and what ALS is tuned on); the test target is
what every method is scored on. History is everything before both, and is the only thing item2vec, PQ
and the validation-time features see. At test time the context is history plus the validation target.
Ties in time are broken by a hash of (user, item), so the order does not depend on file order.
Users with fewer than ``min_history + 2`` interactions get no targets; their interactions stay in history.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.recsys.tables import ITEM, SESSION, SPLIT, TEST, TS, USER, VALID


def tie_break() -> Column:
    """The deterministic order among a user's events at the same second."""
    return F.xxhash64(USER, ITEM)


@dataclass
class Split:
    history: DataFrame  # user_id, item_id, ts, session_id
    targets: DataFrame  # user_id, item_id, ts, split (valid | test)


def leave_last_out(events: DataFrame, min_history: int = 1) -> Split:
    """Split ``(user_id, item_id, ts, session_id)`` events into history and the two targets per user."""
    if min_history < 1:
        raise ValueError(f"min_history must be at least 1, got {min_history}")
    latest_first = Window.partitionBy(USER).orderBy(F.col(TS).desc(), tie_break().desc())
    ranked = events.withColumn("_pos", F.row_number().over(latest_first)).withColumn(
        "_n", F.count(F.lit(1)).over(Window.partitionBy(USER))
    )
    held_out = (F.col("_n") >= min_history + 2) & (F.col("_pos") <= 2)
    labelled = ranked.withColumn(
        SPLIT, F.when(held_out, F.when(F.col("_pos") == 1, F.lit(TEST)).otherwise(F.lit(VALID)))
    )
    history = labelled.filter(F.col(SPLIT).isNull()).select(USER, ITEM, TS, SESSION)
    targets = labelled.filter(F.col(SPLIT).isNotNull()).select(USER, ITEM, TS, SPLIT)
    return Split(history, targets)


def context(history: DataFrame, targets: DataFrame, split: str) -> DataFrame:
    """What is known when predicting ``split``'s target: history, plus the validation target for ``test``."""
    if split == VALID:
        return history.select(USER, ITEM, TS)
    if split == TEST:
        return history.select(USER, ITEM, TS).unionByName(targets.filter(F.col(SPLIT) == VALID).select(USER, ITEM, TS))
    raise ValueError(f"split must be '{VALID}' or '{TEST}', got {split!r}")


def with_splits(history: DataFrame, targets: DataFrame) -> DataFrame:
    """Both contexts in one frame, tagged with the ``split`` they serve (rows of history appear twice)."""
    return (
        context(history, targets, VALID)
        .withColumn(SPLIT, F.lit(VALID))
        .unionByName(context(history, targets, TEST).withColumn(SPLIT, F.lit(TEST)))
    )
