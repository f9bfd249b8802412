"""GBDT+LR: leaf slots, re-calibration, unseen categories, bad input, persistence and batch scoring."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from pipelines.config import load_config
from pipelines.datagen import demo_tables
from pipelines.gbdt_lr.calibration import recalibrate
from pipelines.gbdt_lr.categories import OTHER, RareCategoryGrouper
from pipelines.gbdt_lr.features import FeatureError, FeatureSpec, check_training_data
from pipelines.gbdt_lr.leaves import LeafEncoder, LeafEncoderModel, leaf_offsets
from pipelines.gbdt_lr.model import downsample_negatives, stratified_split
from pipelines.job_runtime import run_job

ROOT = Path(__file__).resolve().parents[1]
# Each L-BFGS iteration is one Spark job; 10 of them per fit (x 2 grid values + the final fit, x 2 models) keep
# every model's test AUC well above 0.5 at this size (0.69-0.71 with 30 iterations, within 0.01 of it with 10).
CHAMPION = "models:/train_gbdt_lr@champion"
SMALL = ["trees.num_trees=4", "trees.max_depth=3", "lr.reg_grid=[0.01, 0.1]", "lr.max_iter=10"]


@pytest.fixture(scope="module")
def clicks(spark):
    return demo_tables(spark, size=0.06, seed=3)["clicks"].cache()


@pytest.fixture(scope="module")
def leaf_model(clicks):
    df = VectorAssembler(inputCols=["i2", "i3", "i4"], outputCol="f").transform(clicks)
    return LeafEncoder(featuresCol="f", labelCol="label", numTrees=4, maxDepth=3, minInstancesPerNode=5).fit(df), df


def test_one_active_slot_per_tree_within_its_offsets(leaf_model):
    model, df = leaf_model
    counts = model.leaf_counts()
    offsets = leaf_offsets(counts)
    assert offsets == [sum(counts[:t]) for t in range(len(counts))]
    rows = model.transform(df).select(vector_to_array("leaves").alias("v")).toPandas()
    dense = np.stack(rows.v.values)
    assert dense.shape[1] == sum(counts)
    for t, (start, n) in enumerate(zip(offsets, counts)):
        block = dense[:, start : start + n]
        assert (block.sum(axis=1) == 1).all(), f"tree {t}"
        assert set(np.unique(block)) <= {0.0, 1.0}


def test_leaf_encoder_persistence(leaf_model, tmp_path):
    model, df = leaf_model
    model.write().overwrite().save(str(tmp_path / "leaves"))
    loaded = LeafEncoderModel.load(str(tmp_path / "leaves"))
    assert loaded.leaf_counts() == model.leaf_counts()
    assert_df_equality(
        loaded.transform(df).select("click_id", "leaves"), model.transform(df).select("click_id", "leaves")
    )


def test_recalibration_formula(spark):
    p, w = np.array([0.01, 0.2, 0.5, 0.9]), 0.1
    np.testing.assert_allclose(recalibrate(p, w), p / (p + (1 - p) / w))
    # With w = 0.1 a model that predicts 0.5 on downsampled data means 1 in 11 on all data.
    assert recalibrate(0.5, 0.1) == pytest.approx(1 / 11)
    assert recalibrate(0.3, 1.0) == 0.3
    with pytest.raises(ValueError):
        recalibrate(0.5, 0.0)
    df = spark.createDataFrame([(x,) for x in p.tolist()], ["p"])
    got = df.select(recalibrate(F.col("p"), w).alias("score")).toPandas().score.values
    np.testing.assert_allclose(got, p / (p + (1 - p) / w), rtol=1e-12)


def test_downsampling_keeps_positives_and_a_share_of_negatives(clicks):
    sampled = downsample_negatives(clicks, "label", 0.25, seed=1)
    counts = {r.label: r["count"] for r in sampled.groupBy("label").count().collect()}
    full = {r.label: r["count"] for r in clicks.groupBy("label").count().collect()}
    assert counts[1] == full[1]
    assert 0.2 < counts[0] / full[0] < 0.3


def test_unseen_and_missing_categories_map_to_known_buckets(spark):
    train = spark.createDataFrame([("a",)] * 5 + [("b",)] * 5 + [("rare",)], "c STRING")
    model = RareCategoryGrouper(inputCols=["c"], outputCols=["g"], minCount=3).fit(train)
    new = spark.createDataFrame([("a",), ("rare",), ("never-seen",), (None,)], "c STRING")
    expected = spark.createDataFrame(
        [("a", "a"), ("rare", OTHER), ("never-seen", OTHER), (None, OTHER)], "c STRING, g STRING"
    )
    assert_df_equality(model.transform(new), expected, ignore_nullable=True)


def test_stratified_split_splits_each_class(clicks):
    train_df, test_df = stratified_split(clicks, "label", 0.2, seed=42)
    assert train_df.count() + test_df.count() == clicks.count()
    assert train_df.join(test_df, "click_id").count() == 0
    per_class = lambda df: {r.label: r["count"] for r in df.groupBy("label").count().collect()}  # noqa: E731
    full, test = per_class(clicks), per_class(test_df)
    for label in (0, 1):
        assert abs(test[label] / full[label] - 0.2) < 0.05, label
    again = stratified_split(clicks, "label", 0.2, seed=42)[1]
    assert_df_equality(again, test_df, ignore_row_order=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda df: df.withColumn("label", F.when(F.col("click_id") == 3, 2).otherwise(F.col("label"))),
            r"training data: label column 'label' must be 0 or 1 in every row; 1 rows are not, e\.g\. 2$",
        ),
        (lambda df: df.withColumn("i6", F.lit(None).cast("double")), r"feature column\(s\) \['i6'\] are null in every"),
        (lambda df: df.withColumn("c1", F.lit("mobile")), r"categorical column\(s\) \['c1'\] have a single value"),
        (lambda df: df.drop("c3"), r"training data: missing column\(s\) \['c3'\]"),
        (
            lambda df: df.withColumn("label", F.col("label").cast("string")),
            r"training data: label column 'label' must be numeric \(0 or 1\), got string",
        ),
    ],
)
def test_bad_training_input_is_a_clear_error(clicks, mutate, message):
    cfg = load_config(ROOT / "conf" / "jobs" / "train_gbdt_lr.yaml", overrides=SMALL)
    with pytest.raises(FeatureError, match=message):
        check_training_data(mutate(clicks), FeatureSpec.from_config(cfg["schema"]), "training data")


@pytest.fixture(scope="module")
def trained(clicks, tmp_path_factory, tracked):
    """One small GBDT+LR trained through the job, shared by the scoring tests; tracked, so the model is also
    version 1 of ``train_gbdt_lr`` in the tests' MLflow store (``CHAMPION``)."""
    root = tmp_path_factory.mktemp("gbdt_lr")
    data, out = root / "clicks", root / "gl"
    clicks.write.parquet(str(data))
    sets = [f"input.path={data}", f"output.path={out}", *SMALL]
    with tracked():
        code = run_job("train_gbdt_lr", [arg for s in sets for arg in ("--set", s)])
    assert code == 0
    return data, out


