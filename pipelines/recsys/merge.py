"""Merge of the recall routes: per-route quotas, one row per (split, user, item), route features, a total budget.

Each route keeps its first ``quota`` candidates per user; the union is deduplicated on (split, user, item) and
each row carries, for every route of ``ROUTES``, ``in_<route>`` (0/1), ``rank_<route>`` (``MISSING_RANK`` when
the route did not find it) and ``score_<route>`` (0 when missing; the flag says so), and ``n_routes``.
``recall_rank`` orders the merged list by the best rank any route gave the item, then by how many routes found
it, then by item id (a round-robin over the routes); the first ``budget`` rows per user are kept.
``distance`` is the PQ distance (null for items the PQ route did not find; the ranker imputes it).
"""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.recall import CANDIDATE_COLUMNS, rank_within_user
from pipelines.recsys.routes import ROUTES
from pipelines.recsys.tables import ITEM, SPLIT, USER, RecsysError

MISSING_RANK = 10_000
ROUTE_FEATURES = [f"{kind}_{route}" for route in ROUTES for kind in ("in", "rank", "score")] + ["n_routes"]


def within_quota(routes: DataFrame, quotas: Mapping[str, int]) -> DataFrame:
    """Each route's first ``quotas[route]`` rows per user (none of a route without a quota)."""
    quota = F.coalesce(*[F.when(F.col("route") == r, F.lit(q)) for r, q in quotas.items()], F.lit(0))
    return routes.filter(F.col("route_rank") <= quota)


def merge_routes(routes: DataFrame, quotas: Mapping[str, int], budget: int) -> DataFrame:
    """``(split, user_id, item_id, distance, recall_rank, *ROUTE_FEATURES)`` from the routes' union
    ``(split, user_id, item_id, route, score, route_rank)``; a route missing from ``quotas`` is dropped."""
    unknown = sorted(set(quotas) - set(ROUTES))
    if unknown:
        raise RecsysError(f"routes: unknown route(s) {unknown}; expected some of {list(ROUTES)}")
    if budget < 1:
        raise RecsysError(f"merge.budget must be at least 1, got {budget}")
    kept = within_quota(routes, quotas)
    here = {r: F.col("route") == r for r in ROUTES}
    merged = kept.groupBy(SPLIT, USER, ITEM).agg(
        *[F.max(here[r].cast("int")).alias(f"in_{r}") for r in ROUTES],
        *[
            F.coalesce(F.min(F.when(here[r], F.col("route_rank"))), F.lit(MISSING_RANK)).alias(f"rank_{r}")
            for r in ROUTES
        ],
        *[F.coalesce(F.max(F.when(here[r], F.col("score"))), F.lit(0.0)).alias(f"score_{r}") for r in ROUTES],
        F.countDistinct("route").alias("n_routes"),
        F.min("route_rank").alias("_best"),
        F.max(F.when(here["pq"], -F.col("score"))).alias("distance"),
    )
    ranked = rank_within_user(merged, [F.col("_best"), F.col("n_routes").desc(), F.col(ITEM)], budget)
    return ranked.select(*CANDIDATE_COLUMNS, *ROUTE_FEATURES)


def target_share(candidates: DataFrame, targets: DataFrame, by: tuple[str, ...] = ()) -> dict:
    """Share of each split's targets found in ``candidates``, per ``by`` group of candidates (e.g. the route):
    ``{split: share}`` or ``{split: {group: share}}``; the driver holds one row per split and group."""
    totals = {r[SPLIT]: r["n"] for r in targets.groupBy(SPLIT).agg(F.count(F.lit(1)).alias("n")).collect()}
    hits = (
        targets.select(SPLIT, USER, ITEM)
        .join(candidates.select(SPLIT, USER, ITEM, *by).distinct(), [SPLIT, USER, ITEM])
        .groupBy(SPLIT, *by)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    if not by:
        found = {r[SPLIT]: r["n"] for r in hits}
        return {s: found.get(s, 0) / n for s, n in totals.items()}
    out: dict = {s: {} for s in totals}
    for row in hits:
        out[row[SPLIT]][":".join(str(row[b]) for b in by)] = row["n"] / totals[row[SPLIT]]
    return out


def route_recall(routes: DataFrame, merged: DataFrame, targets: DataFrame, quotas: Mapping[str, int]) -> dict:
    """``{split: {route: share, ..., "merged": share}}``: the targets each route finds within its quota, and
    the merged candidates."""
    per_route = target_share(within_quota(routes, quotas), targets, ("route",))
    merged_share = target_share(merged, targets)
    return {s: {**{r: per_route[s].get(r, 0.0) for r in quotas}, "merged": merged_share[s]} for s in per_route}
