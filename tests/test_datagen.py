"""Demo data: deterministic by seed whatever the partitioning, sized by one parameter, with real structure."""

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pipelines.datagen import demo_tables, raw_files, scaled
from pipelines.datagen.clicks import clicks_chunk
from pipelines.datagen.criteo_like import (
    CATEGORICAL,
    CATEGORICAL_NULL_SHARE,
    NUMERIC,
    NUMERIC_NULL_SHARE,
    criteo_like,
    criteo_like_chunk,
)
from pipelines.datagen.sessions import sessions_chunk
from pipelines.datagen.world import build_world


@pytest.fixture(scope="module")
def small(spark):
    return {k: v.cache() for k, v in demo_tables(spark, size=0.1, seed=7).items()}


def test_same_seed_same_rows_on_any_partitioning(spark, small):
    again = demo_tables(spark, size=0.1, seed=7)
    for key, df in small.items():
        assert_df_equality(df, again[key].repartition(3), ignore_row_order=True)


def test_other_seed_other_rows(spark, small):
    other = demo_tables(spark, size=0.1, seed=8)["clicks"]
    assert other.exceptAll(small["clicks"]).count() > 0


def test_size_scales_every_table(small):
    n = scaled(0.1)
    assert small["corpus"].count() == n["corpus"] == 200
    assert small["clicks"].count() == n["clicks"] == 5000
    assert small["items"].count() == n["items"] == 100
    assert small["interactions"].select("user_id").distinct().count() == n["users"] == 100
    with pytest.raises(ValueError):
        scaled(0)


def test_sessions_stay_on_topic(small):
    joined = small["interactions"].join(small["items"], "item_id")
    share = (
        joined.groupBy("session_id", "topic")
        .count()
        .groupBy("session_id")
        .agg((F.max("count") / F.sum("count")).alias("top"))
        .agg(F.avg("top"))
        .first()[0]
    )
    assert share > 0.8  # 10% noise: most items of a session share its topic


def test_successors_cycle_through_each_topic():
    world = build_world(5, n_items=200)
    successor = world.item_successor
    assert sorted(successor) == list(range(200))  # every item is one item's successor
    assert (world.item_topic[successor] == world.item_topic).all()
    item, steps = 0, 0
    while True:
        item, steps = successor[item], steps + 1
        if item == 0:
            break
    assert steps == (world.item_topic == world.item_topic[0]).sum()  # one cycle through the whole topic


def test_sessions_go_on_to_successors_and_fresh_items():
    sessions = {
        follow: pd.concat([sessions_chunk(3, c, c * 200, 200, follow=follow) for c in range(2)])
        for follow in (0.0, 0.35)
    }
    world = build_world(3)

    def next_is_successor(df):
        df = df.sort_values(["session_id", "ts"])
        same = df.session_id.values[1:] == df.session_id.values[:-1]
        return (world.item_successor[df.item_id.values[:-1]] == df.item_id.values[1:])[same].mean()

    assert next_is_successor(sessions[0.0]) < 0.03 < 0.15 < next_is_successor(sessions[0.35])
    df = sessions[0.35]
    age = (df.ts - np.datetime64("2026-01-01")).dt.total_seconds().values / 86400 - world.item_release[df.item_id]
    assert (age < 0).mean() < 0.01  # hardly anyone takes an item before its release
    assert np.median(age) < 14  # interest fades 10 days after release (20 days without the fade)


def test_documents_of_a_topic_are_alike(small):
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = small["corpus"].orderBy("doc_id").toPandas()
    vectors = TfidfVectorizer().fit_transform(docs.text)
    cosine = (vectors @ vectors.T).toarray()
    same = docs.topic.values[:, None] == docs.topic.values[None, :]
    off_diagonal = ~np.eye(len(docs), dtype=bool)
    within, across = cosine[same & off_diagonal].mean(), cosine[~same].mean()
    assert within > 2 * across, (within, across)


def test_click_probability_has_interactions():
    df = clicks_chunk(seed=1, chunk=0, start=0, count=200_000)
    mobile = df.c1 == "mobile"
    high = df.i3 > 0.7
    lift_mobile = df.label[mobile & high].mean() - df.label[mobile & ~high & (df.i3 > 0.2)].mean()
    lift_other = df.label[~mobile & high].mean() - df.label[~mobile & ~high & (df.i3 > 0.2)].mean()
    assert lift_mobile > 0.1 and abs(lift_other) < 0.03  # the i3 step exists only on mobile
    assert 0.2 < df.label.mean() < 0.32
    assert 0.1 < np.isnan(df.i5).mean() < 0.2


