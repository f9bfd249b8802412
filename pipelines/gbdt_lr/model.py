"""GBDT+LR (He et al., 2014) as one Spark ML Estimator, with its LR-only and trees-only baselines as modes.

The training rows are split in two: boosted trees learn on one part, and the logistic regression learns on the
other from the trees' leaf one-hots (plus the raw LR features), so that the LR sees leaves fitted on rows it was
not trained on. The LR's regularisation is chosen by validation log loss. Trees come from XGBoost
(``xgboost.spark``, the default) or MLlib's ``GBTClassifier`` (``learner='spark'``). ``GBDTLR`` drops into a
``Pipeline`` or ``CrossValidator``; its model saves and loads like any Spark ML model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pyspark.ml import Estimator, Model, Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.param import TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.gbdt_lr.calibration import recalibrate
from pipelines.gbdt_lr.features import LR_FEATURES, TREE_FEATURES, FeatureSpec, max_category_count, preparation_stages
from pipelines.gbdt_lr.leaves import GBTParams, LeafEncoder
from pipelines.gbdt_lr.xgboost_leaves import BoosterParams, XGBoostLeafEncoder, require_xgboost_session
from pipelines.metrics import log_loss
from pipelines.sampling import hash_split, row_uniform
from pipelines.session import thread_map
from pipelines.stages import SavedModel, param
from pipelines.validation import check_param

SCORE = "score"
GBDT_LR_FEATURES = "gbdt_lr_features"
HELD_OUT = "_lr_held_out"
MODES = ("gbdt_lr", "lr_only", "trees_only")
LEARNERS = ("xgboost", "spark")


class _GBDTLRParams(GBTParams, BoosterParams):
    """The Params of ``GBDTLR`` and its model: its own, and those of both tree learners, which ``tree_learner`` passes
    on."""

    labelCol = param("label", "label column (0 or 1)")
    numericCols = param([], "numeric feature columns", TypeConverters.toListString)
    categoricalCols = param(
        [],
        "low-cardinality categorical columns (one-hot for the LR, category index for the trees)",
        TypeConverters.toListString,
    )
    hashedCols = param(
        [],
        "high-cardinality id columns (hashed one-hot for the LR, frequency rank for the trees)",
        TypeConverters.toListString,
    )
    mode = param(
        "gbdt_lr", "gbdt_lr (leaves + LR), lr_only (the LR on raw features) or trees_only (the trees' own probability)"
    )
    learner = param("xgboost", "tree learner: xgboost or spark (GBTClassifier)")
    treeFraction = param(0.5, "share of training rows for the trees; the LR learns on the rest")
    validationFraction = param(0.25, "share of the LR part held out to choose the LR's regularisation")
    minCategoryCount = param(10, "rarer category values become __other__")
    logNumeric = param(True, "LR sees sign(x) * log(1 + |x|)")
    hashBuckets = param(4096, "hash buckets of the LR's id one-hots")
    treeValidationFraction = param(0.1, "share of the tree part held out for early stopping (xgboost)")
    regGrid = param([0.001, 0.01, 0.1], "LR regParam values tried", TypeConverters.toListFloat)
    elasticNet = param(0.0, "LR elasticNetParam: 0 = L2, 1 = L1")
    standardization = param(False, "penalise standardised LR coefficients")
    maxIter = param(200, "LR iterations")
    parallelism = param(3, "grid values fitted at once (driver threads)")
    useRawFeatures = param(True, "GBDT+LR features = leaves + raw LR features (false: leaves only)")
    negativeRate = param(1.0, "share of negatives kept for training; scores are re-calibrated")
    scoreCol = param(SCORE, "output: P(label=1), re-calibrated for downsampling")
    probabilityCol = param("probability", "output: the model's probability vector before re-calibration")

    def spec(self) -> FeatureSpec:
        return FeatureSpec(
            self.value("labelCol"), self.value("numericCols"), self.value("categoricalCols"), self.value("hashedCols")
        )


# The key of train_gbdt_lr.yaml (section.field) that sets each Param of the job's estimator (schema: the spec).
CONFIG_KEYS = {
    "learner": "trees.learner",
    "seed": "split.seed",
    "treeFraction": "split.tree_fraction",
    "validationFraction": "split.validation_fraction",
    "minCategoryCount": "features.min_category_count",
    "logNumeric": "features.log_numeric",
    "hashBuckets": "features.hash_buckets",
    "numTrees": "trees.num_trees",
    "maxDepth": "trees.max_depth",
    "maxLeaves": "trees.max_leaves",
    "growPolicy": "trees.grow_policy",
    "stepSize": "trees.step_size",
    "subsamplingRate": "trees.subsampling_rate",
    "colsampleBytree": "trees.colsample_bytree",
    "minInstancesPerNode": "trees.min_instances_per_node",
    "minChildWeight": "trees.min_child_weight",
    "regAlpha": "trees.reg_alpha",
    "regLambda": "trees.reg_lambda",
    "scalePosWeight": "trees.scale_pos_weight",
    "maxBins": "trees.max_bins",
    "earlyStoppingRounds": "trees.early_stopping_rounds",
    "treeValidationFraction": "trees.validation_fraction",
    "numWorkers": "trees.num_workers",
    "rowsPerWorker": "trees.rows_per_worker",
    "regGrid": "lr.reg_grid",
    "elasticNet": "lr.elastic_net",
    "standardization": "lr.standardization",
    "maxIter": "lr.max_iter",
    "parallelism": "lr.parallelism",
    "useRawFeatures": "lr.use_raw_features",
    "negativeRate": "downsampling.negative_rate",
}


def downsample_negatives(df: DataFrame, label: str, rate: float, seed: int) -> DataFrame:
    """All positives and a seeded share ``rate`` of the negatives (drawn from each row's values, so the same
    rows whatever the table's order)."""
    if rate >= 1.0:
        return df
    return df.filter((F.col(label) == 1) | (row_uniform(df, seed, "downsample negatives") < rate))


def _positive_probability(probability: str) -> Column:
    return vector_to_array(F.col(probability))[1]


@dataclass
class Prepared:
    """Fitted preparation stages, the prepared (downsampled, cached) training rows and their two parts."""

    prep: PipelineModel
    rows: DataFrame
    tree_part: DataFrame
    lr_part: DataFrame


class GBDTLR(Estimator, _GBDTLRParams, DefaultParamsReadable, DefaultParamsWritable):
    """GBDT+LR, or one of its baselines (``mode``), fitted on a DataFrame with the declared columns."""

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], spec: FeatureSpec, **params: Any) -> "GBDTLR":
        """The estimator a ``train_gbdt_lr.yaml``-shaped configuration describes (``schema`` from ``spec``)."""
        values: dict[str, Any] = {
            "labelCol": spec.label,
            "numericCols": spec.numeric,
            "categoricalCols": spec.categorical,
            "hashedCols": spec.hashed,
        }
        for name, key in CONFIG_KEYS.items():
            section, _, field = key.partition(".")
            if field in cfg.get(section, {}):
                values[name] = cfg[section][field]
        return cls(**{**values, **params})

    def _check(self) -> None:
        name = type(self).__name__
        check_param(name, "mode", self.value("mode"), "one of " + ", ".join(MODES), lambda v: v in MODES)
        check_param(name, "learner", self.value("learner"), "one of " + ", ".join(LEARNERS), lambda v: v in LEARNERS)
        check_param(name, "negativeRate", self.value("negativeRate"), "a number in (0, 1]", lambda v: 0 < v <= 1)
        check_param(name, "treeFraction", self.value("treeFraction"), "a number in (0, 1)", lambda v: 0 < v < 1)
        check_param(
            name,
            "regGrid",
            self.value("regGrid"),
            "a non-empty list of numbers >= 0",
            lambda v: len(v) > 0 and min(v) >= 0,
        )
        check_param(
            name,
            "numericCols/categoricalCols/hashedCols",
            self.spec().inputs,
            "at least one column",
            lambda v: len(v) > 0,
        )

    def tree_learner(self, categories: int) -> Estimator:
        """The leaf encoder of the chosen learner, on ``tree_features``."""
        get = self.value
        columns = dict(featuresCol=TREE_FEATURES, labelCol=get("labelCol"), outputCol="leaves")
        if get("learner") == "spark":
            return LeafEncoder(**{**columns, **self.values_of(GBTParams), "maxBins": max(get("maxBins"), categories)})
        return XGBoostLeafEncoder(
            **{  # the Params XGBoost names its own way, then the ones of the same name
                **columns,
                **self.values_of(BoosterParams),
                "learningRate": get("stepSize"),
                "subsample": get("subsamplingRate"),
                "maxBin": get("maxBins"),
                "validationFraction": get("treeValidationFraction"),
                "featureTypes": self.tree_feature_types(),
            }
        )

    def tree_feature_types(self) -> list[str]:
        """XGBoost's type of each ``tree_features`` slot: category indices ('c') split by partition, like MLlib's
        categorical splits; imputed numbers, missing flags and id frequency ranks are numbers ('q')."""
        spec = self.spec()
        return ["q"] * (2 * len(spec.numeric)) + ["c"] * len(spec.categorical) + ["q"] * len(spec.hashed)

    def _lr(self, features: str, reg: float) -> LogisticRegression:
        v = self.value
        return LogisticRegression(
            featuresCol=features,
            labelCol=v("labelCol"),
            regParam=reg,
            elasticNetParam=v("elasticNet"),
            standardization=v("standardization"),
            maxIter=v("maxIter"),
            tol=1e-7,
            predictionCol="_lr_prediction",
            rawPredictionCol="_lr_raw",
            probabilityCol="_lr_probability",
        )

    def choose_regularisation(
        self, fit: DataFrame, validation: DataFrame, features: str, log: Callable[[str], None]
    ) -> tuple[float, dict[float, float]]:
        """Fit one LR per ``regGrid`` value on ``fit``; keep the lowest validation log loss (of re-calibrated
        scores).

        The fits run ``parallelism`` at a time from driver threads, as ``pyspark.ml.tuning`` does: each
        L-BFGS iteration is one small Spark job, so a lone fit leaves the cores idle between jobs. ``fit`` and
        ``validation`` should come from a cached table (each LR caches its own blocks of ``fit``).
        """
        label, rate = self.value("labelCol"), self.value("negativeRate")

        def validation_loss(reg: float) -> float:
            scored = self._lr(features, reg).fit(fit).transform(validation)
            scored = scored.withColumn(SCORE, recalibrate(_positive_probability("_lr_probability"), rate))
            return log_loss(scored, SCORE, label)

        grid = [float(reg) for reg in self.value("regGrid")]
        losses = dict(zip(grid, thread_map(fit.sparkSession, validation_loss, grid, self.value("parallelism"))))
        for reg, loss in losses.items():
            log(f"  {features}: regParam={reg} validation log loss {loss:.5f}")
        return min(losses, key=losses.get), losses

    def _fit(self, dataset: DataFrame) -> "GBDTLRModel":
        prepared = self.prepare(dataset)
        try:
            return self.fit_prepared(prepared)
        finally:
            prepared.rows.unpersist()

    def prepare(self, dataset: DataFrame) -> Prepared:
        """Preparation fitted on ``dataset``; its downsampled rows (cached) and their tree / LR parts. Models of
        every mode fitted from one ``Prepared`` (``fit_prepared``) learn on the same rows."""
        self._check()
        if self.value("learner") == "xgboost" and self.value("mode") != "lr_only":
            require_xgboost_session(dataset.sparkSession)  # before any work, not after the preparation
        spec, seed, rate = self.spec(), self.value("seed"), self.value("negativeRate")
        prep = Pipeline(
            stages=preparation_stages(
                spec, self.value("minCategoryCount"), self.value("logNumeric"), self.value("hashBuckets")
            )
        ).fit(dataset)
        rows = prep.transform(downsample_negatives(dataset, spec.label, rate, seed)).cache()
        tree_part, lr_part = hash_split(
            rows, [self.value("treeFraction"), 1 - self.value("treeFraction")], seed, "tree part"
        )
        # The LR's validation rows, drawn before leaves are added so that both modes hold out the same rows.
        lr_part = lr_part.withColumn(
            HELD_OUT, row_uniform(lr_part, seed, "lr validation") < self.value("validationFraction")
        )
        return Prepared(prep, rows, tree_part, lr_part)

    def fit_prepared(self, prepared: Prepared, log: Callable[[str], None] = print) -> "GBDTLRModel":
        """The model of this estimator's ``mode`` on rows ``prepare`` made (with the same Params)."""
        self._check()
        mode, tree_part, lr_part = self.value("mode"), prepared.tree_part, prepared.lr_part
        stages: dict[str, Any] = {"prep": prepared.prep}
        chosen: dict[str, Any] = {
            "mode": mode,
            "learner": self.value("learner"),
            "negative_rate": self.value("negativeRate"),
        }
        if mode != "lr_only":
            log(
                f"fitting up to {self.value('numTrees')} {self.value('learner')} trees of depth "
                f"{self.value('maxDepth')} on the {'tree part' if mode == 'gbdt_lr' else 'training rows'}"
            )
            trees = self.tree_learner(max_category_count(prepared.prep) + 2)  # + __other__ and the unseen bucket
            stages["trees"] = trees.fit(tree_part if mode == "gbdt_lr" else prepared.rows)
            chosen["tree_leaves"] = stages["trees"].leaf_counts()
        if mode == "gbdt_lr":
            log("choosing the GBDT+LR regularisation on the validation part")
            lr_rows = self.assembler().transform(stages["trees"].transform(lr_part)).cache()
            reg, losses = self.choose_regularisation(
                lr_rows.filter(~F.col(HELD_OUT)), lr_rows.filter(HELD_OUT), GBDT_LR_FEATURES, log
            )
            stages["lr"] = self._lr(GBDT_LR_FEATURES, reg).fit(lr_rows)
            lr_rows.unpersist()
        elif mode == "lr_only":
            log("LR-only: raw features, the same grid")
            lr_fit = tree_part.unionByName(lr_part.filter(~F.col(HELD_OUT)).drop(HELD_OUT))
            reg, losses = self.choose_regularisation(lr_fit, lr_part.filter(HELD_OUT), LR_FEATURES, log)
            stages["lr"] = self._lr(LR_FEATURES, reg).fit(prepared.rows)
        if mode != "trees_only":
            chosen.update(reg=reg, validation_log_loss={str(r): loss for r, loss in losses.items()})  # JSON keys
        model = GBDTLRModel(stages, chosen)
        model._resetUid(self.uid)
        return self._copyValues(model)

    def assembler(self) -> VectorAssembler:
        inputs = ["leaves", LR_FEATURES] if self.value("useRawFeatures") else ["leaves"]
        return VectorAssembler(inputCols=inputs, outputCol=GBDT_LR_FEATURES)


