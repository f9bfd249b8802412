"""Ranker features of candidate rows (pipelines/recsys/features.py, cooccurrence.py) on a hand-checked example."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import functions as F

from pipelines.recsys.cooccurrence import sequence_pairs
from pipelines.recsys.features import CATEGORICAL, LABEL, NUMERIC, FeatureSettings, candidate_features
from pipelines.recsys.merge import ROUTE_FEATURES
from pipelines.recsys.queries import recent_items, unit_item_vectors
from pipelines.recsys.ranker import SPEC
from pipelines.recsys.tables import ITEM, SPLIT, TS, USER, VALID

DAY = 86400


@pytest.fixture(scope="module")
def rows(spark):
    contexts = spark.createDataFrame(
        [
            (VALID, 1, 1, 0),
            (VALID, 1, 2, DAY),
            (VALID, 1, 3, 2 * DAY),
            (VALID, 1, 2, 3 * DAY),
            (VALID, 2, 2, 0),
            (VALID, 2, 3, 10),
        ],
        f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT",
    )
    candidates = spark.createDataFrame(
        [
            (VALID, 1, 3, 0.1, 1),
            (VALID, 1, 4, 0.2, 2),
            (VALID, 1, 2, 0.3, 3),
            (VALID, 2, 1, 0.1, 1),
            (VALID, 2, 4, 0.4, 2),
        ],
        f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, distance DOUBLE, recall_rank INT",
    ).select("*", *[(F.col("recall_rank") * (i + 1)).alias(c) for i, c in enumerate(ROUTE_FEATURES)])
    targets = spark.createDataFrame(
        [(VALID, 1, 4, 9 * DAY), (VALID, 2, 1, 9 * DAY)], f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT"
    )
    queries = spark.createDataFrame(
        [(VALID, 1, [1.0, 0.0]), (VALID, 2, [0.0, 2.0])], f"{SPLIT} STRING, {USER} BIGINT, vector ARRAY<FLOAT>"
    )
    vectors = unit_item_vectors(
        spark.createDataFrame(
            [("1", [1.0, 0.0]), ("2", [0.0, 1.0]), ("3", [1.0, 1.0]), ("4", [1.0, -1.0])],
            "word STRING, vector ARRAY<FLOAT>",
        )
    )
    items = spark.createDataFrame(
        [(1, ["a"]), (2, ["a", "b"]), (3, ["b"]), (4, ["c"])], f"{ITEM} BIGINT, categories ARRAY<STRING>"
    )
    settings = FeatureSettings(n_recent=10, decay=1.0, cooc_window=5, recent_days=0.5, near_days=1000.0)
    df = candidate_features(
        candidates, contexts, targets, queries, vectors, items, recent_items(contexts, settings.n_recent), settings
    )
    return {(r[USER], r[ITEM]): r.asDict() for r in df.collect()}, df.columns


def test_feature_columns_are_the_ranker_schema(rows):
    _, columns = rows
    assert columns == [SPLIT, USER, ITEM, LABEL, *NUMERIC, *CATEGORICAL]
    assert SPEC.numeric == NUMERIC and SPEC.categorical == CATEGORICAL and SPEC.label == LABEL


def test_hand_checked_values(rows):
    got, _ = rows
    assert len(got) == 5
    assert [got[(1, i)][LABEL] for i in (3, 4, 2)] == [0, 1, 0] and got[(2, 1)][LABEL] == 1
    u1 = got[(1, 3)]
    assert (u1["u_events"], u1["u_items"], u1["u_active_days"], u1["u_recency_days"]) == (4, 3, 3.0, 0.0)
    assert got[(2, 1)]["u_recency_days"] == pytest.approx((3 * DAY - 10) / DAY)
    assert [got[(1, i)]["i_pop"] for i in (3, 4, 2)] == [2, 0, 3]
    assert got[(1, 2)]["i_pop_recent"] == 1 and got[(1, 3)]["i_pop_recent"] == 0  # last half day: one event of item 2
    assert got[(1, 2)]["i_near_share"] == pytest.approx(math.log(3.5 / 7))
    # item 3 first appears at ts 10 (user 2): user 1's last event comes 3 days - 10 s later; item 4 never appears
    assert got[(1, 3)]["i_age_days"] == pytest.approx((3 * DAY - 10) / DAY) and got[(1, 4)]["i_age_days"] is None
    assert [got[(1, i)]["ui_count"] for i in (3, 4, 2)] == [1, 0, 2]
    assert [got[(1, i)]["cat_share"] for i in (3, 4, 2)] == [0.75, 0.0, 0.75] and got[(2, 1)]["cat_share"] == 0.5
    assert [got[(1, i)]["i_category"] for i in (3, 4, 2)] == ["b", "c", "a"]
    # user 1's sequence 1,2,3,2: pairs (1,2)x2, (2,3), (3,2), (1,3); user 2's: (2,3)
    assert got[(1, 3)]["cooc"] == 7 and got[(1, 3)]["follows_last"] == 2
    assert got[(1, 3)]["cooc_lift"] == pytest.approx(7 / 2)
    assert got[(1, 4)]["cooc"] == 0
    assert got[(1, 3)]["cos_last"] == pytest.approx(math.sqrt(0.5))
    assert got[(1, 4)]["cos_max"] == pytest.approx(math.sqrt(0.5)) and got[(1, 4)]["cos_last"] == pytest.approx(
        -math.sqrt(0.5)
    )
    assert got[(1, 3)]["cos_user"] == pytest.approx(math.sqrt(0.5)) and got[(2, 1)]["cos_user"] == pytest.approx(0.0)
    assert got[(1, 3)]["distance"] == 0.1 and got[(1, 4)]["recall_rank"] == 2
    assert got[(1, 4)][ROUTE_FEATURES[0]] == 2 and got[(1, 4)][ROUTE_FEATURES[-1]] == 2 * len(ROUTE_FEATURES)


def test_sequence_pairs_match_a_python_count(spark):
    seqs = {1: [5, 6, 5, 7, 8], 2: [6, 5], 3: [9]}
    events = spark.createDataFrame(
        [(VALID, u, i, t) for u, s in seqs.items() for t, i in enumerate(s)],
        f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT",
    )
    for window in (1, 2, 10):
        expected: dict = {}
        for s in seqs.values():
            for p, a in enumerate(s):
                for b in s[p + 1 : p + 1 + window]:
                    if a != b:
                        expected[(a, b)] = expected.get((a, b), 0) + 1
        got = {(r["a"], r["b"]): r["n"] for r in sequence_pairs(events, window).collect()}
        assert got == expected, window
    assert sequence_pairs(events, 1).filter(F.col(SPLIT) != VALID).count() == 0
