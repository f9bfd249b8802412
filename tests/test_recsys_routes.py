"""Recall routes, their merge and the coarse cut (pipelines/recsys/routes.py, merge.py, coarse.py) against
pandas/Python references on small hand-made tables."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest
from pyspark.sql import functions as F

from pipelines.recsys.coarse import COARSE_SCORE, coarse_cut
from pipelines.recsys.merge import MISSING_RANK, ROUTE_FEATURES, merge_routes, route_recall
from pipelines.recsys.queries import recent_items
from pipelines.recsys.routes import (
    ROUTE_COLUMNS,
    cold_users,
    cooccurrence_neighbours,
    neighbour_route,
    popularity_route,
    route_lists,
    transition_neighbours,
)
from pipelines.recsys.tables import ITEM, SESSION, SPLIT, TEST, TS, USER, VALID

DAY = 86400
# user -> [(item, ts, session)] of one split context
EVENTS = {
    1: [(10, 0, 1), (11, 1, 1), (12, 2, 1), (10, 3, 2), (13, 4, 2)],
    2: [(11, 0, 3), (12, 1, 3), (13, 2, 3), (11, 10 * DAY, 4), (12, 10 * DAY + 1, 4)],
    3: [(12, 5, 5), (14, 6, 5)],
}


def _frame(spark):
    rows = [(VALID, u, i, t, s) for u, evs in EVENTS.items() for i, t, s in evs]
    return spark.createDataFrame(rows, f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT, {SESSION} BIGINT")


def _sequences(by_session: bool) -> list[list[int]]:
    groups = defaultdict(list)
    for u, evs in EVENTS.items():
        for i, t, s in sorted(evs, key=lambda e: e[1]):
            groups[(u, s) if by_session else u].append(i)
    return list(groups.values())


def _top(weights: dict, n: int) -> dict:
    out = {}
    for a in {a for a, _ in weights}:
        best = sorted(((-w, b) for (x, b), w in weights.items() if x == a))[:n]
        out.update({(a, b): -w for w, b in best})
    return out


def test_item_cf_neighbours_are_session_cosine(spark):
    window, n = 2, 2
    pairs = Counter()
    for seq in _sequences(by_session=True):
        for i, a in enumerate(seq):
            for b in seq[i + 1 : i + 1 + window]:
                if a != b:
                    pairs[(a, b)] += 1
                    pairs[(b, a)] += 1
    events = Counter(i for evs in EVENTS.values() for i, _, _ in evs)
    want = _top({p: c / math.sqrt(events[p[0]] * events[p[1]]) for p, c in pairs.items()}, n)
    got = {(r["a"], r["b"]): r["weight"] for r in cooccurrence_neighbours(_frame(spark), window, n).collect()}
    assert got.keys() == want.keys()
    assert all(got[p] == pytest.approx(w) for p, w in want.items())


def test_next_item_route_is_decayed_transition_probability(spark):
    counts = Counter((a, b) for seq in _sequences(by_session=False) for a, b in zip(seq, seq[1:]) if a != b)
    out_of = Counter()
    for (a, _), c in counts.items():
        out_of[a] += c
    prob = {(a, b): c / out_of[a] for (a, b), c in counts.items()}
    contexts = _frame(spark)
    neighbours = transition_neighbours(contexts, 10)
    assert {(r["a"], r["b"]): r["weight"] for r in neighbours.collect()} == pytest.approx(prob)
    decay, k = 0.5, 2
    got = neighbour_route(recent_items(contexts, 2), neighbours, decay, contexts, k, "next_item")
    assert tuple(got.columns) == ROUTE_COLUMNS
    rows = got.toPandas()
    for user, evs in EVENTS.items():  # reference: latest two items, seen ones dropped
        latest = [i for i, _, _ in sorted(evs, key=lambda e: -e[1])[:2]]
        seen = {i for i, _, _ in evs}
        scores = defaultdict(float)
        for r, a in enumerate(latest):
            for (x, b), p in prob.items():
                if x == a and b not in seen:
                    scores[b] += decay**r * p
        want = sorted(scores.items(), key=lambda ib: (-ib[1], ib[0]))[:k]
        mine = rows[rows[USER] == user].sort_values("route_rank")
        assert list(mine[ITEM]) == [i for i, _ in want] and list(mine["route_rank"]) == list(range(1, len(want) + 1))
        assert list(mine["score"]) == pytest.approx([s for _, s in want])


def test_popularity_routes_recent_window_and_cold_start(spark):
    contexts = _frame(spark).drop(SESSION)
    users = spark.createDataFrame([(VALID, 1), (VALID, 3), (VALID, 9)], f"{SPLIT} STRING, {USER} BIGINT")
    frame = contexts.toPandas()
    counts = frame.groupby(ITEM).size()
    recent = frame[frame[TS] > frame[TS].max() - 1.5 * DAY].groupby(ITEM).size()
    for days, ref in ((None, counts), (1.5, recent)):
        got = popularity_route(contexts, users, contexts, 2, "p", days).toPandas()
        for user in (1, 3, 9):
            seen = set(frame[frame[USER] == user][ITEM])
            want = sorted(((-c, i) for i, c in ref.items() if i not in seen))[:2]
            mine = got[got[USER] == user].sort_values("route_rank")
            assert list(mine[ITEM]) == [i for _, i in want] and list(mine["score"]) == [-c for c, _ in want]
    assert [r[USER] for r in cold_users(users, contexts).collect()] == [9]


def _routes(spark):
    rows = [
        (VALID, 1, 10, "pq", -0.1, 1),
        (VALID, 1, 11, "pq", -0.2, 2),
        (VALID, 1, 12, "pq", -0.3, 3),
        (VALID, 1, 11, "item_cf", 0.9, 1),
        (VALID, 1, 13, "item_cf", 0.5, 2),
        (VALID, 1, 14, "popularity", 50.0, 1),
        (VALID, 1, 10, "popularity", 40.0, 2),
        (TEST, 2, 10, "next_item", 0.7, 1),
        (TEST, 2, 15, "next_item", 0.2, 2),
    ]
    return spark.createDataFrame(
        rows, f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, route STRING, score DOUBLE, route_rank INT"
    )


def test_merge_quotas_dedupe_flags_and_budget(spark):
    routes = _routes(spark)
    merged = merge_routes(routes, {"pq": 2, "item_cf": 1, "popularity": 2, "next_item": 5}, budget=3)
    got = {(r[USER], r[ITEM]): r.asDict() for r in merged.collect()}
    # user 1: pq 10,11 (12 over quota), item_cf 11 (13 over quota), popularity 14,10 -> {10, 11, 14};
    # best ranks 1 (10: pq 1, pop 2), 1 (11: pq 2, cf 1), 1 (14) ; routes agreeing 2, 2, 1 -> 10, 11, 14
    assert sorted(got) == [(1, 10), (1, 11), (1, 14), (2, 10), (2, 15)]
    assert [got[(1, i)]["recall_rank"] for i in (10, 11, 14)] == [1, 2, 3]
    one = got[(1, 10)]
    assert (one["in_pq"], one["in_popularity"], one["in_item_cf"], one["n_routes"]) == (1, 1, 0, 2)
    assert (one["rank_pq"], one["rank_popularity"], one["rank_item_cf"]) == (1, 2, MISSING_RANK)
    assert (one["score_popularity"], one["score_item_cf"], one["distance"]) == (40.0, 0.0, pytest.approx(0.1))
    assert got[(1, 14)]["distance"] is None and got[(2, 15)]["score_next_item"] == 0.2
    assert set(ROUTE_FEATURES) <= set(merged.columns)
    cut = merge_routes(routes, {"pq": 2, "item_cf": 1, "popularity": 2}, budget=2)
    assert sorted((r[USER], r[ITEM]) for r in cut.collect()) == [(1, 10), (1, 11)]
    targets = spark.createDataFrame([(VALID, 1, 13), (TEST, 2, 15)], f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT")
    shares = route_recall(routes, merged, targets, {"pq": 2, "item_cf": 2, "next_item": 5})
    assert shares == {
        VALID: {"pq": 0.0, "item_cf": 1.0, "next_item": 0.0, "merged": 0.0},
        TEST: {"pq": 0.0, "item_cf": 0.0, "next_item": 1.0, "merged": 1.0},
    }
    lists = {(r["method"], r[USER]): r["items"] for r in route_lists(routes, 2, VALID).collect()}
    assert lists == {("pq", 1): [10, 11], ("item_cf", 1): [11, 13], ("popularity", 1): [14, 10]}


def test_coarse_cut_keeps_the_budget_and_learns_the_signal(spark):
    # 40 users per split, 6 candidates each; the target is always the item the item_cf route ranks first
    rows, targets = [], []
    for split in (VALID, TEST):
        for u in range(40):
            for j in range(6):
                rows.append((split, u, j, "item_cf", 1.0 / (j + 1), j + 1))
                rows.append((split, u, j, "pq", -float((j * 7 + u) % 6), (j * 7 + u) % 6 + 1))
            targets.append((split, u, 0))
    routes = spark.createDataFrame(
        rows, f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, route STRING, score DOUBLE, route_rank INT"
    )
    merged = merge_routes(routes, {"pq": 6, "item_cf": 6}, budget=6)
    contexts = spark.createDataFrame(
        [(VALID, 0, 3, 0), (TEST, 0, 3, 0)], f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT"
    )
    target_df = spark.createDataFrame(targets, f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT")
    cut = coarse_cut(merged, contexts, target_df, budget=2).toPandas()
    assert (cut.groupby([SPLIT, USER]).size() == 2).all() and len(cut) == 2 * 40 * 2
    assert COARSE_SCORE in cut.columns and set(merged.columns) <= set(cut.columns)
    kept = cut[cut[ITEM] == 0].groupby(SPLIT).size()
    assert kept[TEST] == 40  # every test target survives the cut
    assert merged.filter(F.col("n_routes") == 2).count() == 2 * 40 * 6