def _score(model_dir, data, out, *extra):
    return run_job(
        "score",
        ["--set", f"model_path={model_dir}", "--set", f"input.path={data}", "--set", f"output.path={out}", *extra],
    )


def test_train_job_reports_three_models(trained):
    _, out = trained
    metrics = json.loads((out / "report" / "_metrics.json").read_text())
    for name in ("gbdt_lr", "lr_only", "trees_only"):
        assert 0.5 < metrics["test"][name]["roc_auc"] <= 1.0
        assert metrics["test"][name]["normalized_entropy"] > 0
    assert metrics["test"]["trees_only"]["relative_ne_pct"] == pytest.approx(100.0)
    assert (out / "report" / "roc.png").stat().st_size > 1000
    assert (out / "report" / "calibration.png").stat().st_size > 1000
    report = (out / "report" / "report.md").read_text()
    assert "| gbdt_lr |" in report and "| feature | gain | cover |" in report
    assert metrics["chosen"]["learner"] == "xgboost"
    gains = metrics["feature_importances"]["gain"]
    assert sum(i["importance"] for i in gains) == pytest.approx(1.0, abs=1e-4)
    # Five test rows explained, each with its eight largest contributions (their sum is checked against the
    # booster's margin in test_gbdt_lr_xgboost.py).
    assert len(metrics["contributions"]) == 5 and all(len(r["top"]) == 8 for r in metrics["contributions"])


