"""Re-ranking of a scored candidate list: MMR diversity by category, exclusion of seen items, a freshness boost.

Maximal marginal relevance (Carbonell & Goldstein 1998) picks greedily the candidate maximising
``lambda * relevance - (1 - lambda) * (largest similarity to the items already picked)``; ``lambda`` = 1 keeps
the ranker's order. Relevance is the score min-max scaled within the user's candidates (so ``lambda`` weighs
quantities on the same 0..1 scale whatever the ranker's) plus ``freshness_weight * freshness``, where freshness
is ``2 ** (-age / half_life)`` and age the days from the item's first event in the context to the context's
end (0 = off). Similarity is the Jaccard index of the two items' category sets (0 when either has none).
Each user's candidates (a few hundred) are re-ranked in one ``applyInPandas`` group by numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.tables import ITEM, TS, USER, RecsysError

DAY = 86400.0


@dataclass(frozen=True)
class RerankSettings:
    lam: float = 0.8  # weight of relevance against similarity (1 = the ranker's order)
    exclude_seen: bool = True  # drop candidates the user has in the context
    freshness_weight: float = 0.0  # added relevance of a brand-new item (0 = off)
    half_life_days: float = 30.0  # age at which the freshness boost halves

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise RecsysError(f"rerank.lambda: expected a weight in [0, 1], got {self.lam}")
        if self.half_life_days <= 0:
            raise RecsysError(f"rerank.half_life_days: expected a positive number of days, got {self.half_life_days}")


def jaccard_matrix(categories: list) -> np.ndarray:
    """``(n, n)`` Jaccard index of the items' category sets (0 where either set is empty)."""
    sizes = [len(c) for c in categories]
    codes, inverse = np.unique(np.array([str(c) for cats in categories for c in cats], dtype=str), return_inverse=True)
    onehot = np.zeros((len(categories), len(codes)))
    onehot[np.repeat(np.arange(len(categories)), sizes), inverse] = 1.0  # a repeated category counts once
    inter = onehot @ onehot.T
    counts = onehot.sum(axis=1)
    union = counts[:, None] + counts[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mmr_order(relevance: np.ndarray, similarity: np.ndarray, lam: float, n: int) -> np.ndarray:
    """Indices of the first ``n`` items MMR picks (ties: the lower index)."""
    free = np.ones(len(relevance), bool)
    closest = np.zeros(len(relevance))
    picked = []
    for _ in range(min(n, len(relevance))):
        gain = np.where(free, lam * relevance - (1.0 - lam) * closest, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        free[best] = False
        closest = np.maximum(closest, similarity[best])
    return np.array(picked, np.int64)


def _rerank_fn(settings: RerankSettings, n: int, method: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``applyInPandas`` body: one user's ``(user_id, item_id, _score, _fresh, categories)`` to one list row."""

    def rerank(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values(["_score", ITEM], ascending=[False, True], kind="stable")
        score = group["_score"].to_numpy(float)
        spread = score.max() - score.min()
        relevance = (score - score.min()) / spread if spread > 0 else np.zeros(len(score))
        relevance = relevance + settings.freshness_weight * group["_fresh"].to_numpy(float)
        order = mmr_order(relevance, jaccard_matrix(group["categories"].to_list()), settings.lam, n)
        return pd.DataFrame({"method": [method], USER: [group[USER].iloc[0]], "items": [group[ITEM].to_numpy()[order]]})

    return rerank


def item_freshness(context: DataFrame, half_life_days: float) -> DataFrame:
    """``(item_id, _fresh)``: ``2 ** (-days from the item's first event to the context's end / half_life_days)``."""
    end = context.agg(F.max(TS).alias("_end"))
    first = context.groupBy(ITEM).agg(F.min(TS).alias("_first"))
    age_days = (F.col("_end") - F.col("_first")) / DAY
    return first.crossJoin(end).select(ITEM, F.pow(F.lit(2.0), -age_days / half_life_days).alias("_fresh"))


def mmr_lists(
    scored: DataFrame,
    score_col: str,
    items: DataFrame,
    context: DataFrame,
    settings: RerankSettings,
    n: int,
    method: str = "ours_reranked",
) -> DataFrame:
    """``(method, user_id, items)``: each user's scored candidates re-ranked by MMR, the first ``n``.

    ``scored``: ``(user_id, item_id, <score_col>)``; ``items``: ``(item_id, categories)``; ``context``: the
    events known when the list is served ``(user_id, item_id, ts)`` (seen items, freshness).
    """
    rows = scored.select(USER, ITEM, F.col(score_col).cast("double").alias("_score"))
    if settings.exclude_seen:
        rows = rows.join(context.select(USER, ITEM).distinct(), [USER, ITEM], "left_anti")
    if settings.freshness_weight:
        rows = rows.join(item_freshness(context, settings.half_life_days), ITEM, "left").fillna(0.0, ["_fresh"])
    else:
        rows = rows.withColumn("_fresh", F.lit(0.0))
    cats = items.select(ITEM, "categories")
    rows = rows.join(cats, ITEM, "left").withColumn(
        "categories", F.coalesce("categories", F.array().cast(cats.schema["categories"].dataType))
    )
    schema = (
        f"method STRING, {USER} {scored.schema[USER].dataType.simpleString()}, "
        f"items ARRAY<{scored.schema[ITEM].dataType.simpleString()}>"
    )
    return rows.groupBy(USER).applyInPandas(_rerank_fn(settings, n, method), schema)


def settings_from(cfg: dict[str, Any]) -> RerankSettings:
    """``RerankSettings`` from the job's ``rerank`` section."""
    return RerankSettings(cfg["lambda"], cfg["exclude_seen"], cfg["freshness_weight"], cfg["half_life_days"])
