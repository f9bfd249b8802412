"""GBDT+LR (He et al., 2014) as one Spark ML Estimator, with its LR-only and trees-only baselines as modes.

The training rows are split in two: boosted trees learn on one part, and the logistic regression learns on the
other from the trees' leaf one-hots (plus the raw LR features), so that the LR sees leaves fitted on rows it was
not trained on. The LR's regularisation is chosen by validation log loss. Trees come from XGBoost
(``xgboost.spark``, the default) or MLlib's ``GBTClassifier`` (``learner='spark'``). ``GBDTLR`` drops into a
``Pipeline`` or ``CrossValidator``; its model saves and loads like any Spark ML model.
"""
from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from typing import Any, Callable, Mapping

from pyspark import keyword_only
from pyspark.ml import Estimator, Model, Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from pipelines.gbdt_lr.calibration import recalibrate
from pipelines.gbdt_lr.features import LR_FEATURES, TREE_FEATURES, FeatureSpec, max_category_count, preparation_stages
from pipelines.gbdt_lr.leaves import LeafEncoder
from pipelines.gbdt_lr.xgboost_leaves import XGBoostLeafEncoder, require_xgboost_session
from pipelines.metrics import log_loss
from pipelines.sampling import hash_split, row_uniform
from pipelines.validation import check_param

SCORE = "score"
GBDT_LR_FEATURES = "gbdt_lr_features"
HELD_OUT = "_lr_held_out"
MODES = ("gbdt_lr", "lr_only", "trees_only")
LEARNERS = ("xgboost", "spark")

