"""Recall routes: each finds candidates for the users with a target and writes them in one shape,
``(split, user_id, item_id, route, score, route_rank)`` (higher score first, rank 1 = best).

* ``pq``: the item2vec + PQ search of ``recall.py``, score = -distance;
* ``item_cf``: item-item cosine of co-occurrence counts within sessions (``window`` positions, either order),
  each item's ``neighbours`` most similar items, scored as sum over the user's recent items of
  ``decay ** recency * cosine``;
* ``next_item``: how often ``b`` directly follows ``a`` in users' time-ordered contexts, as P(b | a), each item's
  ``neighbours`` likeliest successors, scored the same way from the user's latest items (a Markov chain);
* ``popularity`` / ``recent_popularity``: events of the split context (all, or in its last ``days``);
* ``cold_start``: the popularity list for target users with no event in their context.

Every statistic is computed from each split's own context (all users, not only those with a target), with
Spark aggregates and joins; seen items are dropped before ranking when exclusion is on. The driver holds
one number per split (the largest seen count, to size the popularity pool).
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.recsys.cooccurrence import sequence_pairs
from pipelines.recsys.lists import ranked_lists
from pipelines.recsys.recall import rank_within_user
from pipelines.recsys.tables import ITEM, SESSION, SPLIT, TEST, TS, USER, VALID

ROUTE_COLUMNS = (SPLIT, USER, ITEM, "route", "score", "route_rank")
ROUTES = ("pq", "item_cf", "next_item", "popularity", "recent_popularity", "cold_start")
DAY = 86400.0


def as_route(scored: DataFrame, name: str, k: int) -> DataFrame:
    """Rows ``(split, user_id, item_id, score)`` as route ``name``'s top ``k`` per user (ties by item)."""
    if k < 1:
        raise ValueError(f"route {name}: k must be at least 1, got {k}")
    ranked = rank_within_user(scored, [F.col("score").desc(), F.col(ITEM)], k, "route_rank")
    return ranked.select(SPLIT, USER, ITEM, F.lit(name).alias("route"), F.col("score").cast("double"), "route_rank")


def pq_route(candidates: DataFrame) -> DataFrame:
    """``pq_candidates``' rows in the route shape (its ranking kept)."""
    return candidates.select(
        SPLIT,
        USER,
        ITEM,
        F.lit("pq").alias("route"),
        (-F.col("distance")).alias("score"),
        F.col("recall_rank").alias("route_rank"),
    )


def _drop_seen(rows: DataFrame, seen: DataFrame | None) -> DataFrame:
    return rows if seen is None else rows.join(seen.select(SPLIT, USER, ITEM), [SPLIT, USER, ITEM], "left_anti")


def session_contexts(history: DataFrame, targets: DataFrame) -> DataFrame:
    """Both split contexts with ``session_id`` (the validation target, in the test context, has none)."""
    events = history.select(USER, ITEM, TS, SESSION)
    valid = targets.filter(F.col(SPLIT) == VALID).select(
        USER, ITEM, TS, F.lit(None).cast(events.schema[SESSION].dataType).alias(SESSION)
    )
    return events.withColumn(SPLIT, F.lit(VALID)).unionByName(events.unionByName(valid).withColumn(SPLIT, F.lit(TEST)))


def _top_neighbours(pairs: DataFrame, weight: Column, n: int) -> DataFrame:
    """``(split, a, b, weight)``: each item ``a``'s ``n`` heaviest ``b`` (ties by ``b``)."""
    if n < 1:
        raise ValueError(f"neighbours must be at least 1, got {n}")
    best = Window.partitionBy(SPLIT, "a").orderBy(F.col("weight").desc(), F.col("b"))
    return (
        pairs.withColumn("weight", weight)
        .withColumn("_r", F.row_number().over(best))
        .filter(F.col("_r") <= n)
        .select(SPLIT, "a", "b", "weight")
    )


def cooccurrence_neighbours(sessions: DataFrame, window: int, n: int) -> DataFrame:
    """``(split, a, b, weight)``: cosine ``n_ab / sqrt(n_a n_b)`` of items within ``window`` positions of one
    session (either order; ``n_a`` = the item's events), the ``n`` largest per item."""
    pairs = sequence_pairs(sessions, window, (SPLIT, USER, SESSION))
    both = (
        pairs.unionByName(pairs.select(SPLIT, F.col("b").alias("a"), F.col("a").alias("b"), "n"))
        .groupBy(SPLIT, "a", "b")
        .agg(F.sum("n").alias("n"))
    )
    events = sessions.groupBy(SPLIT, ITEM).agg(F.count(F.lit(1)).alias("_e"))
    joined = both.join(events.select(SPLIT, F.col(ITEM).alias("a"), F.col("_e").alias("_ea")), [SPLIT, "a"]).join(
        events.select(SPLIT, F.col(ITEM).alias("b"), F.col("_e").alias("_eb")), [SPLIT, "b"]
    )
    return _top_neighbours(joined, F.col("n") / F.sqrt(F.col("_ea") * F.col("_eb")), n)