class GBDTLRModel(Model, _GBDTLRParams, SavedModel):
    """Fitted stages (``prep``, ``trees``, ``lr``, as the mode needed) and what the fit chose; ``transform``
    adds ``probabilityCol`` and ``scoreCol``. A GBDT+LR model scores as trees-only with ``mode='trees_only'``."""

    def __init__(self, stages: dict[str, Any] | None = None, chosen: dict[str, Any] | None = None):
        super().__init__()
        self.stages = stages or {}
        self.chosen = chosen or {}

    @property
    def trees(self) -> Any:
        """The fitted leaf encoder (``LeafEncoderModel`` or ``XGBoostLeafEncoderModel``)."""
        return self.stages["trees"]

    def copy(self, extra: dict | None = None) -> "GBDTLRModel":
        that = super().copy(extra)
        that.stages, that.chosen = dict(self.stages), dict(self.chosen)
        return that

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return self.score_prepared(self.stages["prep"].transform(dataset), dataset.columns)

    def score_prepared(self, prepared: DataFrame, keep: list[str]) -> DataFrame:
        """``keep`` columns of rows ``stages['prep']`` prepared, with ``probabilityCol`` and ``scoreCol`` (models
        that share their preparation score one prepared table)."""
        mode, rate = self.value("mode"), self.value("negativeRate")
        missing = [
            stage
            for stage in {"gbdt_lr": ("trees", "lr"), "lr_only": ("lr",), "trees_only": ("trees",)}[mode]
            if stage not in self.stages
        ]
        if missing:
            raise ValueError(
                f"This GBDTLRModel was fitted with mode '{self.chosen.get('mode')}' and has no "
                f"{' or '.join(missing)} stage for mode '{mode}'"
            )
        if mode == "trees_only":
            scored = self.trees.tree_probability(prepared, "_p")
            p = F.col("_p")
            probability = array_to_vector(F.array(1 - p, p))
            if self.chosen.get("learner") == "xgboost":
                rate = rate / self.value("scalePosWeight")  # weighting positives by s = keeping 1/s of negatives
        else:
            if mode == "gbdt_lr":
                assembler = VectorAssembler(
                    inputCols=["leaves", LR_FEATURES] if self.value("useRawFeatures") else ["leaves"],
                    outputCol=GBDT_LR_FEATURES,
                )
                prepared = assembler.transform(self.trees.transform(prepared))
            scored = self.stages["lr"].transform(prepared)
            p, probability = _positive_probability("_lr_probability"), F.col("_lr_probability")
        outputs = [
            probability.alias(self.value("probabilityCol")),
            (p if rate == 1.0 else recalibrate(p, rate)).alias(self.value("scoreCol")),
        ]
        return scored.select(*[F.col(f"`{c}`") for c in keep], *outputs)

    def extra_metadata(self) -> dict[str, Any]:
        fitted = [name for name in ("trees", "lr") if name in self.stages]
        return {"prep_stages": len(self.stages["prep"].stages), "fitted": fitted, "chosen": self.chosen}

    def save_data(self, path: str, spark: SparkSession) -> None:
        """The fitted stages as one ``PipelineModel`` (``stages/``: the preparation's stages, then the trees and the
        LR as fitted), which Spark ML persists on a classic session and over Connect alike."""
        fitted = [self.stages[name] for name in ("trees", "lr") if name in self.stages]
        PipelineModel(stages=[*self.stages["prep"].stages, *fitted]).write().overwrite().save(f"{path}/stages")

    @classmethod
    def load_data(cls, path: str, spark: SparkSession, metadata: Mapping[str, Any]) -> "GBDTLRModel":
        flat, n = PipelineModel.load(f"{path}/stages").stages, metadata["prep_stages"]
        return cls(
            {"prep": PipelineModel(stages=flat[:n]), **dict(zip(metadata["fitted"], flat[n:]))}, metadata["chosen"]
        )


