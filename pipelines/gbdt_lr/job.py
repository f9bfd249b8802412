"""The mains of ``jobs/train_gbdt_lr.py`` and ``jobs/score.py``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.errors import load_model
from pipelines.gbdt_lr.features import FeatureError, FeatureSpec, check_columns, check_training_data
from pipelines.gbdt_lr.model import SCORE, GBDTLRModel, stratified_split, train
from pipelines.gbdt_lr.report import (
    MODELS,
    calibration_plot,
    compare,
    contributions,
    evaluate,
    render_markdown,
    roc_plot,
)
from pipelines.ingest import read_input
from pipelines.output import CONFIG_FILE, METRICS_FILE, qualify

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext


def train_job(ctx: "JobContext") -> None:
    """Check, split, train the three models, score the test split, report, and save the GBDT+LR pipeline."""
    cfg = ctx.config
    spec = FeatureSpec.from_config(cfg["schema"])
    data = read_input(ctx.spark, cfg["input"])
    check_training_data(data, spec, qualify(cfg["input"]["path"]))  # before the split, which keeps only 0 and 1
    train_df, test_df = stratified_split(data, spec.label, cfg["split"]["test_fraction"], cfg["split"]["seed"])
    train_df, test_df = train_df.cache(), test_df.cache()
    ctx.metrics["rows_in"] = {"train": train_df.count(), "test": test_df.count()}
    models = train(train_df, spec, cfg, ctx.log)
    scored = {name: getattr(models, name).transform(test_df).select(spec.label, SCORE).cache() for name in MODELS}
    ctx.log("evaluating on the test split")
    reports = evaluate(scored, spec.label)
    results = compare(reports)
    importances = models.gbdt_lr.trees.importances(spec.tree_input_names())
    explained = contributions(models.gbdt_lr, test_df, spec.tree_input_names())
    version = f"gbdt_lr-{ctx.spark.conf.get('spark.app.id')}-{int(ctx.started)}"
    ctx.metrics.update(
        {"test": results, "chosen": models.chosen, "feature_importances": importances, "contributions": explained}
    )
    root = stage_model_and_test_scores(
        ctx, models.gbdt_lr, test_df, version, [spec.label, *cfg["output"]["keep_columns"]]
    )
    report = render_markdown(results, importances, models.chosen, explained)
    ctx.stage_files(
        "report",
        f"{root}/report",
        {
            "report.md": report,
            "results.json": json.dumps(results, indent=2) + "\n",
            "roc.png": roc_plot(reports),
            "calibration.png": calibration_plot(reports),
        },
    )
    print(report)


def stage_model_and_test_scores(
    ctx: "JobContext", model: GBDTLRModel, test_df: DataFrame, version: str, keep: list[str]
) -> str:
    """Stage the model and its test-split scores under ``output.path`` as ``jobs/score.py`` reads them
    (model version in the metrics, schema in the config); returns that root."""
    root = ctx.config["output"]["path"].rstrip("/")
    ctx.metrics["model_version"] = version
    ctx.stage_model("model", model, f"{root}/model")
    ctx.stage("test_scores", score_table(model, test_df, version, ctx.run_date, keep), f"{root}/test_scores")
    return root


def score_table(model: GBDTLRModel, df: DataFrame, version: str, run_date: str | None, keep: list[str]) -> DataFrame:
    """The kept input columns, ``score``, the model version and the run date."""
    scored = model.transform(df)
    return scored.select(
        *keep, SCORE, F.lit(version).alias("model_version"), F.lit(run_date).cast("date").alias("run_date")
    )


def score_job(ctx: "JobContext") -> None:
    """Batch-score a table with a saved GBDT+LR model; columns are checked against the training schema."""
    cfg = ctx.config
    model_path = qualify(cfg["model_path"])
    fs = ctx.fs
    trained = json.loads(fs.read_text(f"{model_path}/{METRICS_FILE}"))
    spec = FeatureSpec.from_config(yaml.safe_load(fs.read_text(f"{model_path}/{CONFIG_FILE}"))["schema"])
    data = read_input(ctx.spark, cfg["input"])
    check_columns(data, spec, qualify(cfg["input"]["path"]), need_label=False)
    missing_keep = [c for c in cfg["keep_columns"] if c not in data.columns]
    if missing_keep:
        raise FeatureError(f"{qualify(cfg['input']['path'])}: keep_columns {missing_keep} are not in the input")
    model = load_model(GBDTLRModel.load, model_path)
    ctx.metrics.update({"model_path": model_path, "model_version": trained["model_version"]})
    ctx.stage(
        "scores",
        score_table(model, data, trained["model_version"], ctx.run_date, cfg["keep_columns"]),
        cfg["output"]["path"],
    )