def transition_neighbours(contexts: DataFrame, n: int) -> DataFrame:
    """``(split, a, b, weight)``: P(next item is ``b`` | item ``a``) over users' time-ordered contexts, the
    ``n`` likeliest successors per item."""
    pairs = sequence_pairs(contexts, 1)
    out_of_a = F.sum("n").over(Window.partitionBy(SPLIT, "a"))
    return _top_neighbours(pairs, F.col("n") / out_of_a, n)


def neighbour_route(
    recent: DataFrame, neighbours: DataFrame, decay: float, seen: DataFrame | None, k: int, name: str
) -> DataFrame:
    """Route ``name`` from ``recent`` ``(split, user_id, item_id, recency)``: the sum over the recent items ``a``
    of ``decay ** recency * weight(a, b)`` for every neighbour ``b``."""
    if not 0 < decay <= 1:
        raise ValueError(f"route {name}: decay must be in (0, 1], got {decay}")
    scored = (
        recent.select(SPLIT, USER, F.col(ITEM).alias("a"), "recency")
        .join(neighbours, [SPLIT, "a"])
        .groupBy(SPLIT, USER, F.col("b").alias(ITEM))
        .agg(F.sum(F.pow(F.lit(decay), F.col("recency")) * F.col("weight")).alias("score"))
    )
    return as_route(_drop_seen(scored, seen), name, k)


def popularity_route(
    contexts: DataFrame, users: DataFrame, seen: DataFrame | None, k: int, name: str, days: float | None = None
) -> DataFrame:
    """Route ``name``: items by events in each split context (only its last ``days`` when given), the same list
    for every user of ``users`` ``(split, user_id)`` minus what they have seen.

    A user is offered the top ``k + n_seen`` items (a broadcast pool of at most k + the largest n_seen rows
    per split), so ``k`` remain after the seen ones are dropped.
    """
    events = contexts
    if days is not None:
        end = contexts.groupBy(SPLIT).agg(F.max(TS).alias("_end"))
        events = contexts.join(end, SPLIT).filter(F.col(TS) > F.col("_end") - days * DAY)
    counts = events.groupBy(SPLIT, ITEM).agg(F.count(F.lit(1)).cast("double").alias("score"))
    reach = users.select(SPLIT, USER).withColumn("n_seen", F.lit(0))
    if seen is not None:
        n_seen = seen.groupBy(SPLIT, USER).agg(F.count(F.lit(1)).alias("n_seen"))
        reach = users.select(SPLIT, USER).join(n_seen, [SPLIT, USER], "left").fillna(0, ["n_seen"])
    widest = reach.agg(F.max("n_seen")).first()[0] or 0
    by_count = Window.partitionBy(SPLIT).orderBy(F.col("score").desc(), F.col(ITEM))
    pool = counts.withColumn("_pos", F.row_number().over(by_count)).filter(F.col("_pos") <= k + widest)
    offered = reach.join(
        F.broadcast(pool.withColumnRenamed(SPLIT, "_s")),
        (F.col(SPLIT) == F.col("_s")) & (F.col("_pos") <= F.col("n_seen") + k),
    ).select(SPLIT, USER, ITEM, "score")
    return as_route(_drop_seen(offered, seen), name, k)


def cold_users(users: DataFrame, contexts: DataFrame) -> DataFrame:
    """``(split, user_id)`` of ``users`` with no event in their split context."""
    return users.select(SPLIT, USER).join(contexts.select(SPLIT, USER).distinct(), [SPLIT, USER], "left_anti")


def route_lists(routes: DataFrame, n: int, split: str = TEST) -> DataFrame:
    """``(method, user_id, items)``: each route's ``split`` candidates as a ranked list, ``method`` = the route
    (``next_item`` alone is the sequential Markov baseline)."""
    rows = routes.filter(F.col(SPLIT) == split)
    lists = [ranked_lists(rows.filter(F.col("route") == name), [F.col("route_rank")], n, name) for name in ROUTES]
    return reduce(DataFrame.unionByName, lists)
