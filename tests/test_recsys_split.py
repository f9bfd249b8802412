"""Leave-last-out split, contexts and sessions of the recommender (pipelines/recsys/split.py, sessions.py)."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pipelines.recsys.sessions import sessionize
from pipelines.recsys.split import context, leave_last_out, with_splits
from pipelines.recsys.tables import ITEM, SESSION, SPLIT, TEST, TS, USER, VALID

EVENTS = [  # user, item, ts
    (1, 10, 100),
    (1, 11, 200),
    (1, 12, 300),
    (1, 13, 400),
    (1, 14, 500),
    (2, 20, 100),
    (2, 21, 100),
    (2, 22, 100),
    (2, 23, 50),  # three events at the same second
    (3, 30, 10),
    (3, 31, 20),  # too short: stays in history
    (4, 40, 7),
    (4, 41, 9),
    (4, 40, 8),  # a repeated item
]


def frame(spark, rows=EVENTS):
    df = spark.createDataFrame(rows, f"{USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT")
    return df.withColumn(SESSION, F.xxhash64(USER))


def test_targets_are_the_last_two_events_by_time_and_history_is_the_rest(spark):
    split = leave_last_out(frame(spark), min_history=1)
    targets = {(r[USER], r[SPLIT]): r[ITEM] for r in split.targets.collect()}
    assert targets[(1, TEST)] == 14 and targets[(1, VALID)] == 13
    assert targets[(4, TEST)] == 41 and targets[(4, VALID)] == 40
    assert (3, TEST) not in targets and (3, VALID) not in targets
    # user 2: 23 is first (ts 50); the tie at ts 100 is broken by the hash, not by file order
    assert {targets[(2, TEST)], targets[(2, VALID)]} <= {20, 21, 22}
    shuffled = leave_last_out(frame(spark, list(reversed(EVENTS))).repartition(3), 1)
    assert_df_equality(shuffled.targets, split.targets, ignore_row_order=True)
    history = {(r[USER], r[ITEM], r[TS]) for r in split.history.collect()}
    held = {(r[USER], r[ITEM], r[TS]) for r in split.targets.collect()}
    assert history | held == set(EVENTS) and not history & held and len(history) + len(held) == len(EVENTS)


def test_no_target_event_precedes_a_history_event_of_its_user(spark):
    split = leave_last_out(frame(spark), 1)
    latest_history = split.history.groupBy(USER).agg(F.max(TS).alias("h"))
    targets = split.targets.join(latest_history, USER)
    assert targets.filter(F.col(TS) < F.col("h")).count() == 0
    valid = split.targets.filter(F.col(SPLIT) == VALID).select(USER, F.col(TS).alias("v"))
    test = split.targets.filter(F.col(SPLIT) == TEST).select(USER, F.col(TS).alias("t"))
    assert valid.join(test, USER).filter(F.col("v") > F.col("t")).count() == 0


def test_min_history_and_contexts(spark):
    split = leave_last_out(frame(spark), min_history=3)
    assert sorted(r[USER] for r in split.targets.filter(F.col(SPLIT) == TEST).collect()) == [1]
    valid_ctx, test_ctx = (context(split.history, split.targets, s) for s in (VALID, TEST))
    assert valid_ctx.filter(F.col(USER) == 1).count() == 3 and test_ctx.filter(F.col(USER) == 1).count() == 4
    assert test_ctx.filter((F.col(USER) == 1) & (F.col(ITEM) == 14)).count() == 0  # the test target never
    both = with_splits(split.history, split.targets)
    assert both.filter(F.col(SPLIT) == TEST).count() == test_ctx.count()
    with pytest.raises(ValueError, match="min_history must be at least 1"):
        leave_last_out(frame(spark), 0)


def test_sessions_from_time_gaps(spark):
    rows = [(1, 1, 0), (1, 2, 50), (1, 3, 500), (1, 4, 520), (2, 5, 0), (2, 6, 1000)]
    df = spark.createDataFrame(rows, f"{USER} BIGINT, {ITEM} BIGINT, {TS} BIGINT")
    got = {r[ITEM]: r[SESSION] for r in sessionize(df, 100).collect()}
    assert got[1] == got[2] != got[3] == got[4] and got[5] != got[6]
    whole = {r[ITEM]: r[SESSION] for r in sessionize(df, 0).collect()}
    assert whole[1] == whole[4] != whole[5] == whole[6]
