"""Ranker features of every candidate row, computed from the split's own context only (no leakage).

For the validation split the context is history; for the test split history plus the validation targets.
Label: the candidate is the split's target item. Columns (all numeric except ``i_category``):

* user: ``u_events``, ``u_items`` (distinct), ``u_active_days`` (first to last event), ``u_recency_days``
  (last event to the end of the context);
* item: ``i_pop`` (events), ``i_pop_recent`` (events in the context's last ``recent_days``), ``i_near_share``
  (log share of the item among all events in the ``near_days`` before the user's last event, from time
  buckets: time-local popularity), ``i_age_days`` (user's last event minus the item's first event; negative
  when the item appears after the user left), ``i_category`` (first category);
* recall: the merge's route features (``ROUTE_FEATURES``: per route a 0/1 flag, its rank and score;
  ``n_routes``), passed through from the candidates;
* user-item: ``distance`` (PQ) and ``recall_rank`` (merged list), ``cos_user`` (exact cosine to the user's query
  vector), ``cos_last`` and ``cos_max`` (to the latest and to the closest of the recent items), ``cooc``
  (recency-weighted co-occurrences with the recent items within ``cooc_window`` positions, either order),
  ``cooc_lift`` (the same divided by the candidate's events), ``follows_last`` (times the candidate came
  right after the user's latest item, in anyone's sequence), ``cat_share`` (share of the user's events in
  the candidate's categories, the largest over its categories), ``ui_count`` (the user's own events on it).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.cooccurrence import sequence_pairs
from pipelines.recsys.merge import ROUTE_FEATURES
from pipelines.recsys.tables import ITEM, SPLIT, TS, USER, item_key
from pipelines.recsys.vectors import dot, unit

DAY = 86400.0
LABEL = "label"
CATEGORICAL = ["i_category"]
NUMERIC = [
    "distance",
    "recall_rank",
    "cos_user",
    "cos_last",
    "cos_max",
    "cooc",
    "cooc_lift",
    "follows_last",
    "cat_share",
    "ui_count",
    "u_events",
    "u_items",
    "u_active_days",
    "u_recency_days",
    "i_pop",
    "i_pop_recent",
    "i_near_share",
    "i_age_days",
    *ROUTE_FEATURES,
]
NO_CATEGORY = "__none__"


@dataclass(frozen=True)
class FeatureSettings:
    n_recent: int = 10  # recent items behind cos_max and cooc
    decay: float = 0.8  # weight decay ** recency of a recent item in cooc
    cooc_window: int = 5  # positions within which two items co-occur
    recent_days: float = 30.0  # i_pop_recent: the context's last days
    near_days: float = 30.0  # i_near_share: the days before the user's last event


def user_features(contexts: DataFrame) -> DataFrame:
    """``(split, user_id, u_*, last_ts)`` per user of each split context."""
    end = contexts.groupBy(SPLIT).agg(F.max(TS).alias("_end"))
    return (
        contexts.groupBy(SPLIT, USER)
        .agg(
            F.count(F.lit(1)).alias("u_events"),
            F.countDistinct(ITEM).alias("u_items"),
            F.min(TS).alias("_first"),
            F.max(TS).alias("last_ts"),
        )
        .join(end, SPLIT)
        .select(
            SPLIT,
            USER,
            F.col("u_events").cast("double"),
            F.col("u_items").cast("double"),
            ((F.col("last_ts") - F.col("_first")) / DAY).alias("u_active_days"),
            ((F.col("_end") - F.col("last_ts")) / DAY).alias("u_recency_days"),
            "last_ts",
        )
    )


def item_features(contexts: DataFrame, recent_days: float) -> DataFrame:
    """``(split, item_id, i_pop, i_pop_recent, first_ts)`` per item of each split context."""
    end = contexts.groupBy(SPLIT).agg(F.max(TS).alias("_end"))
    recent = (F.col(TS) > F.col("_end") - recent_days * DAY).cast("double")
    return (
        contexts.join(end, SPLIT)
        .groupBy(SPLIT, ITEM)
        .agg(
            F.count(F.lit(1)).cast("double").alias("i_pop"),
            F.sum(recent).alias("i_pop_recent"),
            F.min(TS).alias("first_ts"),
        )
    )


def near_share(contexts: DataFrame, rows: DataFrame, near_days: float) -> Column:
    """Adds ``i_near_share`` to ``rows`` (with ``last_ts``): log share of the item in the user's last days.

    Time is cut into buckets of ``near_days``; the window is the bucket of the user's last event and the one
    before it, so this is one equi-join on (item, bucket) instead of a range join per user.
    """
    width = near_days * DAY
    bucket = F.floor(F.col(TS) / width)
    per_item = contexts.groupBy(SPLIT, ITEM, bucket.alias("_b")).agg(F.count(F.lit(1)).alias("_n"))
    per_bucket = contexts.groupBy(SPLIT, bucket.alias("_b")).agg(F.count(F.lit(1)).alias("_t"))
    keyed = rows.withColumn("_ub", F.floor(F.col("last_ts") / width))
    for lag in (0, 1):
        keyed = (
            keyed.withColumn("_b", F.col("_ub") - lag)
            .join(per_item.withColumnRenamed("_n", f"_n{lag}"), [SPLIT, ITEM, "_b"], "left")
            .join(per_bucket.withColumnRenamed("_t", f"_t{lag}"), [SPLIT, "_b"], "left")
            .drop("_b")
        )
    near = F.coalesce(F.col("_n0"), F.lit(0)) + F.coalesce(F.col("_n1"), F.lit(0))
    total = F.coalesce(F.col("_t0"), F.lit(0)) + F.coalesce(F.col("_t1"), F.lit(0))
    return keyed.withColumn("i_near_share", F.log((near + 0.5) / (total + 1.0))).drop("_ub", "_n0", "_n1", "_t0", "_t1")


def category_features(contexts: DataFrame, items: DataFrame, rows: DataFrame) -> DataFrame:
    """Adds ``i_category`` and ``cat_share`` to ``rows``; ``items`` has ``(item_id, categories)`` (an array)."""
    per_user = (
        contexts.join(items, ITEM)
        .select(SPLIT, USER, F.explode("categories").alias("_c"))
        .groupBy(SPLIT, USER, "_c")
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    candidate_cats = (
        rows.select(SPLIT, USER, ITEM).join(items, ITEM).select(SPLIT, USER, ITEM, F.explode("categories").alias("_c"))
    )
    share = (
        candidate_cats.join(per_user, [SPLIT, USER, "_c"], "left")
        .groupBy(SPLIT, USER, ITEM)
        .agg(F.max(F.coalesce(F.col("_n"), F.lit(0))).alias("_best"))
    )
    first = items.select(ITEM, F.coalesce(F.col("categories")[0], F.lit(NO_CATEGORY)).alias("i_category"))
    return (
        rows.join(share, [SPLIT, USER, ITEM], "left")
        .join(first, ITEM, "left")
        .withColumn("cat_share", F.coalesce(F.col("_best"), F.lit(0)) / F.col("u_events"))
        .fillna(NO_CATEGORY, ["i_category"])
        .drop("_best")
    )


def recent_item_features(
    candidates: DataFrame, recent: DataFrame, pairs: DataFrame, vectors: DataFrame, item_pop: DataFrame, decay: float
) -> DataFrame:
    """``(split, user_id, item_id, cos_last, cos_max, cooc, cooc_lift, follows_last)`` per candidate.

    One row per (candidate, recent item) joined with the pair counts both ways and both unit vectors.
    """
    both_ways = pairs.select(SPLIT, "a", "b", F.col("n").alias("_fwd")).join(
        pairs.select(SPLIT, F.col("b").alias("a"), F.col("a").alias("b"), F.col("n").alias("_bwd")),
        [SPLIT, "a", "b"],
        "full",
    )
    cand_vec = vectors.select(F.col("item").alias("_ck"), F.col("uvec").alias("_cv"))
    recent_vec = vectors.select(F.col("item").alias("_rk"), F.col("uvec").alias("_rv"))
    joined = (
        candidates.select(SPLIT, USER, ITEM)
        .join(recent.select(SPLIT, USER, F.col(ITEM).alias("a"), "recency"), [SPLIT, USER])
        .withColumn("b", F.col(ITEM))
        .join(both_ways, [SPLIT, "a", "b"], "left")
        .join(cand_vec, item_key(ITEM) == F.col("_ck"), "left")
        .join(recent_vec, item_key("a") == F.col("_rk"), "left")
    )
    cos = dot(F.col("_cv"), F.col("_rv"))
    together = F.coalesce(F.col("_fwd"), F.lit(0)) + F.coalesce(F.col("_bwd"), F.lit(0))
    weight = F.pow(F.lit(decay), F.col("recency"))
    latest = F.col("recency") == 0
    agg = joined.groupBy(SPLIT, USER, ITEM).agg(
        F.max(F.when(latest, cos)).alias("cos_last"),
        F.max(cos).alias("cos_max"),
        F.sum(weight * together).alias("cooc"),
        F.max(F.when(latest, F.coalesce(F.col("_fwd"), F.lit(0)))).cast("double").alias("follows_last"),
    )
    return (
        agg.join(item_pop.select(SPLIT, ITEM, "i_pop"), [SPLIT, ITEM], "left")
        .withColumn("cooc_lift", F.col("cooc") / F.greatest(F.coalesce(F.col("i_pop"), F.lit(0.0)), F.lit(1.0)))
        .drop("i_pop")
    )


def candidate_features(
    candidates: DataFrame,
    contexts: DataFrame,
    targets: DataFrame,
    queries: DataFrame,
    vectors: DataFrame,
    items: DataFrame,
    recent: DataFrame,
    settings: FeatureSettings,
) -> DataFrame:
    """Every candidate row with its label and the features listed in the module docstring.

    ``contexts``: both split contexts tagged with ``split``; ``vectors``: ``(item, uvec)`` unit item vectors;
    ``items``: ``(item_id, categories)``; ``recent``: each user's ``n_recent`` latest events (``recency``).
    """
    item_stats = item_features(contexts, settings.recent_days)
    rows = (
        candidates.join(user_features(contexts), [SPLIT, USER], "left")  # cold-start users stay
        .join(item_stats, [SPLIT, ITEM], "left")
        .fillna(0.0, ["i_pop", "i_pop_recent"])
        .withColumn("i_age_days", (F.col("last_ts") - F.col("first_ts")) / DAY)
        .drop("first_ts")
    )
    rows = near_share(contexts, rows, settings.near_days)
    rows = category_features(contexts, items, rows)
    pairs = sequence_pairs(contexts, settings.cooc_window)
    rows = rows.join(
        recent_item_features(candidates, recent, pairs, vectors, item_stats, settings.decay),
        [SPLIT, USER, ITEM],
        "left",
    )
    own = contexts.groupBy(SPLIT, USER, ITEM).agg(F.count(F.lit(1)).cast("double").alias("ui_count"))
    query = queries.select(SPLIT, USER, unit(F.col("vector")).alias("_q"))
    rows = (
        rows.join(own, [SPLIT, USER, ITEM], "left")
        .fillna(0.0, ["ui_count"])
        .join(query, [SPLIT, USER], "left")
        .join(
            vectors.select(F.col("item").alias("_ck"), F.col("uvec").alias("_cv")),
            item_key(ITEM) == F.col("_ck"),
            "left",
        )
        .withColumn("cos_user", dot(F.col("_q"), F.col("_cv")))
    )
    target = targets.select(SPLIT, USER, F.col(ITEM).alias("_target"))
    labelled = rows.join(target, [SPLIT, USER], "left").withColumn(LABEL, (F.col(ITEM) == F.col("_target")).cast("int"))
    return labelled.select(SPLIT, USER, ITEM, LABEL, *[F.col(c).cast("double") for c in NUMERIC], *CATEGORICAL)
