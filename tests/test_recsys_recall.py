"""Recall candidates (pipelines/recsys/queries.py, recall.py): query vectors and PQ top-K without seen items,
checked against numpy brute force over the same PQ reconstructions."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.pq.encoder import PQEncoder
from pipelines.recsys.queries import recent_items, unit_item_vectors, user_queries
from pipelines.recsys.recall import pq_candidates
from pipelines.recsys.tables import ITEM, SPLIT, TEST, TS, USER, VALID

RNG = np.random.default_rng(11)
N_ITEMS, DIM, K = 300, 8, 20
ITEM_IDS = np.arange(N_ITEMS) + 1000


@pytest.fixture(scope="module")
def index(spark):
    vectors = RNG.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    table = spark.createDataFrame(
        [(str(i), v.tolist()) for i, v in zip(ITEM_IDS, vectors)], "item_id STRING, vector ARRAY<FLOAT>"
    )
    model = PQEncoder(inputCol="vector", outputCol="code", m=4, nbits=4, metric="cosine", seed=3).fit(table)
    codes = model.transform(table).select("item_id", "code").cache()
    packed = np.stack(
        [np.frombuffer(r["code"], np.uint8) for r in codes.orderBy(F.col("item_id").cast("long")).collect()]
    )
    return model, codes, model.decode_array(packed)


def test_candidates_are_the_nearest_unseen_items(spark, index):
    model, codes, recon = index
    users = [(s, u) for s in (VALID, TEST) for u in range(7)]
    queries = {key: RNG.normal(size=DIM).astype(np.float32) for key in users}
    seen = {key: set(RNG.choice(ITEM_IDS, 5, replace=False).tolist()) for key in users}
    seen[(TEST, 3)] = set(ITEM_IDS[:290].tolist())  # a heavy user: only 10 unseen items are left
    q_df = spark.createDataFrame(
        [(s, u, v.tolist()) for (s, u), v in queries.items()], f"{SPLIT} STRING, {USER} BIGINT, vector ARRAY<FLOAT>"
    )
    seen_df = spark.createDataFrame(
        [(s, u, int(i)) for (s, u), items in seen.items() for i in items],
        f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT",
    )
    got = pq_candidates(model, codes, q_df, seen_df, K, T.LongType(), block_users=4).collect()
    by_user: dict = {}
    for r in got:
        by_user.setdefault((r[SPLIT], r[USER]), []).append((r["recall_rank"], r[ITEM], r["distance"]))
    for key, q in queries.items():
        unit = q / np.linalg.norm(q)
        dist = 1.0 - recon @ unit
        allowed = [(d, i) for d, i in zip(dist, ITEM_IDS) if i not in seen[key]]
        expected = sorted(allowed)[:K]
        found = sorted(by_user[key])
        assert [r for r, _, _ in found] == list(range(1, len(expected) + 1))
        assert not {i for _, i, _ in found} & seen[key]
        assert {i for _, i, _ in found} == {i for _, i in expected}, key
        np.testing.assert_allclose([d for _, _, d in found], [d for d, _ in expected], atol=1e-5)
    assert len(by_user[(TEST, 3)]) == 10
    no_exclusion = pq_candidates(model, codes, q_df, None, K, T.LongType())
    assert no_exclusion.groupBy(SPLIT, USER).count().filter(F.col("count") != K).count() == 0


def test_query_vectors_are_recency_weighted_means_of_unit_vectors(spark):
    events = spark.createDataFrame(
        [(VALID, 1, 10, 1), (VALID, 1, 11, 2), (VALID, 1, 12, 3), (VALID, 1, 99, 4), (TEST, 2, 10, 5)],
        f"{SPLIT} STRING, {USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT",
    )
    vectors = spark.createDataFrame(
        [("10", [3.0, 4.0]), ("11", [0.0, 2.0]), ("12", [1.0, 0.0])], "word STRING, vector ARRAY<FLOAT>"
    )  # item 99 has no vector
    recent = recent_items(events, 3)
    assert sorted((r[ITEM], r["recency"]) for r in recent.filter(F.col(USER) == 1).collect()) == [
        (11, 2),
        (12, 1),
        (99, 0),
    ]
    got = {r[USER]: np.array(r["vector"]) for r in user_queries(recent, unit_item_vectors(vectors), 0.5).collect()}
    expected = (0.5 * np.array([1.0, 0.0]) + 0.25 * np.array([0.0, 1.0])) / 0.75
    np.testing.assert_allclose(got[1], expected, rtol=1e-6)
    np.testing.assert_allclose(got[2], [0.6, 0.8], rtol=1e-6)
    with pytest.raises(ValueError, match="decay must be in"):
        user_queries(recent, unit_item_vectors(vectors), 0.0)