def _test_rows_and_scores(spark, clicks, out, tmp_path):
    """The training-time test scores, and the test rows they were computed from written as a scoring input."""
    test_scores = spark.read.parquet(str(out / "test_scores"))
    test_rows = tmp_path / "test_rows"
    clicks.join(test_scores.select("click_id"), "click_id").write.parquet(str(test_rows))
    assert test_scores.count() > 0
    return test_rows, test_scores


def _assert_same_scores(spark, scores, test_scores):
    rescored = spark.read.parquet(str(scores / "ds=2026-02-03"))
    assert_df_equality(
        rescored.select("click_id", "score", "model_version"),
        test_scores.select("click_id", "score", "model_version"),
        ignore_row_order=True,
    )
    assert rescored.select("run_date").distinct().first()[0].isoformat() == "2026-02-03"


@pytest.mark.parametrize("registered", [False, True], ids=["path", "champion"])
def test_saved_model_reproduces_training_time_test_scores(
    spark, clicks, trained, tmp_path, tracked, mlflow_store, registered
):
    """``jobs/score.py``'s main in this session loads the saved model from disk, by its path or as the registry's
    champion, and gives the very same scores on the test rows (the fresh-process variant below runs in the slow
    tier)."""
    _, out = trained
    test_rows, test_scores = _test_rows_and_scores(spark, clicks, out, tmp_path)
    with tracked():
        code = _score(
            CHAMPION if registered else out / "model", test_rows, tmp_path / "scores", "--run-date", "2026-02-03"
        )
    assert code == 0
    _assert_same_scores(spark, tmp_path / "scores", test_scores)
    metrics = json.loads((tmp_path / "scores" / "ds=2026-02-03" / "_metrics.json").read_text())
    if registered:
        assert metrics["resolved_models"]["model_path"]["uri"] == CHAMPION
        client = pytest.importorskip("mlflow.tracking").MlflowClient(f"sqlite:///{mlflow_store}")
        version = client.get_model_version("train_gbdt_lr", metrics["resolved_models"]["model_path"]["version"])
        trained_auc = json.loads((out / "model" / "_metrics.json").read_text())["test"]["gbdt_lr"]["roc_auc"]
        assert float(version.tags["metric_value"]) == trained_auc and version.tags["output"] == "model"
        assert metrics["model_path"] == metrics["resolved_models"]["model_path"]["path"] != str(out / "model")


@pytest.mark.slow  # a second JVM and a cold interpreter: 15-55 s on 2 shared cores
def test_fresh_session_scoring_reproduces_training_time_test_scores(spark, clicks, trained, tmp_path, mlflow_store):
    """``jobs/score.py`` in a new process (new JVM, new session) on the test rows, with the registry's champion,
    gives the very same scores."""
    _, out = trained
    test_rows, test_scores = _test_rows_and_scores(spark, clicks, out, tmp_path)
    scores = tmp_path / "scores"
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_store}",
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "jobs" / "score.py"),
            "--spark-conf",
            str(ROOT / "conf" / "spark" / "test.yaml"),
            "--run-date",
            "2026-02-03",
            "--set",
            f"model_path={CHAMPION}",
            "--set",
            f"input.path={test_rows}",
            "--set",
            f"output.path={scores}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_scores(spark, scores, test_scores)


def test_scoring_with_missing_column_names_it(trained, clicks, tmp_path, capsys):
    _, out = trained
    broken = tmp_path / "broken"
    clicks.drop("c2").write.parquet(str(broken))
    capsys.readouterr()
    assert _score(out / "model", broken, tmp_path / "scores") == 1
    assert f"error: {broken}: missing column(s) ['c2']" in capsys.readouterr().err
