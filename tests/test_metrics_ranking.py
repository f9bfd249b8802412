"""Ranking metrics against a plain per-user reference and scikit-learn's ndcg_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from pipelines import metrics

ITEMS = 50


def _lists(seed: int) -> tuple[dict[int, list[int]], dict[int, set[int]]]:
    """Ranked lists of 0 to 15 items (some with duplicates, some users without), held-out sets of 1 to 8."""
    rng = np.random.default_rng(seed)
    recommendations = {}
    for user in range(60):
        ranked = rng.permutation(ITEMS)[: rng.integers(0, 16)].tolist()
        if user % 7 == 0 and ranked:
            ranked.insert(min(2, len(ranked)), ranked[0])  # a duplicate, ignored after the first
        if user % 11 != 0:
            recommendations[user] = ranked
    relevant = {user: set(rng.choice(ITEMS, rng.integers(1, 9), replace=False).tolist()) for user in range(5, 60)}
    return recommendations, relevant


def _reference(recommendations: dict[int, list[int]], relevant: dict[int, set[int]], k: int) -> dict[str, float]:
    per_user = []
    for user, held_out in relevant.items():
        ranked = list(dict.fromkeys(recommendations.get(user, [])))[:k]
        hits = [position for position, item in enumerate(ranked) if item in held_out]
        ideal = min(k, len(held_out))
        per_user.append(
            (
                len(hits) / k,
                len(hits) / len(held_out),
                sum(1 / np.log2(p + 2) for p in hits) / sum(1 / np.log2(i + 2) for i in range(ideal)),
                sum((j + 1) / (p + 1) for j, p in enumerate(hits)) / ideal,
                float(bool(hits)),
            )
        )
    return dict(
        zip(["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "hit_rate_at_k"], np.mean(per_user, axis=0))
    )


def _frames(spark, recommendations, relevant):
    recs = spark.createDataFrame(list(recommendations.items()), "user long, items array<long>")
    held_out = spark.createDataFrame([(u, i) for u, items in relevant.items() for i in items], "user long, item int")
    return recs, held_out


@pytest.mark.parametrize("k", [1, 5, 10])
def test_ranking_metrics_match_reference(spark, k):
    recommendations, relevant = _lists(seed=k)
    result = metrics.ranking_metrics(*_frames(spark, recommendations, relevant), k)
    for key, value in _reference(recommendations, relevant, k).items():
        assert getattr(result, key) == pytest.approx(value, abs=1e-12), key
    assert result.users == len(relevant)
    assert result.users_without_recommendations == sum(1 for user in relevant if user not in recommendations)


def test_ndcg_matches_sklearn(spark):
    k = 5
    recommendations, relevant = _lists(seed=3)
    full = {user: ranked for user, ranked in recommendations.items() if len(set(ranked)) >= k and user in relevant}
    y_true = np.zeros((len(full), ITEMS))
    y_score = np.zeros((len(full), ITEMS))
    for row, (user, ranked) in enumerate(full.items()):
        y_true[row, list(relevant[user])] = 1
        unique = list(dict.fromkeys(ranked))
        y_score[row, unique] = np.arange(len(unique), 0, -1)
    result = metrics.ranking_metrics(*_frames(spark, full, {user: relevant[user] for user in full}), k)
    assert result.ndcg_at_k == pytest.approx(ndcg_score(y_true, y_score, k=k), abs=1e-12)
    assert result.users_without_recommendations == 0
