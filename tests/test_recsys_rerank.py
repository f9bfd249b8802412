"""Re-ranking and diversity (pipelines/recsys/rerank.py, evaluation.diversity_metrics): MMR against a case worked
by hand, the Spark re-ranker's exclusion and freshness, and coverage/intra-list diversity against pandas."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from pipelines.recsys.evaluation import diversity_metrics
from pipelines.recsys.rerank import RerankSettings, jaccard_matrix, mmr_lists, mmr_order
from pipelines.recsys.tables import ITEM, TS, USER, RecsysError

# a..e: relevance 1.0, 0.9, 0.8, 0.6, 0.5; categories X, X, XY, Y, Y. With lambda 0.5 (gain = 0.5 rel - 0.5 sim):
# 1st a (0.5). 2nd: max similarity to {a} is b 1, c 1/2, d 0, e 0: gains -0.05, 0.15, 0.30, 0.25 -> d.
# 3rd: to {a, d}: b 1, c 1/2, e 1: gains -0.05, 0.15, -0.25 -> c. 4th: b -0.05, e -0.25 -> b. 5th: e.
CATS = [["X"], ["X"], ["X", "Y"], ["Y"], ["Y"]]
RELEVANCE = np.array([1.0, 0.9, 0.8, 0.6, 0.5])
HAND_ORDER = [0, 3, 2, 1, 4]


def test_mmr_matches_the_hand_computed_order():
    sim = jaccard_matrix(CATS)
    assert sim[0, 2] == 0.5 and sim[0, 3] == 0.0 and sim[2, 4] == 0.5 and sim[1, 1] == 1.0
    assert mmr_order(RELEVANCE, sim, 0.5, 5).tolist() == HAND_ORDER
    assert mmr_order(RELEVANCE, sim, 1.0, 3).tolist() == [0, 1, 2]  # lambda 1: relevance order
    assert jaccard_matrix([[], ["X"]]).tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_spark_reranker_scales_excludes_and_boosts(spark):
    # min-max scaling gives 1, .8, .6, .2, 0: the same picks as the hand case (gains differ, not the order)
    scored = spark.createDataFrame(pd.DataFrame({USER: 7, ITEM: [1, 2, 3, 4, 5, 6], "score": [*RELEVANCE, 0.95]}))
    items = spark.createDataFrame(list(zip(range(1, 6), CATS)), f"{ITEM} BIGINT, categories ARRAY<STRING>")
    day = 86400
    context = spark.createDataFrame(pd.DataFrame({USER: [7, 8, 8, 8], ITEM: [6, 5, 2, 1], TS: [0, 0, 0, 100 * day]}))
    got = mmr_lists(scored, "score", items, context, RerankSettings(0.5, True, 0.0, 30.0), 10).collect()
    assert [(r["method"], r[USER], r["items"]) for r in got] == [("ours_reranked", 7, [1, 4, 3, 2, 5])]
    # item 6 (seen, no categories) stays without exclusion: scaled relevance 0.9, dissimilar to all -> second
    kept = mmr_lists(scored, "score", items, context, RerankSettings(0.5, False, 0.0, 30.0), 3).first()["items"]
    assert kept == [1, 6, 4]
    # freshness 2 ** (-age / 100 days), weight 2, lambda 1 (relevance alone): the context ends at day 100, so item 1
    # (first seen at day 100) gains 2.0, items 2 and 5 (day 0) 1.0, items 3 and 4 (not in the context) nothing:
    # 1 + 2 = 3.0, 0.8 + 1 = 1.8, 0 + 1 = 1.0, 0.6, 0.2
    fresh = mmr_lists(
        scored.filter(F.col(ITEM) != 6), "score", items, context, RerankSettings(1.0, False, 2.0, 100.0), 5
    ).first()["items"]
    assert fresh == [1, 2, 5, 3, 4]
    with pytest.raises(RecsysError, match="rerank.lambda"):
        RerankSettings(1.5)


def test_diversity_metrics_match_pandas(spark):
    rng = np.random.default_rng(3)
    cats = {i: sorted(set(rng.choice(list("ABCDEF"), rng.integers(0, 3)))) for i in range(20)}
    rows = [
        (m, u, [int(i) for i in rng.choice(25, rng.integers(1, 8), replace=False)])  # items 20..24: unknown
        for m in ("one", "two")
        for u in range(12)
    ]
    lists = spark.createDataFrame(rows, f"method STRING, {USER} BIGINT, items ARRAY<BIGINT>")
    items = spark.createDataFrame(list(cats.items()), f"{ITEM} BIGINT, categories ARRAY<STRING>")
    k = 5
    got = diversity_metrics(lists, items, k)
    n_categories = len(set(itertools.chain(*cats.values())))
    for method in ("one", "two"):
        coverage, ild = [], []
        for m, _, listed in rows:
            if m != method:
                continue
            sets = [set(cats.get(i, [])) for i in listed[:k]]
            coverage.append(len(set().union(*sets)) / n_categories)
            pairs = [(a, b) for a, b in itertools.combinations(sets, 2)]
            if pairs:
                ild.append(np.mean([1 - (len(a & b) / len(a | b) if a | b else 0.0) for a, b in pairs]))
        assert got[method][f"coverage@{k}"] == pytest.approx(np.mean(coverage), abs=1e-12)
        assert got[method][f"ild@{k}"] == pytest.approx(np.mean(ild), abs=1e-12)
        assert got[method]["diversity_users"] == 12
