"""Evaluation of ranked lists against the held-out target, and of the ranker's scores.

Every user with a test target counts; a user without a list (e.g. no item vector for any recent item)
scores 0. With one target per user, recall@k is the hit rate and NDCG@k is ``1 / log2(1 + position)``
of the target when it is in the top k (``pipelines.metrics.ranking_metrics``' definitions for one relevant
item). Everything comes from the target's position in each list: one aggregate gives every method's
figures at every k, one more the recall@k curve. AUC and GAUC (group = user) come from
``pipelines.metrics`` on the scored test candidates. Diversity (category coverage and intra-list diversity of
each top k) comes from the lists and the items' categories, in Spark aggregates too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.metrics import grouped_auc, roc_auc
from pipelines.recsys.tables import ITEM, USER


def target_positions(lists: DataFrame, targets: DataFrame) -> DataFrame:
    """``(method, user_id, position)``: the target's 1-based position in each user's list, 0 if absent.

    ``lists`` has ``(method, user_id, items)``; every (method, target user) pair gets a row.
    """
    methods = lists.select("method").distinct()
    wanted = targets.select(USER, F.col(ITEM).alias("_target")).crossJoin(methods)
    joined = wanted.join(lists, ["method", USER], "left")
    position = F.coalesce(F.array_position(F.col("items"), F.col("_target")), F.lit(0))
    return joined.select(
        "method", USER, position.cast("int").alias("position"), F.col("items").isNotNull().cast("int").alias("listed")
    )


def position_metrics(positions: DataFrame, ks: list[int]) -> dict[str, dict[str, float]]:
    """``{method: {recall@k, ndcg@k, users, users_without_list}}`` for every ``k``, in one aggregate."""
    pos = F.col("position")
    aggs = [F.count(F.lit(1)).alias("users"), F.sum(F.col("listed")).alias("listed")]
    for k in ks:
        hit = (pos >= 1) & (pos <= k)
        aggs += [
            F.avg(hit.cast("double")).alias(f"recall@{k}"),
            F.avg(F.when(hit, 1.0 / F.log2(pos + 1)).otherwise(0.0)).alias(f"ndcg@{k}"),
        ]
    rows = positions.groupBy("method").agg(*aggs).collect()
    return {
        r["method"]: {
            **{f"{m}@{k}": r[f"{m}@{k}"] for k in ks for m in ("recall", "ndcg")},
            "users": r["users"],
            "users_without_list": r["users"] - r["listed"],
        }
        for r in rows
    }


def recall_curves(positions: DataFrame, max_k: int) -> dict[str, list[float]]:
    """``{method: [recall@1, ..., recall@max_k]}`` from the positions (at most methods x max_k rows collected)."""
    users = {r["method"]: r["n"] for r in positions.groupBy("method").agg(F.count(F.lit(1)).alias("n")).collect()}
    hits = (
        positions.filter((F.col("position") >= 1) & (F.col("position") <= max_k))
        .groupBy("method", "position")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    curves = {}
    for method, n_users in users.items():
        at = np.zeros(max_k + 1)
        for row in hits:
            if row["method"] == method:
                at[row["position"]] += row["n"]
        curves[method] = (np.cumsum(at)[1:] / n_users).tolist()
    return curves


def ranker_quality(scored: DataFrame, score_col: str, label_col: str) -> dict[str, Any]:
    """ROC-AUC and GAUC (group = user) of the ranker's scores on the test candidates."""
    rows = scored.select(USER, score_col, label_col)
    gauc = grouped_auc(rows, USER, score_col, label_col)
    return {
        "auc": roc_auc(rows, score_col, label_col),
        "gauc": gauc.gauc,
        "gauc_users": gauc.groups,
        "gauc_users_skipped": gauc.groups_skipped,
        "rows": rows.count(),
        "positives": rows.agg(F.sum(label_col)).first()[0],
    }


def diversity_metrics(lists: DataFrame, items: DataFrame, k: int) -> dict[str, dict[str, float]]:
    """``{method: {coverage@k, ild@k, diversity_users}}`` of each method's top ``k``, in Spark aggregates.

    ``items``: ``(item_id, categories)``. coverage@k: distinct categories among a list's first ``k`` items
    divided by the number of categories in ``items`` (not by ``k``: an item may have several categories), so
    1 means the list spans the catalogue. ild@k (intra-list diversity): the mean over pairs of those items of
    1 - Jaccard(category sets) (an item without categories is dissimilar to every other). Both are averaged
    over users with a list (ild@k over lists of at least two items); an item missing from ``items`` has none.
    """
    n_categories = items.select(F.explode("categories").alias("c")).distinct().count()
    cats = items.select(ITEM, "categories")
    top = (
        lists.select("method", USER, F.posexplode(F.slice("items", 1, k)).alias("pos", ITEM))
        .join(cats, ITEM, "left")
        .select(
            "method",
            USER,
            "pos",
            F.coalesce("categories", F.array().cast(cats.schema["categories"].dataType)).alias("cats"),
        )
    )
    coverage = top.groupBy("method", USER).agg(
        (F.size(F.array_distinct(F.flatten(F.collect_list("cats")))) / F.lit(max(n_categories, 1))).alias("coverage")
    )
    a = top.select("method", USER, F.col("pos").alias("pa"), F.col("cats").alias("ca"))
    b = top.select("method", USER, F.col("pos").alias("pb"), F.col("cats").alias("cb"))
    union = F.size(F.array_union("ca", "cb"))
    similarity = F.when(union > 0, F.size(F.array_intersect("ca", "cb")) / union).otherwise(0.0)
    ild = (
        a.join(b, ["method", USER])
        .filter(F.col("pa") < F.col("pb"))
        .groupBy("method", USER)
        .agg(F.avg(1.0 - similarity).alias("ild"))
    )
    rows = (
        coverage.join(ild, ["method", USER], "left")
        .groupBy("method")
        .agg(F.avg("coverage").alias("coverage"), F.avg("ild").alias("ild"), F.count(F.lit(1)).alias("users"))
        .collect()
    )
    return {
        r["method"]: {f"coverage@{k}": r["coverage"], f"ild@{k}": r["ild"], "diversity_users": r["users"]} for r in rows
    }
