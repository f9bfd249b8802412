"""ExactBinaryEvaluator: each metric equals scikit-learn's (or a pandas GAUC) on a small table, a CrossValidator
over LogisticRegression picks the regParam a hand-written loop over the same folds picks, and it saves and loads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from pyspark.sql.types import IntegerType, StructField, StructType
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from pipelines.errors import InputError
from pipelines.metrics.evaluators import ExactBinaryEvaluator
from pipelines.metrics.validation import MetricsInputError


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """300 rows, 30 users: a label, a probability with ties, a weight, two features and a fold id."""
    rng = np.random.default_rng(21)
    n = 300
    x = rng.normal(size=(n, 2))
    label = (x @ [1.5, -1.0] + rng.normal(scale=1.5, size=n) > 0).astype(int)
    return pd.DataFrame(
        {
            "label": label,
            "score": np.round(1 / (1 + np.exp(-x[:, 0])), 2),
            "weight": rng.uniform(0.5, 2.0, n),
            "user": rng.integers(0, 30, n),
            "x0": x[:, 0],
            "x1": x[:, 1],
            "fold": np.arange(n) % 2,
        }
    )


def _gauc(frame: pd.DataFrame) -> float:
    """Row-weighted mean of per-user ROC-AUC over the users with both classes."""
    both = frame.groupby("user").filter(lambda g: g["label"].nunique() == 2)
    aucs = both.groupby("user")[["label", "score"]].apply(
        lambda g: pd.Series({"auc": roc_auc_score(g["label"], g["score"]), "rows": len(g)})
    )
    return float((aucs["auc"] * aucs["rows"]).sum() / aucs["rows"].sum())


def _normalized_entropy(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> float:
    base = np.average(y, weights=w)
    return log_loss(y, p, sample_weight=w) / -(base * np.log(base) + (1 - base) * np.log(1 - base))


def test_each_metric_equals_scikit_learn(spark, table):
    df = spark.createDataFrame(table)
    y, p, w = table["label"].to_numpy(), table["score"].to_numpy(), table["weight"].to_numpy()
    expected = {
        ("areaUnderROC", "weight"): roc_auc_score(y, p, sample_weight=w),
        ("areaUnderPR", "weight"): average_precision_score(y, p, sample_weight=w),
        ("logLoss", None): log_loss(y, p),
        ("normalizedEntropy", "weight"): _normalized_entropy(y, p, w),
    }
    for (metric, weight), value in expected.items():
        weighted = {"weightCol": weight} if weight else {}
        evaluator = ExactBinaryEvaluator(metricName=metric, scoreCol="score", **weighted)
        assert evaluator.evaluate(df) == pytest.approx(value, rel=1e-12, abs=1e-12), (metric, weight)
    gauc = ExactBinaryEvaluator(metricName="gauc", scoreCol="score", groupCol="user")
    assert gauc.evaluate(df) == pytest.approx(_gauc(table), rel=1e-12)


def test_vector_scores_are_read_at_the_positive_class(spark, table):
    rows = [(int(y), Vectors.dense([1 - s, s])) for y, s in zip(table["label"], table["score"])]
    df = spark.createDataFrame(
        rows, StructType([StructField("label", IntegerType()), StructField("probability", VectorUDT())])
    )
    evaluator = ExactBinaryEvaluator(metricName="logLoss")  # defaults: probability against label
    assert evaluator.evaluate(df) == pytest.approx(log_loss(table["label"], table["score"]), rel=1e-12)
    assert evaluator.evaluate(df, {evaluator.metricName: "areaUnderROC"}) == pytest.approx(
        roc_auc_score(table["label"], table["score"]), rel=1e-12
    )


def test_larger_is_better_and_bad_settings(spark, table):
    better = {
        m: ExactBinaryEvaluator(metricName=m).isLargerBetter()
        for m in ("areaUnderROC", "areaUnderPR", "logLoss", "normalizedEntropy", "gauc")
    }
    assert better == {
        "areaUnderROC": True,
        "areaUnderPR": True,
        "logLoss": False,
        "normalizedEntropy": False,
        "gauc": True,
    }
    df = spark.createDataFrame(table.head(20))
    with pytest.raises(MetricsInputError, match="metricName: expected one of"):
        ExactBinaryEvaluator(metricName="accuracy").evaluate(df)
    with pytest.raises(MetricsInputError, match="groupCol"):
        ExactBinaryEvaluator(metricName="gauc", scoreCol="score").evaluate(df)
    with pytest.raises(InputError, match="column 'probability' not found"):
        ExactBinaryEvaluator().evaluate(df)


def test_save_and_load(tmp_path):
    evaluator = ExactBinaryEvaluator(metricName="gauc", scoreCol="s", labelCol="y", groupCol="user")
    evaluator.save(str(tmp_path / "evaluator"))
    loaded = ExactBinaryEvaluator.load(str(tmp_path / "evaluator"))
    assert loaded.uid == evaluator.uid
    assert {p.name: v for p, v in loaded.extractParamMap().items()} == {
        p.name: v for p, v in evaluator.extractParamMap().items()
    }


@pytest.mark.slow  # over 9 s: the unit tier stays under 10 minutes
def test_cross_validator_picks_the_regparam_of_a_manual_loop(spark, table):
    """Same folds (foldCol), same metric (log loss, smaller is better) computed by scikit-learn in the loop."""
    rows = [
        (Vectors.dense([a, b]), int(y), int(f))
        for a, b, y, f in zip(table["x0"], table["x1"], table["label"], table["fold"])
    ]
    schema = StructType(
        [StructField("features", VectorUDT()), StructField("label", IntegerType()), StructField("fold", IntegerType())]
    )
    df = spark.createDataFrame(rows, schema).cache()
    grid = [1.0, 0.01, 0.2]
    lr = LogisticRegression(maxIter=8)
    cv = CrossValidator(
        estimator=lr,
        estimatorParamMaps=ParamGridBuilder().addGrid(lr.regParam, grid).build(),
        evaluator=ExactBinaryEvaluator(metricName="logLoss"),
        numFolds=2,
        foldCol="fold",
    )
    chosen = cv.fit(df)
    manual = []
    for reg in grid:
        losses = []
        for fold in range(2):
            model = LogisticRegression(maxIter=8, regParam=reg).fit(df.where(df.fold != fold))
            scored = model.transform(df.where(df.fold == fold)).select("label", "probability").toPandas()
            losses.append(log_loss(scored["label"], np.stack(scored["probability"].map(lambda v: v.toArray()))[:, 1]))
        manual.append(np.mean(losses))
    df.unpersist()
    assert chosen.avgMetrics == pytest.approx(manual, rel=1e-9)
    assert chosen.bestModel.getRegParam() == grid[int(np.argmin(manual))] == 0.01
