"""Bad input: every case raises MetricsInputError naming the column and the count of offending rows."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pyspark.sql import functions as F
from sklearn import metrics as skm

from pipelines import metrics
from pipelines.errors import InputError
from pipelines.metrics import MetricsInputError

NAN, INF = math.nan, math.inf
SCHEMA = "score double, label double, w double, g string"


def _rows(n: int = 40) -> list[tuple]:
    """Valid rows: alternating labels, distinct scores, weight 1, four groups."""
    return [(i / n, float(i % 2), 1.0, f"g{i % 4}") for i in range(n)]


def _with(rows: list[tuple], column: int, values: dict[int, object]) -> list[tuple]:
    out = [list(row) for row in rows]
    for index, value in values.items():
        out[index][column] = value
    return [tuple(row) for row in out]


@pytest.mark.parametrize(
    "column, values, message",
    [
        (0, {1: None, 2: NAN, 3: None}, "column 'score': 3 rows with null or NaN values"),
        (0, {4: INF, 5: -INF}, "column 'score': 2 rows with infinite values"),
        (1, {6: None, 7: NAN}, "column 'label': 2 rows with null or NaN values"),
        (1, {8: 2.0, 9: -1.0, 10: 0.5}, "column 'label': 3 rows with labels outside {0, 1}"),
        (2, {11: -0.5}, "column 'w': 1 rows with negative or infinite weights"),
        (2, {12: None}, "column 'w': 1 rows with null or NaN values"),
    ],
)
def test_bad_binary_input_names_column_and_count(spark, column, values, message):
    df = spark.createDataFrame(_with(_rows(), column, values), SCHEMA)
    with pytest.raises(MetricsInputError) as error:
        metrics.roc_auc(df, "score", "label", "w")
    assert message in str(error.value)


def test_all_problems_in_one_message_with_the_drop_hint(spark):
    rows = _with(_with(_rows(), 0, {0: None}), 1, {1: 3.0, 2: 4.0})
    with pytest.raises(MetricsInputError) as error:
        metrics.log_loss(spark.createDataFrame(rows, SCHEMA), "score", "label")
    assert str(error.value) == (
        "column 'score': 1 rows with null or NaN values; "
        "column 'label': 2 rows with labels outside {0, 1} "
        "(drop_invalid=True excludes rows with null or NaN values)"
    )


def test_configured_label_outside(spark):
    df = spark.createDataFrame([(0.1, "yes"), (0.2, "no"), (0.3, "maybe"), (0.4, "yes")], "score double, y string")
    with pytest.raises(MetricsInputError, match=r"column 'y': 1 rows with labels outside \{no, yes\}"):
        metrics.roc_auc(df, "score", "y", positive_label="yes", negative_label="no")


@pytest.mark.parametrize("label, kind", [(1.0, "positive"), (0.0, "negative")])
def test_single_class(spark, label, kind):
    df = spark.createDataFrame([(i / 10, label, 1.0, "g") for i in range(10)], SCHEMA)
    with pytest.raises(MetricsInputError, match=f"column 'label': all 10 rows are {kind}"):
        metrics.roc_auc(df, "score", "label")


def test_a_class_with_zero_weight(spark):
    rows = [(row[0], row[1], 0.0 if row[1] == 1.0 else 1.0, row[3]) for row in _rows()]
    with pytest.raises(MetricsInputError, match="column 'w': all 20 positive rows have weight 0"):
        metrics.pr_auc(spark.createDataFrame(rows, SCHEMA), "score", "label", "w")


def test_missing_and_non_numeric_columns(spark):
    df = spark.createDataFrame(_rows(), SCHEMA)
    with pytest.raises(InputError, match="column 'nope' not found"):
        metrics.roc_auc(df, "nope", "label")
    with pytest.raises(MetricsInputError, match="column 'g' must be numeric, got string"):
        metrics.roc_auc(df, "g", "label")


def test_empty_input(spark):
    with pytest.raises(MetricsInputError, match="no rows: the input is empty"):
        metrics.roc_auc(spark.createDataFrame([], SCHEMA), "score", "label")


def test_drop_invalid_excludes_null_rows_and_reports_the_count(spark):
    rows = _with(_with(_rows(), 0, {0: None, 5: NAN}), 2, {9: None})
    df = spark.createDataFrame(rows, SCHEMA)
    kept = pd.DataFrame([row for i, row in enumerate(rows) if i not in (0, 5, 9)], columns=["s", "y", "w", "g"])
    expected = skm.roc_auc_score(kept["y"], kept["s"], sample_weight=kept["w"])
    assert metrics.roc_auc(df, "score", "label", "w", drop_invalid=True) == pytest.approx(expected, abs=1e-12)
    report = metrics.evaluation_report(df, score_col="score", label_col="label", weight_col="w", drop_invalid=True)
    assert (report["rows"], report["rows_dropped"]) == (37, 3)
    assert report["roc_auc"] == pytest.approx(expected, abs=1e-12)


def test_drop_invalid_still_rejects_bad_values(spark):
    df = spark.createDataFrame(_with(_rows(), 0, {0: None, 1: INF}), SCHEMA)
    with pytest.raises(MetricsInputError) as error:
        metrics.roc_auc(df, "score", "label", drop_invalid=True)
    assert str(error.value) == "column 'score': 1 rows with infinite values"


def test_all_rows_invalid(spark):
    df = spark.createDataFrame([(None, 1.0, 1.0, "g")] * 3, SCHEMA)
    with pytest.raises(MetricsInputError, match="no valid rows: the input has 3 rows, all with null or NaN"):
        metrics.roc_auc(df, "score", "label", drop_invalid=True)


def test_log_loss_needs_probabilities(spark):
    df = spark.createDataFrame(_with(_rows(), 0, {3: 1.5, 4: -0.1}), SCHEMA)
    with pytest.raises(MetricsInputError, match=r"column 'score': 2 rows with scores outside \[0, 1\]"):
        metrics.log_loss(df, "score", "label")


def test_grouped_auc_bad_groups(spark):
    df = spark.createDataFrame(_with(_rows(), 3, {0: None, 1: None}), SCHEMA)
    with pytest.raises(MetricsInputError, match="column 'g': 2 rows with null or NaN values"):
        metrics.grouped_auc(df, "g", "score", "label")
    nested = df.select("score", "label", F.array("g").alias("g"))
    with pytest.raises(MetricsInputError, match="column 'g' must be of a primitive or string type, got array<string>"):
        metrics.grouped_auc(nested, "g", "score", "label")
    one_class_groups = spark.createDataFrame([(i / 10, float(i % 2), 1.0, f"g{i % 2}") for i in range(10)], SCHEMA)
    with pytest.raises(MetricsInputError, match="column 'g': none of the 2 groups has both classes"):
        metrics.grouped_auc(one_class_groups, "g", "score", "label")


def test_multiclass_bad_input(spark):
    df = spark.createDataFrame(
        [(1.0, 2.0, 1.0), (None, 1.0, 1.0), (NAN, 0.0, 1.0), (2.0, 2.0, -1.0)],
        "label double, prediction double, w double",
    )
    with pytest.raises(MetricsInputError) as error:
        metrics.multiclass_metrics(df, "label", "prediction", "w")
    assert str(error.value).startswith(
        "column 'label': 2 rows with null or NaN values; column 'w': 1 rows with negative or infinite weights"
    )
    kept = metrics.multiclass_metrics(df.where("w >= 0"), "label", "prediction", drop_invalid=True)
    assert (kept.rows, kept.rows_dropped, kept.labels) == (1, 2, [1.0, 2.0])


def test_ranking_bad_input(spark):
    recs = spark.createDataFrame([(1, [1, 2])], "user int, items array<int>")
    relevant = spark.createDataFrame([(1, 1), (None, 2), (2, None)], "user int, item int")
    with pytest.raises(
        MetricsInputError,
        match="column 'user': 1 rows with null or NaN values; column 'item': 1 rows with null or NaN values",
    ):
        metrics.ranking_metrics(recs, relevant, 2)
    assert metrics.ranking_metrics(recs, relevant, 2, drop_invalid=True).users == 1
    with pytest.raises(MetricsInputError, match="column 'user' must be an array of items, got int"):
        metrics.ranking_metrics(recs, relevant, 2, items_col="user")
    with pytest.raises(ValueError, match="k must be at least 1"):
        metrics.ranking_metrics(recs, relevant, 0)
