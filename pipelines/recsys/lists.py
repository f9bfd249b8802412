"""Ranked lists: one row per user with ``items`` (best first), from scored rows or a ranked table."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.tables import ITEM, USER


def ranked_lists(rows: DataFrame, order: list[Column], n: int, method: str) -> DataFrame:
    """``(method, user_id, items)``: each user's first ``n`` items of ``rows`` by ``order`` (ties by item).

    ``order`` columns sort ascending (negate a score to put the highest first).
    """
    if n < 1:
        raise ValueError(f"list size must be at least 1, got {n}")
    keyed = F.struct(*[c.alias(f"_k{i}") for i, c in enumerate(order)], F.col(ITEM).alias("_item"))
    return (
        rows.groupBy(USER)
        .agg(F.sort_array(F.collect_list(keyed)).alias("_l"))
        .select(
            F.lit(method).alias("method"), USER, F.slice(F.transform("_l", lambda e: e["_item"]), 1, n).alias("items")
        )
    )
