"""Demo data: deterministic by seed whatever the partitioning, sized by one parameter, with real structure."""
import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pipelines.datagen import demo_tables, raw_files, scaled
from pipelines.datagen.clicks import clicks_chunk


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
    share = (joined.groupBy("session_id", "topic").count()
             .groupBy("session_id").agg((F.max("count") / F.sum("count")).alias("top"))
             .agg(F.avg("top")).first()[0])
    assert share > 0.8  # 10% noise: most items of a session share its topic


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