def test_raw_files_break_the_requested_share(spark, small):
    raw = raw_files(small, seed=7, malformed_fraction=0.05)
    broken = raw["clicks"].df.filter(F.col("i1") == "n/a?").count()
    assert 0.03 < broken / 5000 < 0.07
    clean = raw_files(small, seed=7, malformed_fraction=0.0)
    assert clean["clicks"].df.filter(F.col("i1") == "n/a?").count() == 0


# The Criteo-like table (pipelines/datagen/criteo_like.py): the GBDT+LR benchmark's synthetic input.


@pytest.fixture(scope="module")
def criteo(spark):
    return criteo_like(spark, 20_000, seed=11, chunk_size=3_000).cache()  # 7 chunks, the last one short


@pytest.fixture(scope="module")
def criteo_rows(criteo):
    return criteo.toPandas()


def test_criteo_like_has_the_samples_columns(spark, criteo, criteo_rows):
    assert criteo.columns == ["Label", *NUMERIC, *CATEGORICAL]
    assert dict(criteo.dtypes) == {
        "Label": "int",
        **{c: "double" for c in NUMERIC},
        **{c: "string" for c in CATEGORICAL},
    }
    assert len(criteo_rows) == 20_000
    assert set(criteo_rows.Label) == {0, 1}
    values = criteo_rows[NUMERIC].stack()  # non-null counts: integers from -1 up, heavy-tailed
    assert values.min() == -1 and (values == np.floor(values)).all() and values.max() > 10_000
    assert (criteo_rows[NUMERIC].median() <= 3000).all()
    for col in CATEGORICAL:
        tokens = criteo_rows[col].dropna()
        assert tokens.str.fullmatch(r"[0-9a-f]{8}").all(), col
        assert 3 <= tokens.nunique() <= 25, col
        shares = tokens.value_counts(normalize=True)
        assert tokens.nunique() < 9 or shares.iloc[0] > 5 * shares.iloc[-1], col  # Zipf-like, not uniform
    with pytest.raises(ValueError):
        criteo_like(spark, 0)


def test_criteo_like_same_seed_same_rows_on_any_partitioning(spark, criteo, criteo_rows):
    assert_df_equality(
        criteo, criteo_like(spark, 20_000, seed=11, chunk_size=3_000).repartition(3), ignore_row_order=True
    )
    # Chunk c holds the same rows whoever makes it: the executors' table is the chunks made here, in order.
    local = pd.concat(
        [criteo_like_chunk(11, c, c * 3_000, min(3_000, 20_000 - c * 3_000)) for c in range(7)], ignore_index=True
    )
    pd.testing.assert_frame_equal(criteo_rows, local, check_dtype=False)
    other = criteo_like(spark, 20_000, seed=12, chunk_size=3_000)
    assert other.exceptAll(criteo).count() > 19_000


def test_criteo_like_null_shares(criteo):
    shares = (
        criteo.select(*[F.avg(F.col(c).isNull().cast("double")).alias(c) for c in NUMERIC + CATEGORICAL])
        .first()
        .asDict()
    )
    expected = {**NUMERIC_NULL_SHARE, **CATEGORICAL_NULL_SHARE}
    for col, share in shares.items():
        assert abs(share - expected[col]) < 0.02, (col, share, expected[col])
    assert all(0.05 <= NUMERIC_NULL_SHARE[c] <= 0.45 for c in NUMERIC)
    assert criteo.filter(F.greatest(*[F.isnan(c).cast("int") for c in NUMERIC]) == 1).count() == 0  # nulls, not NaN


def test_criteo_like_base_rate(criteo_rows):
    assert 0.22 < criteo_rows.Label.mean() < 0.28
    # Missing values carry a little signal (I4 and I13 go missing together, with fewer clicks).
    by_missing = criteo_rows.groupby(criteo_rows.I4.isna()).Label.mean()
    assert by_missing[False] - by_missing[True] > 0.02


def test_criteo_like_trees_beat_a_linear_model_on_raw_columns(criteo_rows):
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features, y = criteo_rows[NUMERIC + CATEGORICAL], criteo_rows.Label
    train = np.random.default_rng(0).random(len(y)) < 0.75
    trees = HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=150,
        max_leaf_nodes=15,
        min_samples_leaf=50,
        categorical_features="from_dtype",
        early_stopping=False,
    )
    as_categories = features.astype({c: "category" for c in CATEGORICAL})
    trees.fit(as_categories[train], y[train])
    trees_auc = roc_auc_score(y[~train], trees.predict_proba(as_categories[~train])[:, 1])
    linear = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="?"), OneHotEncoder(handle_unknown="ignore")
                ),
                CATEGORICAL,
            ),
        ),
        LogisticRegression(max_iter=1000),
    )
    linear.fit(features[train], y[train])
    linear_auc = roc_auc_score(y[~train], linear.predict_proba(features[~train])[:, 1])
    assert 0.66 < trees_auc < 0.80 and trees_auc > linear_auc + 0.015, (trees_auc, linear_auc)
