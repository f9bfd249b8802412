"""GBDT+LR training (He et al., 2014) with LR-only and trees-only baselines on the same split.

The training rows are split in two: boosted trees learn on one part, and the logistic regression
learns on the other from the trees' leaf one-hots (plus the raw LR features), so that the LR sees
leaves fitted on rows it was not trained on. The LR's regularisation is chosen by validation log loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from typing import Any, Callable, Mapping

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from pipelines.gbdt_lr.calibration import ProbabilityScore
from pipelines.gbdt_lr.features import (
    LR_FEATURES,
    TREE_FEATURES,
    FeatureSpec,
    max_category_count,
    preparation_stages,
)
from pipelines.gbdt_lr.leaves import LeafEncoder, LeafEncoderModel
from pipelines.metrics import log_loss
from pipelines.sampling import hash_split, row_uniform

SCORE = "score"
GBDT_LR_FEATURES = "gbdt_lr_features"


@dataclass
class TrainedModels:
    """The GBDT+LR pipeline and its two baselines, each a PipelineModel that adds ``score``."""

    gbdt_lr: PipelineModel
    lr_only: PipelineModel
    trees_only: PipelineModel
    chosen: dict[str, Any]

    def leaf_model(self) -> LeafEncoderModel:
        return next(s for s in self.gbdt_lr.stages if isinstance(s, LeafEncoderModel))


def downsample_negatives(df: DataFrame, label: str, rate: float, seed: int) -> DataFrame:
    """All positives and a seeded share ``rate`` of the negatives (drawn from each row's values, so the same
    rows whatever the table's order)."""
    if rate >= 1.0:
        return df
    return df.filter((F.col(label) == 1) | (row_uniform(df, seed, "downsample negatives") < rate))


def _lr(cfg: Mapping[str, Any], features: str, label: str, reg: float) -> LogisticRegression:
    return LogisticRegression(featuresCol=features, labelCol=label, regParam=reg,
                              elasticNetParam=cfg["elastic_net"], standardization=cfg["standardization"],
                              maxIter=cfg["max_iter"], tol=1e-7,
                              predictionCol="lr_prediction", rawPredictionCol="lr_raw", probabilityCol="lr_prob")


def choose_regularisation(fit: DataFrame, validation: DataFrame, cfg: Mapping[str, Any], features: str,
                          label: str, scorer: ProbabilityScore, log: Callable[[str], None]) -> tuple[float, dict]:
    """Fit one LR per ``reg_grid`` value on ``fit``; keep the lowest validation log loss.

    The fits run ``parallelism`` at a time from driver threads, as ``pyspark.ml.tuning`` does: each
    L-BFGS iteration is one small Spark job, so a lone fit leaves the cores idle between jobs.
    """
    fit, validation = fit.cache(), validation.cache()

    def validation_loss(reg: float) -> float:
        model = _lr(cfg, features, label, reg).fit(fit)
        return log_loss(scorer.transform(model.transform(validation)), SCORE, label)

    grid = [float(reg) for reg in cfg["reg_grid"]]
    with ThreadPool(max(1, min(cfg["parallelism"], len(grid)))) as pool:
        losses = dict(zip(grid, pool.map(inheritable_thread_target(fit.sparkSession)(validation_loss), grid)))
    fit.unpersist()
    validation.unpersist()
    for reg, loss in losses.items():
        log(f"  {features}: regParam={reg} validation log loss {loss:.5f}")
    best = min(losses, key=losses.get)
    return best, losses


def train(train_df: DataFrame, spec: FeatureSpec, cfg: Mapping[str, Any],
          log: Callable[[str], None] = print) -> TrainedModels:
    """Fit preparation on all training rows, trees on one part, LR on the other; baselines alongside.

    ``train_df`` comes from an input that passed ``check_training_data`` before it was split.
    """
    split, feats, trees_cfg, lr_cfg = cfg["split"], cfg["features"], cfg["trees"], cfg["lr"]
    seed, rate = split["seed"], cfg["downsampling"]["negative_rate"]
    prep = Pipeline(stages=preparation_stages(spec, feats["min_category_count"], feats["log_numeric"],
                                              feats["hash_buckets"])).fit(train_df)
    prepared = prep.transform(downsample_negatives(train_df, spec.label, rate, seed)).cache()
    tree_part, lr_part = hash_split(prepared, [split["tree_fraction"], 1 - split["tree_fraction"]], seed,
                                    "tree part")
    lr_fit, lr_val = hash_split(lr_part, [1 - split["validation_fraction"], split["validation_fraction"]], seed,
                                "lr validation")

    categories = max_category_count(prep) + 2  # + __other__ and StringIndexer's unseen bucket
    log(f"fitting {trees_cfg['num_trees']} trees of depth {trees_cfg['max_depth']} on the tree part")
    leaves = LeafEncoder(featuresCol=TREE_FEATURES, labelCol=spec.label, outputCol="leaves",
                         numTrees=trees_cfg["num_trees"], maxDepth=trees_cfg["max_depth"],
                         stepSize=trees_cfg["step_size"], subsamplingRate=trees_cfg["subsampling_rate"],
                         minInstancesPerNode=trees_cfg["min_instances_per_node"],
                         maxBins=max(trees_cfg["max_bins"], categories), seed=seed).fit(tree_part)
    inputs = ["leaves", LR_FEATURES] if lr_cfg["use_raw_features"] else ["leaves"]
    assemble = VectorAssembler(inputCols=inputs, outputCol=GBDT_LR_FEATURES)
    scorer = ProbabilityScore(inputCol="lr_prob", outputCol=SCORE, negativeRate=rate)

    log("choosing the GBDT+LR regularisation on the validation part")
    with_leaves = lambda df: assemble.transform(leaves.transform(df))  # noqa: E731
    reg, losses = choose_regularisation(with_leaves(lr_fit), with_leaves(lr_val), lr_cfg, GBDT_LR_FEATURES,
                                        spec.label, scorer, log)
    final_lr = _lr(lr_cfg, GBDT_LR_FEATURES, spec.label, reg).fit(with_leaves(lr_part))

    log("LR-only baseline: same raw features, same grid")
    lr_only_fit = tree_part.unionByName(lr_fit)
    reg_only, losses_only = choose_regularisation(lr_only_fit, lr_val, lr_cfg, LR_FEATURES, spec.label, scorer, log)
    lr_only = _lr(lr_cfg, LR_FEATURES, spec.label, reg_only).fit(prepared)
    prepared.unpersist()

    trees = leaves.gbt_model.copy().setFeaturesCol(TREE_FEATURES).setProbabilityCol("gbt_prob") \
        .setPredictionCol("gbt_prediction").setRawPredictionCol("gbt_raw")
    trees_scorer = ProbabilityScore(inputCol="gbt_prob", outputCol=SCORE, negativeRate=rate)
    return TrainedModels(
        gbdt_lr=PipelineModel(stages=[*prep.stages, leaves, assemble, final_lr, scorer]),
        lr_only=PipelineModel(stages=[*prep.stages, lr_only, scorer]),
        trees_only=PipelineModel(stages=[*prep.stages, trees, trees_scorer]),
        chosen={"gbdt_lr_reg": reg, "gbdt_lr_validation_log_loss": losses, "lr_only_reg": reg_only,
                "lr_only_validation_log_loss": losses_only, "negative_rate": rate,
                "tree_leaves": leaves.leaf_counts()})



def stratified_split(df: DataFrame, label: str, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Train/test split, a seeded draw per row from its values, so each class is split
    ``1 - test_fraction : test_fraction`` in expectation, without a global sort of the table, and the same rows
    go to test whatever the table's order."""
    train_part, test_part = hash_split(df, [1 - test_fraction, test_fraction], seed, f"test split by {label}")
    return train_part, test_part
