"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): one closed-form item-item model, a strong anchor.

With X the binary user-item matrix of the context and G = X^T X, the weights are B = I - P / diag(P) (column j
divided by P_jj) with P = (G + lambda I)^-1, so diag(B) = 0; a user's scores are x_u B.

* G is counted in Spark: each user's pairs of items (a self-join on the user, i <= j) summed per pair, so the
  shuffle holds sparse counts; only items seen by at least ``min_count`` users of the context enter the model.
* The model itself lives on the driver: G and P as n_items^2 float64 and B as n_items^2 float32 (9.7K items,
  MovieLens small unpruned: 0.75 GB each for G and P, 0.38 GB for B); more than ``max_items`` items is refused.
* Scoring stays distributed: B is broadcast and a ``mapInPandas`` body scores blocks of users' item sets
  (dense binary rows times B) and keeps each user's top ``n`` (unseen, with exclusion) by ``argpartition``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.connect import share
from pipelines.recsys.evaluation import position_metrics, target_positions
from pipelines.recsys.tables import ITEM, USER, RecsysError
from udfs.word2vec import top_k_cosine

IDX = "_idx"


def item_index(context: DataFrame, min_count: int) -> DataFrame:
    """``(item_id, _idx)``: items of ``context`` seen by at least ``min_count`` users, numbered 0.. by item id."""
    users = context.groupBy(ITEM).agg(F.countDistinct(USER).alias("_users")).filter(F.col("_users") >= min_count)
    return users.select(ITEM, (F.row_number().over(Window.orderBy(ITEM)) - 1).alias(IDX))


def gram_matrix(user_items: DataFrame, n_items: int) -> np.ndarray:
    """Dense ``(n_items, n_items)`` float64 G = X^T X from distinct ``(user_id, _idx)`` rows (pairs counted in Spark;
    the collected table holds the nonzero cells of the upper triangle)."""
    a = user_items.select(USER, F.col(IDX).alias("i"))
    b = user_items.select(USER, F.col(IDX).alias("j"))
    counts = (
        a.join(b, USER)
        .filter(F.col("i") <= F.col("j"))
        .groupBy("i", "j")
        .agg(F.count(F.lit(1)).cast("double").alias("n"))
        .toArrow()
    )
    i, j, n = (counts.column(name).to_numpy() for name in ("i", "j", "n"))
    gram = np.zeros((n_items, n_items))
    gram[i, j] = n
    gram[j, i] = n
    return gram


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """B = I - P / diag(P) with P = (G + lambda I)^-1 (zero diagonal), as float32."""
    if lam <= 0:
        raise RecsysError(f"ease.lambdas: every lambda must be positive, got {lam}")
    p = np.linalg.inv(gram + lam * np.eye(len(gram)))
    weights = -p / np.diag(p)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


def _score_fn(
    shared: Any, n: int, exclude: bool, block: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """``mapInPandas`` body: ``(user_id, idx)`` rows (each user's model items) to ``(method, user_id, items)``."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        weights, ids = shared.value
        k = min(n, len(ids))
        for batch in batches:
            for start in range(0, len(batch), block):
                part = batch.iloc[start : start + block]
                x = np.zeros((len(part), len(ids)), np.float32)
                rows = np.repeat(np.arange(len(part)), [len(s) for s in part[IDX]])
                cols = np.concatenate(part[IDX].to_list()).astype(np.int64)
                x[rows, cols] = 1.0
                if exclude:
                    width = max(len(s) for s in part[IDX])
                    seen = np.full((len(part), width), -1, np.int64)
                    seen[rows, np.concatenate([np.arange(len(s)) for s in part[IDX]])] = cols
                else:
                    seen = None
                top, scores = top_k_cosine(x, weights.T, k, seen)  # inner products x_u B, seen items at -inf
                yield pd.DataFrame(
                    {
                        "method": "ease",
                        USER: part[USER].to_numpy(),
                        "items": [ids[t[np.isfinite(s)]] for t, s in zip(top, scores)],
                    }
                )

    return score


def ease_lists(
    weights: np.ndarray,
    ids: np.ndarray,
    user_items: DataFrame,
    users: DataFrame,
    n: int,
    exclude: bool,
    block_users: int,
    item_type: Any,
) -> tuple[DataFrame, Any]:
    """``(method, user_id, items)``: EASE's top ``n`` items for each user of ``users`` with a model item, and the
    broadcast weights behind it (``destroy()`` once the lists are written).

    ``user_items``: distinct ``(user_id, _idx)`` of the context; ``ids``: item id of each index. With ``exclude``
    the user's own items are skipped. Users none of whose items is in the model get no list (they score 0).
    """
    spark = users.sparkSession
    sets = (
        user_items.join(users.select(USER).distinct(), USER)
        .groupBy(USER)
        .agg(F.sort_array(F.collect_list(IDX)).alias(IDX))
    )
    schema = (
        f"method STRING, {USER} {users.schema[USER].dataType.simpleString()}, items ARRAY<{item_type.simpleString()}>"
    )
    shared = share(spark, (weights, ids), "the EASE weights")
    return sets.mapInPandas(_score_fn(shared, n, exclude, block_users), schema), shared


def fit_index(context: DataFrame, min_count: int, max_items: int) -> tuple[DataFrame, np.ndarray, np.ndarray]:
    """The model's items and Gram matrix for ``context``: cached ``(user_id, _idx)`` rows (``unpersist()`` when
    done), the item id of each index (n_items on the driver) and G."""
    index = item_index(context, min_count)
    ids_table = index.orderBy(IDX).toArrow()
    ids = ids_table.column(ITEM).to_numpy(zero_copy_only=False)
    if len(ids) > max_items:
        raise RecsysError(
            f"ease: {len(ids)} items are seen by at least min_count={min_count} users, more than "
            f"ease.max_items={max_items} (the driver holds items^2 floats); raise ease.min_count"
        )
    if not len(ids):
        raise RecsysError(f"ease: no item is seen by at least min_count={min_count} users; lower ease.min_count")
    user_items = context.select(USER, ITEM).distinct().join(F.broadcast(index), ITEM).select(USER, IDX).cache()
    return user_items, ids, gram_matrix(user_items, len(ids))


def tune_ease(
    context: DataFrame,
    users: DataFrame,
    targets: DataFrame,
    n: int,
    k: int,
    cfg: dict[str, Any],
    exclude: bool,
    item_type: Any,
    log: Callable[[str], None] = print,
) -> tuple[float, list[dict[str, Any]]]:
    """Each lambda of ``cfg['lambdas']`` fitted on ``context``; the best NDCG@``k`` on ``targets`` wins (ties:
    first)."""
    user_items, ids, gram = fit_index(context, cfg["min_count"], cfg["max_items"])
    results = []
    for lam in cfg["lambdas"]:
        started = time.time()
        lists, shared = ease_lists(
            ease_weights(gram, float(lam)), ids, user_items, users, n, exclude, cfg["block_users"], item_type
        )
        try:
            quality = position_metrics(target_positions(lists, targets), [k])["ease"]
        finally:
            shared.destroy()
        results.append(
            {
                "lambda": float(lam),
                f"ndcg@{k}": quality[f"ndcg@{k}"],
                f"recall@{k}": quality[f"recall@{k}"],
                "seconds": round(time.time() - started, 2),
            }
        )
        log(f"  EASE lambda={lam}: validation NDCG@{k} {quality[f'ndcg@{k}']:.4f}")
    user_items.unpersist()
    best = max(results, key=lambda r: r[f"ndcg@{k}"])
    return best["lambda"], results
