"""EASE (pipelines/recsys/ease.py) against numpy on a small random binary matrix: the Gram matrix counted in Spark,
the weights B, the top-n lists with and without exclusion of seen items, and the validation tuning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.recsys.ease import ease_lists, ease_weights, fit_index, tune_ease
from pipelines.recsys.tables import ITEM, USER, RecsysError

RNG = np.random.default_rng(11)
N_USERS, N_ITEMS, LAM, N = 30, 12, 3.0, 4


@pytest.fixture(scope="module")
def matrix():
    x = (RNG.random((N_USERS, N_ITEMS)) < 0.3).astype(float)
    x[:, -1] = 0.0
    x[0, -1] = 1.0  # item 111 is seen by one user only: left out at min_count 2
    x[1] = 0.0  # user 1 has no event
    return x


def events(x: np.ndarray) -> pd.DataFrame:
    users, items = np.nonzero(x)
    rows = pd.DataFrame({USER: users + 1000, ITEM: items + 100})
    return pd.concat([rows, rows.iloc[:5]], ignore_index=True)  # a repeated event counts once


def reference(x: np.ndarray, lam: float) -> np.ndarray:
    g = x.T @ x
    p = np.linalg.inv(g + lam * np.eye(len(g)))
    b = np.eye(len(g)) - p @ np.diag(1.0 / np.diag(p))
    return b


def test_gram_weights_and_lists_match_numpy(spark, matrix):
    ctx = spark.createDataFrame(events(matrix))
    user_items, ids, gram = fit_index(ctx, 2, 100)
    kept = matrix[:, :-1]
    assert ids.tolist() == list(range(100, 100 + N_ITEMS - 1))
    np.testing.assert_array_equal(gram, kept.T @ kept)
    b = ease_weights(gram, LAM)
    np.testing.assert_allclose(b, reference(kept, LAM), atol=1e-6)
    assert np.all(np.diag(b) == 0)
    users = spark.createDataFrame(pd.DataFrame({USER: np.arange(N_USERS) + 1000}))
    item_type = ctx.schema[ITEM].dataType
    for exclude in (True, False):
        lists, shared = ease_lists(b, ids, user_items, users, N, exclude, 7, item_type)
        got = {r[USER]: r["items"] for r in lists.collect()}
        shared.destroy()
        scores = kept @ reference(kept, LAM)
        if exclude:
            scores[kept > 0] = -np.inf
        want = {
            u + 1000: [100 + i for i in np.argsort(-scores[u], kind="stable")[:N] if np.isfinite(scores[u, i])]
            for u in range(N_USERS)
            if kept[u].any()
        }
        assert got == want and 1001 not in got
    user_items.unpersist()


def test_tuning_picks_the_best_validation_lambda_and_caps_items(spark, matrix):
    ctx = spark.createDataFrame(events(matrix))
    kept = matrix[:, :-1]
    truth = pd.DataFrame({USER: np.arange(N_USERS) + 1000, ITEM: RNG.integers(0, N_ITEMS - 1, N_USERS) + 100})
    cfg = {"lambdas": [0.5, 50.0], "min_count": 2, "max_items": 100, "block_users": 8}
    targets = spark.createDataFrame(truth)
    lam, grid = tune_ease(ctx, targets, targets, N, N, cfg, True, ctx.schema[ITEM].dataType, log=lambda _: None)
    ndcg = []
    for value in cfg["lambdas"]:
        scores = kept @ reference(kept, value)
        scores[kept > 0] = -np.inf
        gains = []
        for u, t in zip(truth[USER] - 1000, truth[ITEM] - 100):
            top = [i for i in np.argsort(-scores[u], kind="stable")[:N] if np.isfinite(scores[u, i])]
            gains.append(1 / np.log2(top.index(t) + 2) if kept[u].any() and t in top else 0.0)
        ndcg.append(np.mean(gains))
    assert [g[f"ndcg@{N}"] for g in grid] == pytest.approx(ndcg, abs=1e-12)
    assert lam == cfg["lambdas"][int(np.argmax(ndcg))]
    with pytest.raises(RecsysError, match="ease.max_items=5"):
        fit_index(ctx, 2, 5)