# name, configuration key (train_gbdt_lr.yaml), default, converter, doc: each Param stated once.
_PARAMS: list[tuple[str, str, Any, Callable, str]] = [
    ("labelCol", "schema.label", "label", TypeConverters.toString, "label column (0 or 1)"),
    ("numericCols", "schema.numeric", [], TypeConverters.toListString, "numeric feature columns"),
    ("categoricalCols", "schema.categorical", [], TypeConverters.toListString,
     "low-cardinality categorical columns (one-hot for the LR, category index for the trees)"),
    ("hashedCols", "schema.hashed", [], TypeConverters.toListString,
     "high-cardinality id columns (hashed one-hot for the LR, frequency rank for the trees)"),
    ("mode", "", "gbdt_lr", TypeConverters.toString,
     "gbdt_lr (leaves + LR), lr_only (the LR on raw features) or trees_only (the trees' own probability)"),
    ("learner", "trees.learner", "xgboost", TypeConverters.toString, "tree learner: xgboost or spark (GBTClassifier)"),
    ("seed", "split.seed", 42, TypeConverters.toInt, "seed of every draw (splits, sampling, trees)"),
    ("treeFraction", "split.tree_fraction", 0.5, TypeConverters.toFloat,
     "share of training rows for the trees; the LR learns on the rest"),
    ("validationFraction", "split.validation_fraction", 0.25, TypeConverters.toFloat,
     "share of the LR part held out to choose the LR's regularisation"),
    ("minCategoryCount", "features.min_category_count", 10, TypeConverters.toInt,
     "rarer category values become __other__"),
    ("logNumeric", "features.log_numeric", True, TypeConverters.toBoolean, "LR sees sign(x) * log(1 + |x|)"),
    ("hashBuckets", "features.hash_buckets", 4096, TypeConverters.toInt, "hash buckets of the LR's id one-hots"),
    ("numTrees", "trees.num_trees", 100, TypeConverters.toInt, "boosting rounds (at most, with early stopping)"),
    ("maxDepth", "trees.max_depth", 4, TypeConverters.toInt, "tree depth"),
    ("maxLeaves", "trees.max_leaves", 0, TypeConverters.toInt, "leaves per tree, 0 = no limit (xgboost)"),
    ("growPolicy", "trees.grow_policy", "depthwise", TypeConverters.toString,
     "depthwise or lossguide (leaf-wise, like LightGBM; xgboost)"),
    ("stepSize", "trees.step_size", 0.1, TypeConverters.toFloat, "learning rate"),
    ("subsamplingRate", "trees.subsampling_rate", 0.8, TypeConverters.toFloat, "row share per tree"),
    ("colsampleBytree", "trees.colsample_bytree", 1.0, TypeConverters.toFloat, "column share per tree (xgboost)"),
    ("minInstancesPerNode", "trees.min_instances_per_node", 20, TypeConverters.toInt,
     "minimum rows in a leaf (spark)"),
    ("minChildWeight", "trees.min_child_weight", 1.0, TypeConverters.toFloat,
     "minimum hessian sum in a leaf (xgboost)"),
    ("regAlpha", "trees.reg_alpha", 0.0, TypeConverters.toFloat, "L1 penalty on leaf weights (xgboost)"),
    ("regLambda", "trees.reg_lambda", 1.0, TypeConverters.toFloat, "L2 penalty on leaf weights (xgboost)"),
    ("scalePosWeight", "trees.scale_pos_weight", 1.0, TypeConverters.toFloat,
     "weight of positive rows for the trees (xgboost); trees-only scores are re-calibrated for it"),
    ("maxBins", "trees.max_bins", 64, TypeConverters.toInt, "histogram bins per feature"),
    ("earlyStoppingRounds", "trees.early_stopping_rounds", 0, TypeConverters.toInt,
     "stop after this many rounds without a better validation log loss, 0 = off (xgboost)"),
    ("treeValidationFraction", "trees.validation_fraction", 0.1, TypeConverters.toFloat,
     "share of the tree part held out for early stopping (xgboost)"),
    ("numWorkers", "trees.num_workers", 0, TypeConverters.toInt,
     "XGBoost workers, 0 = one per rowsPerWorker rows, at most the cluster's task slots (xgboost)"),
    ("rowsPerWorker", "trees.rows_per_worker", 100_000, TypeConverters.toInt,
     "with numWorkers 0: training rows per XGBoost worker (xgboost)"),
    ("regGrid", "lr.reg_grid", [0.001, 0.01, 0.1], TypeConverters.toListFloat, "LR regParam values tried"),
    ("elasticNet", "lr.elastic_net", 0.0, TypeConverters.toFloat, "LR elasticNetParam: 0 = L2, 1 = L1"),
    ("standardization", "lr.standardization", False, TypeConverters.toBoolean,
     "penalise standardised LR coefficients"),
    ("maxIter", "lr.max_iter", 200, TypeConverters.toInt, "LR iterations"),
    ("parallelism", "lr.parallelism", 3, TypeConverters.toInt, "grid values fitted at once (driver threads)"),
    ("useRawFeatures", "lr.use_raw_features", True, TypeConverters.toBoolean,
     "GBDT+LR features = leaves + raw LR features (false: leaves only)"),
    ("negativeRate", "downsampling.negative_rate", 1.0, TypeConverters.toFloat,
     "share of negatives kept for training; scores are re-calibrated"),
    ("scoreCol", "", SCORE, TypeConverters.toString, "output: P(label=1), re-calibrated for downsampling"),
    ("probabilityCol", "", "probability", TypeConverters.toString,
     "output: the model's probability vector before re-calibration"),
]