@dataclass
class TrainedModels:
    """GBDT+LR and its two baselines, each a ``GBDTLRModel`` that adds ``score``. Trees-only is GBDT+LR's own
    trees (as in He et al.'s comparison); LR-only is fitted on the same rows with the same grid."""

    gbdt_lr: GBDTLRModel
    lr_only: GBDTLRModel
    trees_only: GBDTLRModel
    chosen: dict[str, Any]


def train(
    train_df: DataFrame, spec: FeatureSpec, cfg: Mapping[str, Any], log: Callable[[str], None] = print
) -> TrainedModels:
    """GBDT+LR and LR-only on ``train_df`` (which passed ``check_training_data``; one preparation, the same rows),
    trees-only from GBDT+LR."""
    estimator = GBDTLR.from_config(cfg, spec)
    prepared = estimator.prepare(train_df)
    gbdt_lr = estimator.fit_prepared(prepared, log)
    lr_only = estimator.copy({estimator.mode: "lr_only"}).fit_prepared(prepared, log)
    prepared.rows.unpersist()
    chosen = {
        "gbdt_lr_reg": gbdt_lr.chosen["reg"],
        "lr_only_reg": lr_only.chosen["reg"],
        "gbdt_lr_validation_log_loss": gbdt_lr.chosen["validation_log_loss"],
        "lr_only_validation_log_loss": lr_only.chosen["validation_log_loss"],
        **{key: gbdt_lr.chosen[key] for key in ("negative_rate", "learner", "tree_leaves")},
    }
    return TrainedModels(gbdt_lr, lr_only, gbdt_lr.copy({gbdt_lr.mode: "trees_only"}), chosen)


def stratified_split(df: DataFrame, label: str, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Train/test split, a seeded draw per row from its values, so each class is split
    ``1 - test_fraction : test_fraction`` in expectation, without a global sort of the table, and the same rows
    go to test whatever the table's order."""
    train_part, test_part = hash_split(df, [1 - test_fraction, test_fraction], seed, f"test split by {label}")
    return train_part, test_part
