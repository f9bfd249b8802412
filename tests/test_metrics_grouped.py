"""GAUC against a per-group scikit-learn reference: ties, single-class groups, string and integer groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines import metrics


def _impressions(groups: int, rows: int, seed: int) -> pd.DataFrame:
    """Skewed group sizes (many groups of one or two rows), rounded scores: many ties within a group."""
    rng = np.random.default_rng(seed)
    group = np.minimum(rng.zipf(1.6, rows), groups) - 1
    label = (rng.random(rows) < 0.3).astype(int)
    score = np.round(np.clip(rng.normal(0.4 + 0.15 * label, 0.2), 0, 1), 1)
    return pd.DataFrame({"user": group, "score": score, "label": label})


def _reference(pdf: pd.DataFrame) -> tuple[float, int, int, int, int]:
    used = [
        (len(rows), roc_auc_score(rows["label"], rows["score"]))
        for _, rows in pdf.groupby("user")
        if rows["label"].nunique() == 2
    ]
    sizes, aucs = np.array(used).T
    groups = pdf["user"].nunique()
    return (
        float(np.dot(sizes, aucs) / sizes.sum()),
        len(used),
        int(sizes.sum()),
        groups - len(used),
        int(len(pdf) - sizes.sum()),
    )


@pytest.mark.parametrize("partitions", [1, 7])
def test_gauc_matches_sklearn_per_group(spark, partitions):
    pdf = _impressions(groups=400, rows=4000, seed=partitions)
    result = metrics.grouped_auc(spark.createDataFrame(pdf).repartition(partitions), "user", "score", "label")
    gauc, groups, rows, groups_skipped, rows_skipped = _reference(pdf)
    assert result.gauc == pytest.approx(gauc, abs=1e-9)
    assert (result.groups, result.rows, result.groups_skipped, result.rows_skipped) == (
        groups,
        rows,
        groups_skipped,
        rows_skipped,
    )
    assert groups_skipped > 0 and rows_skipped > 0


def test_gauc_with_string_groups_in_the_report(spark):
    pdf = _impressions(groups=50, rows=1500, seed=11)
    named = pdf.assign(user="user-" + pdf["user"].astype(str))
    report = metrics.evaluation_report(
        spark.createDataFrame(named), score_col="score", label_col="label", group_col="user"
    )
    gauc, groups, rows, groups_skipped, rows_skipped = _reference(pdf)
    assert report["gauc"] == {
        "gauc": pytest.approx(gauc, abs=1e-9),
        "groups": groups,
        "rows": rows,
        "groups_skipped": groups_skipped,
        "rows_skipped": rows_skipped,
    }
    assert report["roc_auc"] == pytest.approx(roc_auc_score(pdf["label"], pdf["score"]), abs=1e-9)


def test_one_group_is_the_global_auc(spark):
    pdf = _impressions(groups=1, rows=500, seed=5)
    result = metrics.grouped_auc(spark.createDataFrame(pdf), "user", "score", "label")
    assert result.gauc == pytest.approx(roc_auc_score(pdf["label"], pdf["score"]), abs=1e-12)
    assert (result.groups, result.rows, result.groups_skipped) == (1, 500, 0)
