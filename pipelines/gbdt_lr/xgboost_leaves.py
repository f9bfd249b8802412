"""XGBoost trees for GBDT+LR: distributed training with ``xgboost.spark``, leaves by a pandas UDF over the booster.

``SparkXGBClassifier`` trains one booster across ``numWorkers`` barrier tasks (XGBoost's own collective,
histogram splits, second-order gain, early stopping on a validation part). The booster is then shipped to the
executors once (a broadcast) and ``Booster.predict(pred_leaf=True)`` (``udfs.xgboost``) gives each row's leaf
node in every tree, batch by batch. Node ids are mapped to per-tree leaf ordinals read from the booster's dump
(slots only for leaves that exist, which matters for loss-guided trees) and one-hot encoded as the Spark GBT path
does.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.connect import require_classic, share
from pipelines.gbdt_lr.leaves import EncoderParams, TreeParams, encode_leaves
from pipelines.sampling import row_uniform
from pipelines.session import job_description
from pipelines.stages import ArrayModel, param, snake_case
from pipelines.validation import check_param
from udfs.xgboost import dmatrix, leaves_udf, load_booster, probability_udf

VALIDATION_COL = "_xgb_validation"
GROW_POLICIES = ("depthwise", "lossguide")
# Params passed to SparkXGBClassifier under their snake_case names.
BOOSTER_ARGS = (
    "maxDepth",
    "maxLeaves",
    "growPolicy",
    "learningRate",
    "minChildWeight",
    "regAlpha",
    "regLambda",
    "subsample",
    "colsampleBytree",
    "scalePosWeight",
    "maxBin",
)


def leaf_tables(dump: list[str]) -> tuple[list[int], np.ndarray]:
    """Leaves per tree and a (trees x node ids) table of leaf ordinals (-1 for split nodes), from
    ``Booster.get_dump(dump_format="json")``."""
    leaves_per_tree = []
    for text in dump:
        stack, leaves = [json.loads(text)], []
        while stack:
            node = stack.pop()
            if "leaf" in node:
                leaves.append(node["nodeid"])
            stack.extend(node.get("children", []))
        leaves_per_tree.append(sorted(leaves))
    width = max(max(ids) for ids in leaves_per_tree) + 1
    table = np.full((len(dump), width), -1, dtype=np.int32)
    for t, ids in enumerate(leaves_per_tree):
        table[t, ids] = np.arange(len(ids), dtype=np.int32)
    return [len(ids) for ids in leaves_per_tree], table


def require_xgboost_session(spark: SparkSession) -> None:
    """Stop in one line over Spark Connect, where ``xgboost.spark`` cannot train (it needs RDD barrier mode)."""
    require_classic(
        spark,
        "trees.learner 'xgboost'",
        "xgboost.spark trains in RDD barrier mode; use trees.learner: spark over Spark Connect",
    )


def task_slots(spark: SparkSession) -> int:
    """Tasks the cluster runs at once now (its cores over ``spark.task.cpus``): the most barrier tasks that fit."""
    jsc = spark.sparkContext._jsc.sc()
    return max(1, jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().resourceProfileFromId(0)))


class BoosterParams(TreeParams):
    """Params of the XGBoost learner that ``GBDTLR`` passes on by name."""

    maxLeaves = param(0, "leaves per tree (0 = no limit); for lossguide (xgboost)")
    growPolicy = param("depthwise", "depthwise (level by level) or lossguide (best leaf first, like LightGBM; xgboost)")
    minChildWeight = param(1.0, "minimum hessian sum in a leaf (xgboost)")
    regAlpha = param(0.0, "L1 penalty on leaf weights (xgboost)")
    regLambda = param(1.0, "L2 penalty on leaf weights (xgboost)")
    colsampleBytree = param(1.0, "column share per tree (xgboost)")
    scalePosWeight = param(
        1.0, "weight of positive rows (xgboost); GBDT+LR's trees-only scores are re-calibrated for it"
    )
    earlyStoppingRounds = param(
        0, "stop after this many rounds without a better validation log loss (0 = off; xgboost)"
    )
    numWorkers = param(
        0,
        "XGBoost barrier tasks training together (0 = one per rowsPerWorker rows, at most the "
        "task slots of the cluster)",
    )
    rowsPerWorker = param(
        100_000,
        "with numWorkers 0: rows per XGBoost worker (below it, a collective's rounds "
        "cost more than the work they share)",
    )


class _XGBoostParams(EncoderParams, BoosterParams):
    maxDepth = param(6, "tree depth (0 = no limit, with lossguide)")
    learningRate = param(0.1, "shrinkage of each tree")
    subsample = param(0.8, "row share per tree")
    maxBin = param(256, "histogram bins per feature")
    validationFraction = param(0.1, "share of the rows held out for early stopping")
    featureTypes = param(
        [],
        "per feature slot: 'q' (number) or 'c' (category index, split by partition); empty = all numbers",
        TypeConverters.toListString,
    )


class XGBoostLeafEncoder(Estimator, _XGBoostParams, DefaultParamsReadable, DefaultParamsWritable):
    """Trains an XGBoost booster with ``xgboost.spark``; the model one-hot encodes each row's leaves."""

    def _check(self) -> None:
        name = type(self).__name__
        check_param(
            name,
            "growPolicy",
            self.getOrDefault(self.growPolicy),
            "one of " + ", ".join(GROW_POLICIES),
            lambda v: v in GROW_POLICIES,
        )
        check_param(name, "numTrees", self.getOrDefault(self.numTrees), "a positive integer", lambda v: v > 0)
        check_param(
            name,
            "validationFraction",
            self.getOrDefault(self.validationFraction),
            "a number in (0, 0.5]",
            lambda v: 0 < v <= 0.5,
        )

    def classifier(self, workers: int, validation: bool) -> Any:
        """The ``SparkXGBClassifier`` these params describe."""
        from xgboost.spark import SparkXGBClassifier

        get = self.getOrDefault
        stopping = get(self.earlyStoppingRounds)
        return SparkXGBClassifier(
            features_col=self.getFeaturesCol(),
            label_col=self.getLabelCol(),
            num_workers=workers,
            tree_method="hist",
            n_estimators=get(self.numTrees),
            random_state=self.getSeed(),
            eval_metric="logloss",
            missing=float("nan"),
            verbosity=0,
            verbose=False,
            feature_types=get(self.featureTypes) or None,
            **{snake_case(name): get(name) for name in BOOSTER_ARGS},
            **({"early_stopping_rounds": stopping, "validation_indicator_col": VALIDATION_COL} if validation else {}),
        )

    def workers(self, dataset: DataFrame) -> int:
        """``numWorkers``, or one worker per ``rowsPerWorker`` rows of ``dataset`` (counted), at most the task
        slots: on 36K rows one worker trains 100 trees in half the time two take (the collective syncs every
        level of every tree)."""
        if self.getOrDefault(self.numWorkers):
            return self.getOrDefault(self.numWorkers)
        wanted = -(-dataset.count() // self.getOrDefault(self.rowsPerWorker))
        return max(1, min(wanted, task_slots(dataset.sparkSession)))

    def _fit(self, dataset: DataFrame) -> "XGBoostLeafEncoderModel":
        self._check()
        spark = dataset.sparkSession
        require_xgboost_session(spark)
        workers = self.workers(dataset)
        if dataset.rdd.getNumPartitions() != workers:
            # xgboost.spark would shuffle round-robin and hand each worker its rows in arrival order (other row
            # samples every run); rows sorted by their values' hash reach the workers in one order every time.
            order = row_uniform(dataset, self.getSeed(), "xgboost row order")
            dataset = dataset.repartition(workers, order).sortWithinPartitions(order)
        validation = self.getOrDefault(self.earlyStoppingRounds) > 0
        if validation:
            held_out = row_uniform(dataset, self.getSeed(), "xgboost validation")
            dataset = dataset.withColumn(VALIDATION_COL, held_out < self.getOrDefault(self.validationFraction))
        with job_description(
            spark, f"gbdt_lr: fit {self.getOrDefault(self.numTrees)} XGBoost trees on {workers} workers"
        ):
            fitted = self.classifier(workers, validation).fit(dataset)
        booster = fitted.get_booster()
        best = booster.attr("best_iteration")
        if validation and best is not None:
            booster = booster[: int(best) + 1]
        model = XGBoostLeafEncoderModel(bytes(booster.save_raw("ubj")))
        model._resetUid(self.uid)
        return self._copyValues(model)


class XGBoostLeafEncoderModel(Model, _XGBoostParams, ArrayModel):
    """The trained booster (UBJSON bytes); ``transform`` adds the one-hot leaves as ``outputCol``."""

    def __init__(self, booster_raw: bytes | None = None):
        super().__init__()
        self.booster_raw = booster_raw
        self._booster: Any = None
        self._leaf_tables: tuple[list[int], np.ndarray] | None = None

    @property
    def booster(self) -> Any:
        """The booster on the driver (for the dump, importances and contributions)."""
        if self._booster is None:
            self._booster = load_booster(self.booster_raw)
        return self._booster

    def leaf_tables(self) -> tuple[list[int], np.ndarray]:
        """``leaf_tables`` of the booster's dump, parsed once per model."""
        if self._leaf_tables is None:
            self._leaf_tables = leaf_tables(self.booster.get_dump(dump_format="json"))
        return self._leaf_tables

    def leaf_counts(self) -> list[int]:
        return self.leaf_tables()[0]

    def _predict_column(self, dataset: DataFrame, kind: str) -> Column:
        """A pandas-UDF column over ``featuresCol``: leaf ordinals per tree (``array<int>``) or P(label=1)."""
        shared = share(dataset.sparkSession, self.booster_raw, "the XGBoost booster")
        udf = leaves_udf(shared, self.leaf_tables()[1]) if kind == "leaves" else probability_udf(shared)
        return udf(vector_to_array(F.col(self.getFeaturesCol()), "float32"))

    def _transform(self, dataset: DataFrame) -> DataFrame:
        ids = "_xgb_leaf_ids"
        with_ids = dataset.withColumn(ids, self._predict_column(dataset, "leaves"))
        return encode_leaves(with_ids, F.col(ids), self.leaf_counts(), self.getOutputCol()).drop(ids)

    def tree_probability(self, dataset: DataFrame, output: str) -> DataFrame:
        """``dataset`` with ``output`` = the booster's P(label=1) (not re-calibrated)."""
        return dataset.withColumn(output, self._predict_column(dataset, "probability"))

    def importances(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Total gain and cover per feature (shares summing to 1), by feature name, largest first."""
        result = {}
        for kind in ("total_gain", "total_cover"):
            scores = self.booster.get_score(importance_type=kind)
            values = np.array([scores.get(f"f{i}", 0.0) for i in range(len(names))])
            values = values / values.sum() if values.sum() > 0 else values
            ranked = sorted(zip(names, values), key=lambda nv: -nv[1])
            result[kind.split("_")[1]] = [{"feature": n, "importance": round(float(v), 6)} for n, v in ranked]
        return result

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-row SHAP contributions of every feature (last column: the bias), in margin units."""
        return self.booster.predict(dmatrix(features, self.booster), pred_contribs=True)

    def arrays(self) -> dict[str, np.ndarray | None]:
        return {"booster": np.frombuffer(self.booster_raw, np.uint8)}  # UBJSON bytes

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray | None]) -> "XGBoostLeafEncoderModel":
        return cls(arrays["booster"].tobytes())
