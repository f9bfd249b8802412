"""Top-k ranking metrics for recommendations: precision, recall, NDCG, MAP and hit rate at k.

Inputs are a per-user ranked list (an array column, best first; duplicates after the first are
ignored) and held-out relevant items as (user, item) rows. Metrics are averaged over the users
that have at least one relevant item; a user with no recommendations scores 0. Relevance is
binary. Per user, with ``hits`` the 0-based positions of relevant items in the top k and
``m = min(k, number of relevant items)``:

* precision@k = |hits| / k; recall@k = |hits| / relevant; hit rate@k = 1 if any hit;
* NDCG@k = sum(1 / log2(p + 2) for p in hits) / sum(1 / log2(i + 2) for i < m);
* MAP@k averages AP@k = sum(j / (p_j + 1) for the j-th hit at p_j) / m.

Everything is one join on user and array expressions in the JVM: no rows are exploded.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.frames import require_columns
from pipelines.metrics.validation import MetricsInputError, missing_check, validate
from pipelines.records import Record


@dataclass(frozen=True)
class RankingMetrics(Record):
    """Means over ``users`` (users with relevant items); ``users_without_recommendations`` scored 0."""

    k: int
    precision_at_k: float
    recall_at_k: float
    ndcg_at_k: float
    map_at_k: float
    hit_rate_at_k: float
    users: int
    users_without_recommendations: int


def _sum(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda total, value: total + value)


def ranking_metrics(
    recommendations: DataFrame,
    relevant: DataFrame,
    k: int,
    *,
    user_col: str = "user",
    items_col: str = "items",
    item_col: str = "item",
    drop_invalid: bool = False,
) -> RankingMetrics:
    """Precision, recall, NDCG, MAP and hit rate at ``k`` of ranked lists against held-out items.

    ``recommendations`` has one row per user with ``items_col`` an array in rank order (for ALS
    output, select ``recommendations.item``). Null users or items in ``relevant`` are errors, or
    excluded and counted with ``drop_invalid``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    require_columns(recommendations, [user_col, items_col])
    require_columns(relevant, [user_col, item_col])
    items_type = recommendations.schema[items_col].dataType
    if not isinstance(items_type, T.ArrayType):
        raise MetricsInputError(f"column '{items_col}' must be an array of items, got {items_type.simpleString()}")
    checked = validate(
        relevant, [missing_check(relevant, user_col), missing_check(relevant, item_col)], drop_invalid=drop_invalid
    )
    held_out = checked.df.groupBy(user_col).agg(
        F.collect_set(F.col(item_col).cast(items_type.elementType)).alias("_relevant")
    )
    ranked = recommendations.select(user_col, F.slice(F.array_distinct(items_col), 1, k).alias("_ranked"))
    joined = held_out.join(ranked, user_col, "left")
    top = F.coalesce(F.col("_ranked"), F.array().cast(items_type))
    hits = F.filter(
        F.transform(top, lambda item, i: F.when(F.array_contains("_relevant", item), i)),
        lambda position: position.isNotNull(),
    )
    ideal = F.least(F.lit(k), F.size("_relevant"))
    dcg = _sum(F.transform(hits, lambda position: 1.0 / F.log2(position + 2)))
    idcg = _sum(F.transform(F.sequence(F.lit(1), ideal), lambda i: 1.0 / F.log2(i + 1)))
    average_precision = _sum(F.transform(hits, lambda position, j: (j + 1) / (position + 1))) / ideal
    # Named as RankingMetrics' fields, so that the row is the result.
    row = joined.agg(
        F.avg(F.size(hits) / k).alias("precision_at_k"),
        F.avg(F.size(hits) / F.size("_relevant")).alias("recall_at_k"),
        F.avg(dcg / idcg).alias("ndcg_at_k"),
        F.avg(average_precision).alias("map_at_k"),
        F.avg((F.size(hits) > 0).cast("double")).alias("hit_rate_at_k"),
        F.count(F.lit(1)).alias("users"),
        F.count_if(F.col("_ranked").isNull()).alias("users_without_recommendations"),
    ).first()
    return RankingMetrics(k=k, **row.asDict())
