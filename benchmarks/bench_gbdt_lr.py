"""GBDT+LR against LR-only, trees-only and LightGBM on the Criteo 45K sample (same split, same run); the tree
stage alone, XGBoost (``xgboost.spark``) against MLlib's ``GBTClassifier`` at the same trees and depth; and
GBDT+LR against LightGBM on a synthetic Criteo-like table of 1M rows generated in Spark.

Usage: python benchmarks/bench_gbdt_lr.py [--seed 42] [--rows 1000000] [--set trees.num_trees=200]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.criteo import ARFF_45K, CSV_4K, NUMERIC, read_arff, read_full_sample  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.datagen.criteo_like import CATEGORICAL as LIKE_CATEGORICAL  # noqa: E402
from pipelines.datagen.criteo_like import criteo_like  # noqa: E402
from pipelines.gbdt_lr.features import FeatureSpec, check_training_data  # noqa: E402
from pipelines.gbdt_lr.job import stage_model_and_test_scores  # noqa: E402
from pipelines.gbdt_lr.model import GBDTLR, SCORE, stratified_split, train  # noqa: E402
from pipelines.gbdt_lr.report import MODELS, compare, evaluate  # noqa: E402
from pipelines.job_runtime import JobContext  # noqa: E402
from pipelines.session import get_spark  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def config(categorical, hashed, seed, overrides):
    return load_config(
        ROOT / "conf" / "jobs" / "train_gbdt_lr.yaml",
        overrides=[
            "schema.label=Label",
            f"schema.numeric={json.dumps(NUMERIC)}",
            f"schema.categorical={json.dumps(categorical)}",
            f"schema.hashed={json.dumps(hashed)}",
            f"split.seed={seed}",
            *overrides,
        ],
    )


def ours(spark, data, categorical, hashed, seed, overrides):
    """Train our three models on the split; return test metrics, training seconds, the split and the models."""
    cfg = config(categorical, hashed, seed, overrides)
    spec = FeatureSpec.from_config(cfg["schema"])
    check_training_data(data, spec, "the benchmark table")
    train_df, test_df = stratified_split(data, "Label", cfg["split"]["test_fraction"], seed)
    train_df, test_df = train_df.cache(), test_df.cache()
    print(f"train rows {train_df.count()}, test rows {test_df.count()}", flush=True)
    started = time.time()
    models = train(train_df, spec, cfg, log=lambda m: print(m, flush=True))
    seconds = time.time() - started
    scored = {n: getattr(models, n).transform(test_df).select("Label", SCORE).cache() for n in MODELS}
    return compare(evaluate(scored, "Label")), seconds, train_df, test_df, models, cfg


def fresh_session_rescoring(spark, models, cfg, test_df) -> bool:
    """Save GBDT+LR as the train job does, score the test rows with ``jobs/score.py`` in a new process
    (new JVM, fresh session) and compare with the training-time scores, exactly (chispa)."""
    from chispa import assert_df_equality

    tmp = Path(tempfile.mkdtemp(prefix="bench-gbdt-lr-"))
    keep = test_df.columns  # the arff has no id: every input column identifies a row (duplicates too)
    ctx = JobContext("train_gbdt_lr", spark, {**cfg, "output": {**cfg["output"], "path": str(tmp / "train")}}, None)
    stage_model_and_test_scores(ctx, models.gbdt_lr, test_df, "bench", keep)
    ctx.commit()
    test_df.write.parquet(str(tmp / "test_rows"))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "jobs" / "score.py"),
            "--set",
            f"model_path={tmp / 'train' / 'model'}",
            "--set",
            f"input.path={tmp / 'test_rows'}",
            "--set",
            f"output.path={tmp / 'scores'}",
            "--set",
            f"keep_columns={json.dumps(keep)}",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(done.stderr[-3000:])
        return False
    columns = [*keep, SCORE, "model_version"]
    try:
        assert_df_equality(
            spark.read.parquet(str(tmp / "scores")).select(*columns),
            spark.read.parquet(str(tmp / "train" / "test_scores")).select(*columns),
            ignore_row_order=True,
        )
    except AssertionError as exc:
        print(str(exc)[:3000])
        return False
    return True


def timed(what, fn):
    started = time.time()
    result = fn()
    seconds = time.time() - started
    print(f"{what}: {seconds:.1f}s", flush=True)
    return result, seconds


def tree_stages(models, train_df, cfg):
    """The tree stage alone on the prepared training rows: XGBoost and MLlib's GBTClassifier, same trees and depth,
    each timed after an untimed 5-tree fit of its own."""
    prepared = models.gbdt_lr.stages["prep"].transform(train_df).cache()
    prepared.count()
    estimator = GBDTLR.from_config(cfg, FeatureSpec.from_config(cfg["schema"]))
    seconds = {}
    for learner in ("xgboost", "spark"):
        trees = estimator.copy({estimator.learner: learner}).tree_learner(64)
        trees.copy({trees.numTrees: 5}).fit(prepared)  # warm-up, untimed: Python workers, JIT, class loading
        _, seconds[learner] = timed(
            f"tree stage alone, {learner}, {cfg['trees']['num_trees']} trees of depth {cfg['trees']['max_depth']}",
            lambda: trees.fit(prepared),
        )
    prepared.unpersist()
    return seconds


def gbdt_lr_fit(train_df, cfg):
    """The whole GBDT+LR fit (preparation, trees, leaves, LR grid and final LR), timed."""
    estimator = GBDTLR.from_config(cfg, FeatureSpec.from_config(cfg["schema"]))
    return timed("GBDT+LR fit (preparation, trees, leaves, LR grid)", lambda: estimator.fit(train_df))


def at_scale(spark, rows, seed, overrides):
    """GBDT+LR on ``rows`` synthetic Criteo-like rows against LightGBM on the same rows collected."""
    data = criteo_like(spark, rows, seed).cache()
    cfg = config(LIKE_CATEGORICAL, [], seed, overrides)
    train_df, test_df = stratified_split(data, "Label", cfg["split"]["test_fraction"], seed)
    train_df, test_df = train_df.cache(), test_df.cache()
    print(f"Criteo-like table: {train_df.count()} training rows, {test_df.count()} test rows", flush=True)
    model, seconds = gbdt_lr_fit(train_df, cfg)
    scored = {
        "gbdt_lr": model.transform(test_df).select("Label", SCORE),
        "trees_only": model.copy({model.mode: "trees_only"}).transform(test_df).select("Label", SCORE),
    }
    result = compare(evaluate(scored, "Label"))["gbdt_lr"]
    lgb_result, lgb_s = lightgbm_reference(train_df.toPandas(), test_df.toPandas(), LIKE_CATEGORICAL, seed)
    data.unpersist()
    return result, seconds, lgb_result, lgb_s


def lightgbm_reference(train_pdf, test_pdf, categorical, seed):
    """LightGBM as the issue measured it: lr 0.05, 31 leaves, early stopping on 10% of train, 2 threads."""
    import lightgbm as lgb
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    def frame(pdf):
        x = pdf[NUMERIC + categorical].copy()
        for c in categorical:
            x[c] = x[c].astype("category")
        return x

    x, y = frame(train_pdf), train_pdf.Label.values
    x_test = frame(test_pdf)
    for c in categorical:
        x_test[c] = x_test[c].cat.set_categories(x[c].cat.categories)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.1, stratify=y, random_state=seed)
    started = time.time()
    model = lgb.LGBMClassifier(
        learning_rate=0.05, num_leaves=31, n_estimators=2000, num_threads=2, verbose=-1, random_state=seed
    )
    model.fit(x_fit, y_fit, eval_set=[(x_val, y_val)], callbacks=[lgb.early_stopping(50, verbose=False)])
    seconds = time.time() - started
    p = model.predict_proba(x_test)[:, 1]
    y_test = test_pdf.Label.values
    base = y_test.mean()
    entropy = -(base * np.log(base) + (1 - base) * np.log(1 - base))
    return {
        "roc_auc": roc_auc_score(y_test, p),
        "log_loss": log_loss(y_test, p),
        "normalized_entropy": log_loss(y_test, p) / entropy,
        "trees": model.best_iteration_,
    }, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic table (0 = skip it)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a train_gbdt_lr.yaml key, e.g. trees.num_trees=200",
    )
    args = parser.parse_args()
    if not ARFF_45K.exists():
        sys.exit(f"data not found: {ARFF_45K}")
    os.environ.setdefault("SPARK_MASTER", "local[2]")
    spark = get_spark("bench_gbdt_lr", ROOT / "conf" / "spark" / "local.yaml")

    data, categorical = read_arff(spark)
    data = data.cache()
    print(f"Criteo 45K: {data.count()} rows, {len(categorical)} categorical columns", flush=True)
    results, ours_s, train_df, test_df, models, cfg = ours(spark, data, categorical, [], args.seed, args.set)
    lgb_result, lgb_s = lightgbm_reference(train_df.toPandas(), test_df.toPandas(), categorical, args.seed)
    tree_s = tree_stages(models, train_df, cfg)
    _, fit_s = gbdt_lr_fit(train_df, cfg)

    print("\nmodel        AUC     NE      log loss")
    for name in MODELS:
        r = results[name]
        print(f"{name:<12} {r['roc_auc']:.4f}  {r['normalized_entropy']:.4f}  {r['log_loss']:.4f}")
    print(
        f"{'lightgbm':<12} {lgb_result['roc_auc']:.4f}  {lgb_result['normalized_entropy']:.4f}  "
        f"{lgb_result['log_loss']:.4f}  ({lgb_result['trees']} trees)"
    )
    gain_lr = 100 * (1 - results["gbdt_lr"]["normalized_entropy"] / results["lr_only"]["normalized_entropy"])
    gain_trees = 100 * (1 - results["gbdt_lr"]["normalized_entropy"] / results["trees_only"]["normalized_entropy"])
    print(
        f"NE gain of GBDT+LR: {gain_lr:.2f}% over LR-only, {gain_trees:.2f}% over trees-only "
        f"(paper: 2.86% and 3.42%); relative NE {results['gbdt_lr']['relative_ne_pct']:.2f}% (paper 96.58%)"
    )
    print(
        f"time: ours {ours_s:.1f}s (three models, Spark local[2]), LightGBM {lgb_s:.1f}s, "
        f"ratio {ours_s / lgb_s:.1f}x; the GBDT+LR fit alone {fit_s:.1f}s, {fit_s / lgb_s:.1f}x LightGBM"
    )
    print(
        f"tree stage alone: XGBoost {tree_s['xgboost']:.1f}s, GBTClassifier {tree_s['spark']:.1f}s, "
        f"{tree_s['spark'] / tree_s['xgboost']:.1f}x faster"
    )
    importances = models.gbdt_lr.trees.importances(FeatureSpec.from_config(cfg["schema"]).tree_input_names())
    top = importances["gain"][:5]
    print("gain importance, top 5:", ", ".join(f"{i['feature']} {i['importance']:.3f}" for i in top))

    full, full_categorical = read_full_sample(spark, CSV_4K)
    rescored_same = fresh_session_rescoring(spark, models, cfg, test_df)
    print(f"jobs/score.py in a fresh session reproduces the training-time test scores exactly: {rescored_same}")
    full_results, full_s, *_ = ours(
        spark, full.cache(), [], full_categorical, args.seed, ["features.min_category_count=5", *args.set]
    )
    print(
        f"full-column sample (4.6K rows, 26 hashed categoricals): GBDT+LR AUC "
        f"{full_results['gbdt_lr']['roc_auc']:.4f} NE {full_results['gbdt_lr']['normalized_entropy']:.4f}, "
        f"LR-only AUC {full_results['lr_only']['roc_auc']:.4f}, trees-only AUC "
        f"{full_results['trees_only']['roc_auc']:.4f} ({full_s:.1f}s)"
    )
    scale = at_scale(spark, args.rows, args.seed, args.set) if args.rows else None
    if scale:
        result, seconds, lgb_scale, lgb_scale_s = scale
        print(
            f"{args.rows:,} Criteo-like rows: GBDT+LR AUC {result['roc_auc']:.4f} NE "
            f"{result['normalized_entropy']:.4f} in {seconds:.1f}s; LightGBM AUC {lgb_scale['roc_auc']:.4f} NE "
            f"{lgb_scale['normalized_entropy']:.4f} in {lgb_scale_s:.1f}s ({lgb_scale['trees']} trees); "
            f"time ratio {seconds / lgb_scale_s:.1f}x"
        )
    print(
        json.dumps(
            {
                "seed": args.seed,
                "gbdt_lr_auc": results["gbdt_lr"]["roc_auc"],
                "gbdt_lr_ne": results["gbdt_lr"]["normalized_entropy"],
                "lr_auc": results["lr_only"]["roc_auc"],
                "lr_ne": results["lr_only"]["normalized_entropy"],
                "trees_auc": results["trees_only"]["roc_auc"],
                "trees_ne": results["trees_only"]["normalized_entropy"],
                "lightgbm_auc": lgb_result["roc_auc"],
                "lightgbm_ne": lgb_result["normalized_entropy"],
                "ne_gain_vs_lr_pct": gain_lr,
                "ne_gain_vs_trees_pct": gain_trees,
                "ours_s": ours_s,
                "lightgbm_s": lgb_s,
                "fresh_session_scores_equal": rescored_same,
                "full_sample_gbdt_lr_auc": full_results["gbdt_lr"]["roc_auc"],
                "xgb_trees_s": tree_s["xgboost"],
                "spark_gbt_s": tree_s["spark"],
                "gbdt_lr_fit_s": fit_s,
                "rows_1m_rows": args.rows,
                "rows_1m_ours_s": scale[1] if scale else None,
                "rows_1m_lightgbm_s": scale[3] if scale else None,
                "rows_1m_ours_auc": scale[0]["roc_auc"] if scale else None,
                "rows_1m_lightgbm_auc": scale[2]["roc_auc"] if scale else None,
            }
        )
    )


if __name__ == "__main__":
    main()