class _GBDTLRParams(Params):
    """The Params of ``GBDTLR`` and its model, generated from ``_PARAMS``."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(**{name: default for name, _, default, _, _ in _PARAMS})

    def get(self, name: str) -> Any:
        return self.getOrDefault(getattr(self, name))

    def spec(self) -> FeatureSpec:
        return FeatureSpec(self.get("labelCol"), self.get("numericCols"), self.get("categoricalCols"),
                           self.get("hashedCols"))


for _name, _key, _default, _converter, _doc in _PARAMS:
    setattr(_GBDTLRParams, _name, Param(Params._dummy(), _name, _doc, typeConverter=_converter))


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

    @keyword_only
    def __init__(self, **params: Any):
        super().__init__()
        self._set(**self._input_kwargs)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], spec: FeatureSpec, **params: Any) -> "GBDTLR":
        """The estimator a ``train_gbdt_lr.yaml``-shaped configuration describes (``schema`` from ``spec``)."""
        values: dict[str, Any] = {"labelCol": spec.label, "numericCols": spec.numeric,
                                  "categoricalCols": spec.categorical, "hashedCols": spec.hashed}
        for name, key, _, _, _ in _PARAMS:
            section, _, field = key.partition(".")
            if section and section != "schema" and field in cfg.get(section, {}):
                values[name] = cfg[section][field]
        return cls(**{**values, **params})

    def _check(self) -> None:
        name = type(self).__name__
        check_param(name, "mode", self.get("mode"), "one of " + ", ".join(MODES), lambda v: v in MODES)
        check_param(name, "learner", self.get("learner"), "one of " + ", ".join(LEARNERS), lambda v: v in LEARNERS)
        check_param(name, "negativeRate", self.get("negativeRate"), "a number in (0, 1]", lambda v: 0 < v <= 1)
        check_param(name, "treeFraction", self.get("treeFraction"), "a number in (0, 1)", lambda v: 0 < v < 1)
        check_param(name, "regGrid", self.get("regGrid"), "a non-empty list of numbers >= 0",
                    lambda v: len(v) > 0 and min(v) >= 0)
        check_param(name, "numericCols/categoricalCols/hashedCols", self.spec().inputs, "at least one column",
                    lambda v: len(v) > 0)

    def tree_learner(self, categories: int) -> Estimator:
        """The leaf encoder of the chosen learner, on ``tree_features``."""
        get = self.get
        common = dict(featuresCol=TREE_FEATURES, labelCol=get("labelCol"), outputCol="leaves",
                      numTrees=get("numTrees"), maxDepth=get("maxDepth"), seed=get("seed"))
        if get("learner") == "spark":
            return LeafEncoder(**common, stepSize=get("stepSize"), subsamplingRate=get("subsamplingRate"),
                               minInstancesPerNode=get("minInstancesPerNode"), maxBins=max(get("maxBins"), categories))
        return XGBoostLeafEncoder(
            **common, maxLeaves=get("maxLeaves"), growPolicy=get("growPolicy"), learningRate=get("stepSize"),
            minChildWeight=get("minChildWeight"), regAlpha=get("regAlpha"), regLambda=get("regLambda"),
            subsample=get("subsamplingRate"), colsampleBytree=get("colsampleBytree"),
            scalePosWeight=get("scalePosWeight"), maxBin=get("maxBins"),
            earlyStoppingRounds=get("earlyStoppingRounds"), validationFraction=get("treeValidationFraction"),
            numWorkers=get("numWorkers"), rowsPerWorker=get("rowsPerWorker"), featureTypes=self.tree_feature_types())

    def tree_feature_types(self) -> list[str]:
        """XGBoost's type of each ``tree_features`` slot: category indices ('c') split by partition, like MLlib's
        categorical splits; imputed numbers, missing flags and id frequency ranks are numbers ('q')."""
        spec = self.spec()
        return ["q"] * (2 * len(spec.numeric)) + ["c"] * len(spec.categorical) + ["q"] * len(spec.hashed)

    def _lr(self, features: str, reg: float) -> LogisticRegression:
        return LogisticRegression(featuresCol=features, labelCol=self.get("labelCol"), regParam=reg,
                                  elasticNetParam=self.get("elasticNet"), standardization=self.get("standardization"),
                                  maxIter=self.get("maxIter"), tol=1e-7, predictionCol="_lr_prediction",
                                  rawPredictionCol="_lr_raw", probabilityCol="_lr_probability")

    def choose_regularisation(self, fit: DataFrame, validation: DataFrame, features: str,
                              log: Callable[[str], None]) -> tuple[float, dict[float, float]]:
        """Fit one LR per ``regGrid`` value on ``fit``; keep the lowest validation log loss (of re-calibrated
        scores).

        The fits run ``parallelism`` at a time from driver threads, as ``pyspark.ml.tuning`` does: each
        L-BFGS iteration is one small Spark job, so a lone fit leaves the cores idle between jobs. ``fit`` and
        ``validation`` should come from a cached table (each LR caches its own blocks of ``fit``).
        """
        label, rate = self.get("labelCol"), self.get("negativeRate")

        def validation_loss(reg: float) -> float:
            scored = self._lr(features, reg).fit(fit).transform(validation)
            scored = scored.withColumn(SCORE, recalibrate(_positive_probability("_lr_probability"), rate))
            return log_loss(scored, SCORE, label)

        grid = [float(reg) for reg in self.get("regGrid")]
        with ThreadPool(max(1, min(self.get("parallelism"), len(grid)))) as pool:
            losses = dict(zip(grid, pool.map(inheritable_thread_target(fit.sparkSession)(validation_loss), grid)))
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
        if self.get("learner") == "xgboost" and self.get("mode") != "lr_only":
            require_xgboost_session(dataset.sparkSession)     # before any work, not after the preparation
        spec, seed, rate = self.spec(), self.get("seed"), self.get("negativeRate")
        prep = Pipeline(stages=preparation_stages(spec, self.get("minCategoryCount"), self.get("logNumeric"),
                                                  self.get("hashBuckets"))).fit(dataset)
        rows = prep.transform(downsample_negatives(dataset, spec.label, rate, seed)).cache()
        tree_part, lr_part = hash_split(rows, [self.get("treeFraction"), 1 - self.get("treeFraction")], seed,
                                        "tree part")
        # The LR's validation rows, drawn before leaves are added so that both modes hold out the same rows.
        lr_part = lr_part.withColumn(HELD_OUT, row_uniform(lr_part, seed, "lr validation")
                                     < self.get("validationFraction"))
        return Prepared(prep, rows, tree_part, lr_part)

    def fit_prepared(self, prepared: Prepared, log: Callable[[str], None] = print) -> "GBDTLRModel":
        """The model of this estimator's ``mode`` on rows ``prepare`` made (with the same Params)."""
        self._check()
        mode, tree_part, lr_part = self.get("mode"), prepared.tree_part, prepared.lr_part
        stages: dict[str, Any] = {"prep": prepared.prep}
        chosen: dict[str, Any] = {"mode": mode, "learner": self.get("learner"),
                                  "negative_rate": self.get("negativeRate")}
        if mode != "lr_only":
            log(f"fitting up to {self.get('numTrees')} {self.get('learner')} trees of depth {self.get('maxDepth')} "
                f"on the {'tree part' if mode == 'gbdt_lr' else 'training rows'}")
            trees = self.tree_learner(max_category_count(prepared.prep) + 2)   # + __other__ and the unseen bucket
            stages["trees"] = trees.fit(tree_part if mode == "gbdt_lr" else prepared.rows)
            chosen["tree_leaves"] = stages["trees"].leaf_counts()
        if mode == "gbdt_lr":
            log("choosing the GBDT+LR regularisation on the validation part")
            lr_rows = self.assembler().transform(stages["trees"].transform(lr_part)).cache()
            reg, losses = self.choose_regularisation(lr_rows.filter(~F.col(HELD_OUT)), lr_rows.filter(HELD_OUT),
                                                     GBDT_LR_FEATURES, log)
            stages["lr"] = self._lr(GBDT_LR_FEATURES, reg).fit(lr_rows)
            lr_rows.unpersist()
        elif mode == "lr_only":
            log("LR-only: raw features, the same grid")
            lr_fit = tree_part.unionByName(lr_part.filter(~F.col(HELD_OUT)).drop(HELD_OUT))
            reg, losses = self.choose_regularisation(lr_fit, lr_part.filter(HELD_OUT), LR_FEATURES, log)
            stages["lr"] = self._lr(LR_FEATURES, reg).fit(prepared.rows)
        if mode != "trees_only":
            chosen.update(reg=reg, validation_log_loss={str(r): loss for r, loss in losses.items()})   # JSON keys
        model = GBDTLRModel(stages, chosen)
        model._resetUid(self.uid)
        return self._copyValues(model)

    def assembler(self) -> VectorAssembler:
        inputs = ["leaves", LR_FEATURES] if self.get("useRawFeatures") else ["leaves"]
        return VectorAssembler(inputCols=inputs, outputCol=GBDT_LR_FEATURES)


