"""Reference recommenders on the same split and exclusion rule: popularity and Spark's implicit ALS.

Popularity ranks items by events in the context; ALS (``implicitPrefs``, confidence = events per
user-item) is tuned on the validation target over a small grid (NDCG@k), refitted on the test context
and asked for ``n`` + the user's seen count items, so that ``n`` remain after the seen ones are dropped.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.evaluation import position_metrics, target_positions
from pipelines.recsys.lists import ranked_lists
from pipelines.recsys.routes import popularity_route
from pipelines.recsys.tables import ITEM, SPLIT, TEST, USER, RecsysError

INT_MAX = 2**31 - 1


def seen_counts(users: DataFrame, seen: DataFrame | None) -> DataFrame:
    """``(user_id, n_seen)`` for every user of ``users`` (0 without exclusion)."""
    if seen is None:
        return users.select(USER).withColumn("n_seen", F.lit(0))
    counts = seen.groupBy(USER).agg(F.countDistinct(ITEM).alias("n_seen"))
    return users.select(USER).join(counts, USER, "left").fillna(0, ["n_seen"])


def popularity_lists(context: DataFrame, users: DataFrame, seen: DataFrame | None, n: int) -> DataFrame:
    """``(method, user_id, items)``: the ``n`` most frequent items of ``context`` each user has not seen.

    The recall route of the same name (``routes.popularity_route``) on one split: each user is offered the top
    ``n + n_seen`` items, so the work is linear in users and seen events.
    """

    def one_split(df: DataFrame) -> DataFrame:
        return df.withColumn(SPLIT, F.lit(TEST))

    route = popularity_route(
        one_split(context.select(USER, ITEM)),
        one_split(users.select(USER)),
        None if seen is None else one_split(seen.select(USER, ITEM).distinct()),
        n,
        "popularity",
    )
    return ranked_lists(route, [F.col("route_rank")], n, "popularity")


def check_int_ids(df: DataFrame, columns: list[str], where: str) -> None:
    """ALS needs ids in the int range; one error naming the column otherwise."""
    row = df.agg(*[F.min(c).alias(f"lo_{c}") for c in columns], *[F.max(c).alias(f"hi_{c}") for c in columns]).first()
    for c in columns:
        lo, hi = row[f"lo_{c}"], row[f"hi_{c}"]
        if lo is not None and (lo < 0 or hi > INT_MAX):
            raise RecsysError(
                f"{where}: column '{c}' holds ids outside 0..{INT_MAX} ({lo}..{hi}); Spark's ALS needs int ids"
            )


@dataclass(frozen=True)
class ALSParams:
    rank: int
    reg_param: float
    alpha: float


def fit_als(context: DataFrame, params: ALSParams, max_iter: int, seed: int, blocks: int = 10) -> Any:
    """Implicit ALS on ``context`` events (confidence = events per user-item); ``blocks`` user and item blocks."""
    ratings = context.groupBy(USER, ITEM).agg(F.count(F.lit(1)).cast("float").alias("events"))
    als = ALS(
        rank=params.rank,
        regParam=params.reg_param,
        alpha=params.alpha,
        maxIter=max_iter,
        implicitPrefs=True,
        userCol=USER,
        itemCol=ITEM,
        ratingCol="events",
        seed=seed,
        coldStartStrategy="drop",
        numUserBlocks=blocks,
        numItemBlocks=blocks,
    )
    return als.fit(ratings.select(F.col(USER).cast("int").alias(USER), F.col(ITEM).cast("int").alias(ITEM), "events"))


def als_lists(model: Any, users: DataFrame, seen: DataFrame | None, n: int, item_type: Any) -> DataFrame:
    """``(method, user_id, items)``: ALS's top ``n`` unseen items for each user of ``users``.

    ALS recommends ``n`` + the largest seen count; each user's seen items are then dropped from the
    recommendation array in place (array filter against the user's seen set, no explode).
    """
    reach = seen_counts(users, seen)
    widest = reach.agg(F.max("n_seen")).first()[0] or 0
    subset = users.select(F.col(USER).cast("int").alias(USER)).distinct()
    recs = model.recommendForUserSubset(subset, n + widest).select(
        F.col(USER).cast(users.schema[USER].dataType).alias(USER),
        F.transform("recommendations", lambda r: r[ITEM].cast(item_type)).alias("_recs"),
    )
    if seen is not None:
        seen_sets = seen.groupBy(USER).agg(F.collect_set(ITEM).alias("_seen"))
        recs = recs.join(seen_sets, USER, "left").select(
            USER,
            F.filter("_recs", lambda item: F.coalesce(~F.array_contains(F.col("_seen"), item), F.lit(True))).alias(
                "_recs"
            ),
        )
    return recs.select(F.lit("als").alias("method"), USER, F.slice("_recs", 1, n).alias("items"))


def tune_als(
    context: DataFrame,
    users: DataFrame,
    targets: DataFrame,
    seen: DataFrame | None,
    n: int,
    k: int,
    grid: Mapping[str, Any],
    max_iter: int,
    seed: int,
    item_type: Any,
    log: Callable[[str], None] = print,
) -> tuple[ALSParams, list[dict[str, Any]]]:
    """Fit every grid point on ``context``; the best NDCG@``k`` on ``targets`` wins (ties: first)."""
    results = []
    for rank, reg, alpha in itertools.product(grid["ranks"], grid["reg_params"], grid["alphas"]):
        params = ALSParams(int(rank), float(reg), float(alpha))
        started = time.time()
        model = fit_als(context, params, max_iter, seed, grid.get("blocks", 10))
        lists = als_lists(model, users, seen, n, item_type)
        quality = position_metrics(target_positions(lists, targets), [k])["als"]
        results.append(
            {
                "rank": params.rank,
                "reg_param": params.reg_param,
                "alpha": params.alpha,
                f"ndcg@{k}": quality[f"ndcg@{k}"],
                f"recall@{k}": quality[f"recall@{k}"],
                "seconds": round(time.time() - started, 2),
            }
        )
        log(f"  ALS rank={rank} reg={reg} alpha={alpha}: validation NDCG@{k} {quality[f'ndcg@{k}']:.4f}")
    best = max(results, key=lambda r: r[f"ndcg@{k}"])
    return ALSParams(best["rank"], best["reg_param"], best["alpha"]), results
