"""Seeded draws by row values: the same rows whatever the order, the asked proportions, independent purposes."""

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pipelines.sampling import hash_sample, hash_split


@pytest.fixture(scope="module")
def table(spark):
    return spark.range(20_000).select(F.col("id"), (F.col("id") % 7).alias("k"), (F.col("id") * 0.5).alias("x"))


def test_split_is_the_same_whatever_the_order_and_partitioning(table):
    shuffled = table.repartition(5, "x").sortWithinPartitions(F.rand(3))
    for a, b in zip(hash_split(table.coalesce(1), [0.7, 0.3], 42, "t"), hash_split(shuffled, [0.7, 0.3], 42, "t")):
        assert_df_equality(a, b, ignore_row_order=True)
    # Spark's own randomSplit is not: rows move between parts when the order changes
    a = table.coalesce(1).randomSplit([0.7, 0.3], 42)[1]
    b = shuffled.randomSplit([0.7, 0.3], 42)[1]
    assert a.exceptAll(b).count() > 0


def test_parts_cover_the_table_once_in_the_asked_proportions(table):
    parts = hash_split(table, [2, 1, 1], 7, "t")
    counts = [p.count() for p in parts]
    assert sum(counts) == 20_000
    assert parts[0].unionByName(parts[1]).unionByName(parts[2]).distinct().count() == 20_000
    assert counts[0] / 20_000 == pytest.approx(0.5, abs=0.02) and counts[1] / 20_000 == pytest.approx(0.25, abs=0.02)


def test_seeds_and_purposes_draw_independently(table):
    a = hash_sample(table, 0.5, 1, "first")
    assert a.count() / 20_000 == pytest.approx(0.5, abs=0.02)
    for other in (hash_sample(table, 0.5, 2, "first"), hash_sample(table, 0.5, 1, "second")):
        both = a.join(other, "id").count() / 20_000
        assert both == pytest.approx(0.25, abs=0.02)  # independent halves overlap in a quarter


def test_bad_weights_are_one_sentence(table):
    with pytest.raises(ValueError, match=r"split weights must be non-negative with a positive sum, got \[0, 0\]"):
        hash_split(table, [0, 0], 1, "t")