class GBDTLRModel(Model, _GBDTLRParams, MLReadable, MLWritable):
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
        mode, rate = self.get("mode"), self.get("negativeRate")
        missing = [stage for stage in {"gbdt_lr": ("trees", "lr"), "lr_only": ("lr",), "trees_only": ("trees",)}[mode]
                   if stage not in self.stages]
        if missing:
            raise ValueError(f"This GBDTLRModel was fitted with mode '{self.chosen.get('mode')}' and has no "
                             f"{' or '.join(missing)} stage for mode '{mode}'")
        if mode == "trees_only":
            scored = self.trees.tree_probability(prepared, "_p")
            p = F.col("_p")
            probability = array_to_vector(F.array(1 - p, p))
            if self.chosen.get("learner") == "xgboost":
                rate = rate / self.get("scalePosWeight")   # weighting positives by s = keeping 1/s of negatives
        else:
            if mode == "gbdt_lr":
                assembler = VectorAssembler(inputCols=["leaves", LR_FEATURES] if self.get("useRawFeatures")
                                            else ["leaves"], outputCol=GBDT_LR_FEATURES)
                prepared = assembler.transform(self.trees.transform(prepared))
            scored = self.stages["lr"].transform(prepared)
            p, probability = _positive_probability("_lr_probability"), F.col("_lr_probability")
        outputs = [probability.alias(self.get("probabilityCol")),
                   (p if rate == 1.0 else recalibrate(p, rate)).alias(self.get("scoreCol"))]
        return scored.select(*[F.col(f"`{c}`") for c in keep], *outputs)

    def write(self) -> MLWriter:
        return _GBDTLRModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _GBDTLRModelReader(cls)


