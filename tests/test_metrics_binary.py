"""Binary metrics against scikit-learn on the same rows: heavy ties, weights, imbalance, 1 and 7 partitions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from sklearn import metrics as skm

from pipelines import metrics
from pipelines.metrics import curves
from pipelines.metrics.validation import prepare_binary

TOL = 1e-9


def _dataset(name: str) -> pd.DataFrame:
    """Scores in [0, 1] ("ties" has some exactly 0 or 1), labels in {0, 1}, weights with zeros where weighted."""
    rng = np.random.default_rng(DATASETS.index(name))
    if name == "ties":  # 2 decimals: about 100 distinct scores for 2,000 rows
        y = (rng.random(2000) < 0.25).astype(int)
        s = np.clip(np.round(rng.normal(0.4 + 0.2 * y, 0.25), 2), 0, 1)
        w = None
    elif name == "weighted":
        y = (rng.random(2000) < 0.4).astype(int)
        s = np.round(rng.beta(2 + 2 * y, 3), 3)
        w = np.round(rng.random(2000) * 3, 1)  # about 1 in 60 weights is 0
    elif name == "imbalanced":  # 1.5% positives, continuous scores
        y = (rng.random(3000) < 0.015).astype(int)
        s = rng.beta(1 + 3 * y, 4)
        w = None
    else:  # "three_scores": fewer distinct scores than range partitions
        y = (rng.random(600) < 0.5).astype(int)
        s = rng.choice([0.2, 0.5, 0.8], 600, p=[0.3, 0.4, 0.3])
        s[y == 1] = np.maximum(s[y == 1], rng.choice([0.2, 0.5, 0.8], int(y.sum())))
        w = rng.integers(1, 4, 600).astype(float)
    data = {"score": s, "label": y}
    if w is not None:
        data["w"] = w
    return pd.DataFrame(data)


DATASETS = ["ties", "weighted", "imbalanced", "three_scores"]


@pytest.fixture(params=[1, 7], ids=["1-partition", "7-partitions"])
def partitions(request, monkeypatch):
    """Input partitions; with 7, also at most 250 rows per range partition (8 or more of them)."""
    if request.param > 1:
        monkeypatch.setattr(curves, "ROWS_PER_PARTITION", 250)
    return request.param


def _frame(spark, pdf: pd.DataFrame, partitions: int):
    return spark.createDataFrame(pdf).repartition(partitions)


def _weights(pdf: pd.DataFrame):
    return pdf["w"].to_numpy() if "w" in pdf else None


def _best_f1_reference(y, s, w) -> float:
    precision, recall, _ = skm.precision_recall_curve(y, s, sample_weight=w)
    with np.errstate(invalid="ignore"):
        return float(np.nanmax(2 * precision * recall / (precision + recall)))


def _confusion_reference(y, s, w, threshold: float) -> dict[str, float]:
    predicted = (s >= threshold).astype(int)
    (tn, fp), (fn, tp) = skm.confusion_matrix(y, predicted, sample_weight=w)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, predicted, sample_weight=w, average="binary", zero_division=0
    )
    return dict(
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        precision=precision,
        recall=recall,
        f1=f1,
        accuracy=skm.accuracy_score(y, predicted, sample_weight=w),
    )


def _assert_confusion(ours: dict, reference: dict) -> None:
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=TOL), key


@pytest.mark.parametrize("name", DATASETS)
def test_report_matches_sklearn(spark, partitions, name):
    pdf = _dataset(name)
    y, s, w = pdf["label"].to_numpy(), pdf["score"].to_numpy(), _weights(pdf)
    report = metrics.evaluation_report(
        _frame(spark, pdf, partitions),
        score_col="score",
        label_col="label",
        weight_col="w" if w is not None else None,
        threshold=0.5,
    )
    mean_label = np.average(y, weights=w)
    expected = {
        "roc_auc": skm.roc_auc_score(y, s, sample_weight=w),
        "pr_auc": skm.average_precision_score(y, s, sample_weight=w),
        "log_loss": skm.log_loss(y, s, sample_weight=w),
        "normalized_entropy": skm.log_loss(y, s, sample_weight=w)
        / skm.log_loss(y, np.full(len(y), mean_label), sample_weight=w),
        "calibration": np.average(s, weights=w) / mean_label,
    }
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=TOL), key
    _assert_confusion(report["at_threshold"], _confusion_reference(y, s, w, 0.5))
    best = report["best_f1"]
    assert best["f1"] == pytest.approx(_best_f1_reference(y, s, w), abs=TOL)
    _assert_confusion(best, _confusion_reference(y, s, w, best["threshold"]))
    assert report["rows"] == len(pdf) and report["rows_dropped"] == 0 and report["notes"] == []
    json.dumps(report)


def test_single_metric_functions_match_sklearn(spark):
    pdf = _dataset("weighted")
    df = _frame(spark, pdf, 3)
    y, s, w = pdf["label"].to_numpy(), pdf["score"].to_numpy(), pdf["w"].to_numpy()
    args = (df, "score", "label", "w")
    assert metrics.roc_auc(*args) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=TOL)
    assert metrics.pr_auc(*args) == pytest.approx(skm.average_precision_score(y, s, sample_weight=w), abs=TOL)
    loss = skm.log_loss(y, s, sample_weight=w)
    assert metrics.log_loss(*args) == pytest.approx(loss, abs=TOL)
    base = skm.log_loss(y, np.full(len(y), np.average(y, weights=w)), sample_weight=w)
    assert metrics.normalized_entropy(*args) == pytest.approx(loss / base, abs=TOL)
    assert metrics.calibration(*args) == pytest.approx(np.dot(s, w) / np.dot(y, w), abs=TOL)
    at = metrics.confusion_at_threshold(*args, threshold=0.35)
    _assert_confusion(at.as_dict(), _confusion_reference(y, s, w, 0.35))
    assert metrics.best_f1_threshold(*args).f1 == pytest.approx(_best_f1_reference(y, s, w), abs=TOL)


def test_unweighted_auc_equals_weight_one(spark):
    pdf = _dataset("ties").assign(w=1.0)
    df = _frame(spark, pdf, 2)
    assert metrics.roc_auc(df, "score", "label") == metrics.roc_auc(df, "score", "label", "w")


def test_configured_labels(spark):
    pdf = _dataset("ties")
    named = pdf.assign(label=np.where(pdf["label"] == 1, "click", "skip"))
    auc = metrics.roc_auc(spark.createDataFrame(named), "score", "label", positive_label="click", negative_label="skip")
    assert auc == pytest.approx(skm.roc_auc_score(pdf["label"], pdf["score"]), abs=TOL)
    flipped = metrics.roc_auc(spark.createDataFrame(pdf), "score", "label", positive_label=0, negative_label=1)
    assert flipped == pytest.approx(1 - auc, abs=TOL)


def _sklearn_roc(pdf: pd.DataFrame) -> pd.DataFrame:
    fpr, tpr, thresholds = skm.roc_curve(
        pdf["label"], pdf["score"], sample_weight=_weights(pdf), drop_intermediate=False
    )
    return pd.DataFrame({"threshold": thresholds, "fpr": fpr, "tpr": tpr})


def _sklearn_pr(pdf: pd.DataFrame) -> pd.DataFrame:
    precision, recall, thresholds = skm.precision_recall_curve(pdf["label"], pdf["score"], sample_weight=_weights(pdf))
    table = pd.DataFrame({"threshold": np.r_[thresholds, np.inf], "precision": precision, "recall": recall})
    return table.iloc[::-1].reset_index(drop=True)


def _assert_curve_equal(spark, ours, expected: pd.DataFrame) -> None:
    """Thresholds exactly (they are scores, and inf), rates to 1e-9, in the same row order."""
    expected_df = spark.createDataFrame(expected, ours.schema)
    assert_df_equality(ours.select("threshold"), expected_df.select("threshold"))
    assert_approx_df_equality(ours, expected_df, TOL, ignore_columns=["threshold"])


@pytest.mark.parametrize(
    "name, partitions", [("ties", 1), ("weighted", 7), ("three_scores", 7)], indirect=["partitions"]
)
def test_full_curves_equal_sklearn(spark, partitions, name):
    pdf = _dataset(name)
    df = _frame(spark, pdf, partitions)
    weight = "w" if "w" in pdf else None
    _assert_curve_equal(spark, metrics.roc_curve(df, "score", "label", weight, points=5000), _sklearn_roc(pdf))
    _assert_curve_equal(spark, metrics.pr_curve(df, "score", "label", weight, points=5000), _sklearn_pr(pdf))


@pytest.mark.parametrize("partitions", [7], indirect=True)
def test_downsampled_curve_is_evenly_spaced_subset(spark, partitions):
    pdf = _dataset("imbalanced")  # 3,000 distinct scores: 3,001 points
    full = _sklearn_roc(pdf)
    ours = metrics.roc_curve(_frame(spark, pdf, partitions), "score", "label", points=50).toPandas()
    keep = np.unique(np.round(np.linspace(0, len(full) - 1, 50)).astype(int))
    assert len(ours) == 50
    expected = full.iloc[keep].reset_index(drop=True)
    assert_df_equality(spark.createDataFrame(ours[["threshold"]]), spark.createDataFrame(expected[["threshold"]]))
    np.testing.assert_allclose(ours[["fpr", "tpr"]], expected[["fpr", "tpr"]], atol=TOL, rtol=0)

    report = metrics.evaluation_report(
        _frame(spark, pdf, partitions), score_col="score", label_col="label", curves=True, curve_points=50
    )
    np.testing.assert_allclose(
        np.column_stack([report["roc_curve"]["fpr"], report["roc_curve"]["tpr"]]),
        expected[["fpr", "tpr"]],
        atol=TOL,
        rtol=0,
    )  # the report's own points (curves=True): the same 50 points from its pass


def test_curve_indices():
    assert curves.curve_indices(3, 10).tolist() == [0, 1, 2, 3]
    assert curves.curve_indices(100, 5).tolist() == [0, 25, 50, 75, 100]
    with pytest.raises(ValueError, match="at least 2"):
        curves.curve_indices(100, 1)


def test_partition_blocks_compacts_heavy_ties(monkeypatch):
    """The in-task reduction: compacting every few rows gives the same blocks as one reduction."""
    rng = np.random.default_rng(3)
    batches = [
        pa.RecordBatch.from_pydict(
            {"score": np.round(rng.random(40), 1), "signed": rng.choice([-2.0, -1.0, 1.0, 0.5], 40)}
        )
        for _ in range(9)
    ]
    whole = curves._partition_blocks(iter(batches))
    monkeypatch.setattr(curves, "COMPACT_ROWS", 50)
    compacted = curves._partition_blocks(iter(batches))
    for ours, expected in zip(compacted, whole):
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert whole[0].size == 11
    assert curves._partition_blocks(iter([])) is None


def test_report_writes_plots_and_flags_non_probabilities(spark, tmp_path):
    pdf = _dataset("ties")
    logits = pdf.assign(score=(pdf["score"] - 0.5) * 8)  # same order, outside [0, 1]
    report = metrics.evaluation_report(
        spark.createDataFrame(logits),
        score_col="score",
        label_col="label",
        threshold=0.0,
        curve_points=20,
        plot_dir=str(tmp_path / "plots"),
    )
    assert report["roc_auc"] == pytest.approx(skm.roc_auc_score(pdf["label"], pdf["score"]), abs=TOL)
    assert report["log_loss"] is None and report["calibration"] is None
    outside = int(((logits["score"] < 0) | (logits["score"] > 1)).sum())
    assert report["notes"] == [
        f"column 'score': {outside} rows with scores outside [0, 1]; "
        "log loss, normalized entropy and calibration need probabilities"
    ]
    for name in ("roc", "pr"):
        with open(report["plots"][name], "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert report["calibration_bins"] is None and "calibration" not in report["plots"]
    json.dumps(report)


def test_report_calibration_bins_and_plot(spark, tmp_path):
    """Reliability-diagram points equal numpy's weighted means per score bin (a score of 1.0 in the last bin)."""
    pdf = _dataset("weighted")
    report = metrics.evaluation_report(
        spark.createDataFrame(pdf),
        score_col="score",
        label_col="label",
        weight_col="w",
        calibration_bins=5,
        plot_dir=str(tmp_path),
    )
    bins = np.minimum(np.floor(pdf["score"] * 5), 4)
    expected = []
    for b in range(5):
        part = pdf[(bins == b) & (pdf["w"] > 0)]
        if len(part):
            expected.append(
                {
                    "low": b / 5,
                    "high": (b + 1) / 5,
                    "weight": part["w"].sum(),
                    "predicted": np.average(part["score"], weights=part["w"]),
                    "observed": np.average(part["label"], weights=part["w"]),
                }
            )
    assert len(report["calibration_bins"]) == len(expected) > 2
    for ours, theirs in zip(report["calibration_bins"], expected):
        assert ours == pytest.approx(theirs, abs=TOL)
    assert sum(b["weight"] for b in report["calibration_bins"]) == pytest.approx(pdf["w"].sum(), abs=TOL)
    with open(report["plots"]["calibration"], "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="calibration_bins must be at least 1"):
        metrics.evaluation_report(spark.createDataFrame(pdf), score_col="score", label_col="label", calibration_bins=0)


@pytest.mark.parametrize("partitions", [7], indirect=True)
def test_many_range_partitions_are_used(spark, partitions):
    """The prefix offsets across partitions are exercised: 2,000 rows over at least 8 range partitions."""
    frame = prepare_binary(_frame(spark, _dataset("weighted"), partitions), "score", "label", "w")
    order = curves.ScoreOrder(frame)
    assert len(order.parts) >= 8


OWN_KEYWORDS = {"confusion_at_threshold": ("threshold", 0.5), "roc_curve": ("points", 200), "pr_curve": ("points", 200)}


@pytest.mark.parametrize(
    "name",
    [
        "log_loss",
        "normalized_entropy",
        "calibration",
        "confusion_at_threshold",
        "roc_auc",
        "pr_auc",
        "best_f1_threshold",
        "roc_curve",
        "pr_curve",
    ],
)
def test_binary_metrics_keep_their_public_signature(name):
    """binary_metric gives each metric the shared columns and label options around its own keywords."""
    import inspect

    metric = getattr(metrics, name)
    params = inspect.signature(metric).parameters
    own = [OWN_KEYWORDS[name]] if name in OWN_KEYWORDS else []
    expected = [("df", inspect.Parameter.empty), ("score_col", inspect.Parameter.empty)]
    expected += [("label_col", inspect.Parameter.empty), ("weight_col", None), *own]
    expected += [("positive_label", 1), ("negative_label", 0), ("drop_invalid", False)]
    assert [(p.name, p.default) for p in params.values()] == expected
    assert [p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY] == [n for n, _ in expected[4:]]
    assert metric.__name__ == name and metric.__doc__
    with pytest.raises(TypeError):
        metric(None, "score", "label", positive=1)  # a misspelt option is refused before any Spark work
