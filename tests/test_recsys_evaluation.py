"""Recommender evaluation against brute-force numpy/scikit-learn: lists, recall/NDCG@k, curves, AUC/GAUC,
and the popularity baseline's lists (pipelines/recsys/evaluation.py, lists.py, baselines.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from pipelines.recsys.baselines import popularity_lists
from pipelines.recsys.evaluation import position_metrics, ranker_quality, recall_curves, target_positions
from pipelines.recsys.lists import ranked_lists
from pipelines.recsys.tables import ITEM, USER

RNG = np.random.default_rng(5)
N_USERS, N_ITEMS, LIST = 60, 40, 15


@pytest.fixture(scope="module")
def scored():
    rows = [
        (u, i, float(RNG.normal()), int(r))
        for u in range(N_USERS)
        for r, i in enumerate(RNG.choice(N_ITEMS, 25, replace=False), 1)
    ]
    return pd.DataFrame(rows, columns=[USER, ITEM, "score", "recall_rank"])


@pytest.fixture(scope="module")
def targets():
    return pd.DataFrame({USER: np.arange(N_USERS + 5), ITEM: RNG.integers(0, N_ITEMS, N_USERS + 5)})


def numpy_lists(scored: pd.DataFrame, column: str, ascending: bool) -> dict[int, list[int]]:
    ordered = scored.sort_values([USER, column, ITEM], ascending=[True, ascending, True])
    return {u: g[ITEM].tolist()[:LIST] for u, g in ordered.groupby(USER)}


def test_lists_positions_metrics_and_curves_match_numpy(spark, scored, targets):
    rows = spark.createDataFrame(scored)
    lists = ranked_lists(rows, [-F.col("score"), F.col("recall_rank")], LIST, "ours").unionByName(
        ranked_lists(rows, [F.col("recall_rank")], LIST, "recall_only")
    )
    got = {(r["method"], r[USER]): r["items"] for r in lists.collect()}
    expected = {"ours": numpy_lists(scored, "score", False), "recall_only": numpy_lists(scored, "recall_rank", True)}
    for method, per_user in expected.items():
        for user, items in per_user.items():
            assert got[(method, user)] == items
    truth = spark.createDataFrame(targets)
    positions = target_positions(lists, truth)
    metrics, curves = position_metrics(positions, [1, 5, 10]), recall_curves(positions, LIST)
    for method, per_user in expected.items():
        # every target user counts; the 5 users without a list score 0
        pos = np.array(
            [
                per_user[u].index(t) + 1 if u in per_user and t in per_user[u] else 0
                for u, t in zip(targets[USER], targets[ITEM])
            ]
        )
        assert metrics[method]["users"] == N_USERS + 5 and metrics[method]["users_without_list"] == 5
        for k in (1, 5, 10):
            hit = (pos >= 1) & (pos <= k)
            assert metrics[method][f"recall@{k}"] == pytest.approx(hit.mean(), abs=1e-12)
            ndcg = np.where(hit, 1 / np.log2(np.maximum(pos, 1) + 1.0), 0.0).mean()
            assert metrics[method][f"ndcg@{k}"] == pytest.approx(ndcg, abs=1e-12)
        np.testing.assert_allclose(curves[method], [((pos >= 1) & (pos <= k)).mean() for k in range(1, LIST + 1)])


def test_ranker_auc_and_gauc_match_scikit_learn(spark, scored, targets):
    labelled = scored.merge(targets.rename(columns={ITEM: "target"}), on=USER)
    labelled["label"] = (labelled[ITEM] == labelled["target"]).astype(int)
    got = ranker_quality(spark.createDataFrame(labelled.drop(columns="target")), "score", "label")
    assert got["auc"] == pytest.approx(roc_auc_score(labelled["label"], labelled["score"]), abs=1e-12)
    per_user = [
        (len(g), roc_auc_score(g["label"], g["score"]))
        for _, g in labelled.groupby(USER)
        if 0 < g["label"].sum() < len(g)
    ]
    gauc = sum(n * a for n, a in per_user) / sum(n for n, _ in per_user)
    assert got["gauc"] == pytest.approx(gauc, abs=1e-12) and got["gauc_users"] == len(per_user)
    assert got["positives"] == labelled["label"].sum() and got["rows"] == len(labelled)


def test_popularity_lists_skip_seen_items(spark):
    context = pd.DataFrame({USER: RNG.integers(0, 30, 600), ITEM: RNG.zipf(1.5, 600) % 50})
    users = pd.DataFrame({USER: np.arange(30)})
    seen = context.drop_duplicates()
    got = popularity_lists(
        spark.createDataFrame(context), spark.createDataFrame(users), spark.createDataFrame(seen), 10
    )
    counts = context.groupby(ITEM).size().reset_index(name="n").sort_values(["n", ITEM], ascending=[False, True])
    order = counts[ITEM].tolist()
    expected = []
    for u in range(30):
        mine = set(seen.loc[seen[USER] == u, ITEM])
        expected.append(("popularity", u, [i for i in order if i not in mine][:10]))
    want = spark.createDataFrame(expected, got.schema)
    assert_df_equality(got, want, ignore_row_order=True)
    no_exclusion = popularity_lists(spark.createDataFrame(context), spark.createDataFrame(users), None, 10)
    assert {tuple(r["items"]) for r in no_exclusion.collect()} == {tuple(order[:10])}