class _GBDTLRModelWriter(MLWriter):
    """Params and choices as metadata; the fitted stages as one ``PipelineModel`` (the preparation's stages, then
    the trees and the LR as fitted), which Spark ML persists on a classic session and over Connect alike."""

    def __init__(self, instance: GBDTLRModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        stages = self.instance.stages
        fitted = [name for name in ("trees", "lr") if name in stages]
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extraMetadata={
            "prep_stages": len(stages["prep"].stages), "fitted": fitted, "chosen": self.instance.chosen})
        flat = PipelineModel(stages=[*stages["prep"].stages, *[stages[name] for name in fitted]])
        flat.write().overwrite().save(f"{path}/stages")


class _GBDTLRModelReader(MLReader):
    def __init__(self, cls: type):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> GBDTLRModel:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        flat, n = PipelineModel.load(f"{path}/stages").stages, metadata["prep_stages"]
        stages = {"prep": PipelineModel(stages=flat[:n]), **dict(zip(metadata["fitted"], flat[n:]))}
        model = self.cls(stages, metadata["chosen"])
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model


@dataclass
class TrainedModels:
    """GBDT+LR and its two baselines, each a ``GBDTLRModel`` that adds ``score``. Trees-only is GBDT+LR's own
    trees (as in He et al.'s comparison); LR-only is fitted on the same rows with the same grid."""

    gbdt_lr: GBDTLRModel
    lr_only: GBDTLRModel
    trees_only: GBDTLRModel
    chosen: dict[str, Any]


def train(train_df: DataFrame, spec: FeatureSpec, cfg: Mapping[str, Any],
          log: Callable[[str], None] = print) -> TrainedModels:
    """GBDT+LR and LR-only on ``train_df`` (which passed ``check_training_data``; one preparation, the same rows),
    trees-only from GBDT+LR."""
    estimator = GBDTLR.from_config(cfg, spec)
    prepared = estimator.prepare(train_df)
    gbdt_lr = estimator.fit_prepared(prepared, log)
    lr_only = estimator.copy({estimator.mode: "lr_only"}).fit_prepared(prepared, log)
    prepared.rows.unpersist()
    chosen = {"gbdt_lr_reg": gbdt_lr.chosen["reg"], "lr_only_reg": lr_only.chosen["reg"],
              "gbdt_lr_validation_log_loss": gbdt_lr.chosen["validation_log_loss"],
              "lr_only_validation_log_loss": lr_only.chosen["validation_log_loss"],
              **{key: gbdt_lr.chosen[key] for key in ("negative_rate", "learner", "tree_leaves")}}
    return TrainedModels(gbdt_lr, lr_only, gbdt_lr.copy({gbdt_lr.mode: "trees_only"}), chosen)


def stratified_split(df: DataFrame, label: str, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Train/test split, a seeded draw per row from its values, so each class is split
    ``1 - test_fraction : test_fraction`` in expectation, without a global sort of the table, and the same rows
    go to test whatever the table's order."""
    train_part, test_part = hash_split(df, [1 - test_fraction, test_fraction], seed, f"test split by {label}")
    return train_part, test_part
