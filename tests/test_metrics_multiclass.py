"""Multiclass metrics against scikit-learn, weighted and unweighted, with a class that is only predicted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from pipelines import metrics


def _predictions(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.choice(["ant", "bee", "cat", "dog"], 1500, p=[0.5, 0.3, 0.15, 0.05])
    correct = rng.random(1500) < 0.6
    prediction = np.where(correct, label, rng.choice(["ant", "bee", "cat", "eel"], 1500))  # "eel" never true
    return pd.DataFrame({"label": label, "prediction": prediction, "w": np.round(rng.random(1500) * 2, 2)})


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multiclass_matches_sklearn(spark, weighted):
    pdf = _predictions(seed=int(weighted))
    df = spark.createDataFrame(pdf).repartition(5)
    result = metrics.multiclass_metrics(df, "label", "prediction", "w" if weighted else None)
    y, p, w = pdf["label"], pdf["prediction"], pdf["w"] if weighted else None
    labels = sorted(set(y) | set(p))
    assert result.labels == labels
    np.testing.assert_allclose(
        result.confusion_matrix, skm.confusion_matrix(y, p, labels=labels, sample_weight=w), rtol=0, atol=1e-9
    )
    assert result.accuracy == pytest.approx(skm.accuracy_score(y, p, sample_weight=w), abs=1e-12)
    for average in ("macro", "micro", "weighted"):
        expected = skm.f1_score(y, p, average=average, sample_weight=w, zero_division=0)
        assert getattr(result, f"{average}_f1") == pytest.approx(expected, abs=1e-12), average
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, p, labels=labels, sample_weight=w, zero_division=0
    )
    for ours, expected in zip(
        (result.precision, result.recall, result.f1, result.support), (precision, recall, f1, support)
    ):
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)
    assert (result.rows, result.rows_dropped) == (1500, 0)
