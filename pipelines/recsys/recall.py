"""Recall: the top-K items of each user query by PQ asymmetric distance, minus the items the user has seen.

The search is ``pipelines.pq.search.search`` (ADC over the item codes, a distributed join: no query reaches
the driver). To exclude seen items and still return K per user, users are searched in blocks of about
``block_users`` queries (hash of the query key) and a block asks for K + (the most items any of its users
has seen) neighbours, capped at the number of items, so one heavy user only widens its own block's search;
the seen ones are then dropped with an anti-join and the rest ranked again.
"""

from __future__ import annotations

import math
from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.pq.encoder import PQEncoderModel
from pipelines.pq.search import search
from pipelines.recsys.tables import ITEM, SPLIT, USER

CANDIDATE_COLUMNS = (SPLIT, USER, ITEM, "distance", "recall_rank")


def rank_within_user(df: DataFrame, order: list, k: int, name: str = "recall_rank") -> DataFrame:
    """Number each (split, user)'s rows 1.. by ``order`` and keep the first ``k``."""
    window = Window.partitionBy(SPLIT, USER).orderBy(*order)
    return df.withColumn(name, F.row_number().over(window)).filter(F.col(name) <= k)


def pq_candidates(
    model: PQEncoderModel,
    codes: DataFrame,
    queries: DataFrame,
    seen: DataFrame | None,
    k: int,
    item_type: T.DataType,
    block_users: int = 50_000,
    partitions: int = 0,
) -> DataFrame:
    """``(split, user_id, item_id, distance, recall_rank)``: each query's ``k`` nearest unseen items.

    ``codes`` is build_pq's ``(item_id, code)`` table keyed by the item2vec word; ``queries`` has
    ``(split, user_id, vector)``; ``seen`` has ``(split, user_id, item_id)`` or is None (no exclusion).
    Both are read several times (counts, then one search per block): pass materialised tables.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    spark = queries.sparkSession
    keyed = queries.withColumn("query_id", F.concat_ws(":", F.col(SPLIT), F.col(USER).cast("string")))
    if seen is not None:
        counts = seen.groupBy(SPLIT, USER).agg(F.countDistinct(ITEM).alias("n_seen"))
        keyed = keyed.join(counts, [SPLIT, USER], "left").fillna(0, ["n_seen"])
    else:
        keyed = keyed.withColumn("n_seen", F.lit(0))
    n_queries = keyed.count()
    n_blocks = max(1, math.ceil(n_queries / block_users))
    keyed = keyed.withColumn("block", F.pmod(F.xxhash64("query_id"), F.lit(n_blocks)))
    n_items = codes.count()
    widest = {r["block"]: r["most"] for r in keyed.groupBy("block").agg(F.max("n_seen").alias("most")).collect()}
    found = []
    for block, most_seen in sorted(widest.items()):
        batch = keyed.filter(F.col("block") == block).select("query_id", "vector")
        found.append(search(model, codes, batch, min(n_items, k + most_seen), partitions=partitions))
    if not found:
        return spark.createDataFrame(
            [],
            f"{SPLIT} STRING, {USER} {queries.schema[USER].dataType.simpleString()}, "
            f"{ITEM} {item_type.simpleString()}, distance DOUBLE, recall_rank INT",
        )
    hits = (
        reduce(DataFrame.unionByName, found)
        .join(keyed.select("query_id", SPLIT, USER), "query_id")
        .select(SPLIT, USER, F.col("item_id").cast(item_type).alias(ITEM), "distance")
    )
    if seen is not None:
        hits = hits.join(seen.select(SPLIT, USER, ITEM).distinct(), [SPLIT, USER, ITEM], "left_anti")
    return rank_within_user(hits, ["distance", ITEM], k).select(*CANDIDATE_COLUMNS)
