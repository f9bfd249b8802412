"""User query vectors: a recency-weighted mean of the item2vec vectors of the user's latest items.

Per split context and user, the ``n_recent`` latest events weigh ``decay ** r`` (r = 0 for the latest);
item vectors are unit-normalised first, so every item counts by its weight, not its vector's length.
Events whose item has no vector (below item2vec's ``min_count``) are skipped; a user none of whose recent
items has a vector gets no query (and so no candidates).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.recsys.split import tie_break
from pipelines.recsys.tables import ITEM, SPLIT, TS, USER, item_key
from pipelines.recsys.vectors import unit, weighted_mean


def recent_items(contexts: DataFrame, n_recent: int) -> DataFrame:
    """``(split, user_id, item_id, ts, recency)``: each user's ``n_recent`` latest events, recency 0 = latest."""
    if n_recent < 1:
        raise ValueError(f"n_recent must be at least 1, got {n_recent}")
    latest_first = Window.partitionBy(SPLIT, USER).orderBy(F.col(TS).desc(), tie_break().desc())
    return (
        contexts.withColumn("recency", F.row_number().over(latest_first) - 1)
        .filter(F.col("recency") < n_recent)
        .select(SPLIT, USER, ITEM, TS, "recency")
    )


def unit_item_vectors(vectors: DataFrame) -> DataFrame:
    """``(item, uvec)`` from item2vec's ``(word, vector)`` table, the vectors unit-normalised."""
    return vectors.select(F.col("word").alias("item"), unit(F.col("vector")).alias("uvec"))


def user_queries(recent: DataFrame, item_vectors: DataFrame, decay: float) -> DataFrame:
    """``(split, user_id, vector)``: the recency-weighted mean of the unit vectors of the recent items."""
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    weighted = recent.join(item_vectors, item_key() == F.col("item")).select(
        SPLIT, USER, F.struct(F.pow(F.lit(decay), F.col("recency")).alias("w"), F.col("uvec").alias("v")).alias("part")
    )
    return (
        weighted.groupBy(SPLIT, USER)
        .agg(F.collect_list("part").alias("parts"))
        .select(SPLIT, USER, weighted_mean(F.col("parts")).cast("array<float>").alias("vector"))
    )
