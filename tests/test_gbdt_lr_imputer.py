"""MedianImputer: exact medians whatever the partitioning, the same medians of a sample on every fit, nulls and
NaNs imputed."""

import numpy as np
import pytest

from pipelines.gbdt_lr.imputer import MedianImputer


def test_medians_are_exact_and_do_not_depend_on_partitioning(spark):
    x = np.random.default_rng(4).lognormal(size=1001)
    df = spark.createDataFrame([(float(v), float(i) if i % 3 else None) for i, v in enumerate(x)], "a DOUBLE, b DOUBLE")
    imputer = MedianImputer(inputCols=["a", "b"], outputCols=["a_imp", "b_imp"])
    medians = [imputer.medians(df.repartition(n, "a")) for n in (1, 7)]
    assert medians[0] == medians[1] == [np.median(x), np.median([i for i in range(1001) if i % 3])]


def test_nulls_and_nans_take_the_median_other_values_stay(spark):
    df = spark.createDataFrame([(1.0,), (None,), (float("nan"),), (3.0,), (10.0,)], "a DOUBLE")
    out = MedianImputer(inputCols=["a"], outputCols=["a_imp"]).fit(df).transform(df)
    assert [r.a_imp for r in out.collect()] == [1.0, 3.0, 3.0, 3.0, 10.0]


def test_sampled_medians_repeat_and_a_column_without_values_is_an_error(spark):
    df = (
        spark.range(5000)
        .selectExpr("CAST(id AS DOUBLE) AS a", "IF(id = 4321, 7.0D, NULL) AS rare", "CAST(NULL AS DOUBLE) AS empty")
        .cache()
    )
    imputer = MedianImputer(inputCols=["a", "rare"], outputCols=["a_imp", "rare_imp"], sampleSize=500, seed=3)
    first = imputer.medians(df)
    assert imputer.medians(df) == first
    assert abs(first[0] - 2499.5) < 500 and first[1] == 7.0  # a sample's median; the one value, sampled or not
    with pytest.raises(ValueError, match=r"no median of \['empty'\]"):
        MedianImputer(inputCols=["empty"], outputCols=["e"]).medians(df)


def test_saved_and_loaded_with_its_params(spark, tmp_path):
    imputer = MedianImputer(inputCols=["a"], outputCols=["a_imp"], sampleSize=7, seed=5)
    imputer.save(str(tmp_path / "imputer"))
    loaded = MedianImputer.load(str(tmp_path / "imputer"))
    assert (loaded.getInputCols(), loaded.getOutputCols(), loaded.getOrDefault("sampleSize"), loaded.getSeed()) == (
        ["a"],
        ["a_imp"],
        7,
        5,
    )
