"""Leaf encoder: a row's leaf in every boosted tree, one-hot, as one sparse vector (He et al., 2014).

Tree ``t`` owns slots ``offset[t] .. offset[t] + leaves[t] - 1``; each row has exactly one active slot
per tree. The work stays in the JVM: ``GBTClassifier``'s ``leafCol`` gives the leaf index per tree, and
``encode_leaves`` turns them into one sparse vector (shared with the XGBoost learner,
``pipelines.gbdt_lr.xgboost_leaves``).
"""

from __future__ import annotations

from typing import Any, Mapping

from pyspark.ml import Estimator, Model
from pyspark.ml.classification import GBTClassificationModel, GBTClassifier
from pyspark.ml.feature import OneHotEncoder, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.session import job_description
from pipelines.stages import SavedModel, StageParams, param


def tree_leaf_counts(gbt: GBTClassificationModel) -> list[int]:
    """Leaves per tree (a binary tree with n nodes has (n + 1) / 2 leaves)."""
    return [(tree.numNodes + 1) // 2 for tree in gbt.trees]


def leaf_offsets(counts: list[int]) -> list[int]:
    """First slot of each tree in the concatenated one-hot vector."""
    offsets, total = [], 0
    for n in counts:
        offsets.append(total)
        total += n
    return offsets


class TreeParams(StageParams):
    """Params of every tree learner here (the leaf encoders and ``GBDTLR``)."""

    seed = param(42, "seed of every random draw (row splits and samples, trees)")
    numTrees = param(100, "boosting rounds (trees; XGBoost's early stopping may stop sooner)")
    maxDepth = param(4, "depth of each tree (leaves <= 2^depth)")


class GBTParams(TreeParams):
    """Params of MLlib's ``GBTClassifier`` learner (``LeafEncoder``, ``GBDTLR`` with learner 'spark')."""

    stepSize = param(0.1, "learning rate")
    subsamplingRate = param(0.8, "row share per tree")
    minInstancesPerNode = param(20, "minimum rows in a leaf")
    maxBins = param(64, "bins for continuous features and categories")


class EncoderParams(StageParams, HasFeaturesCol, HasLabelCol):
    """Columns of both leaf encoders (MLlib's here, XGBoost's in ``xgboost_leaves``)."""

    outputCol = param("leaves", "output: the one-hot leaves of every tree, one sparse vector")


class LeafEncoder(Estimator, EncoderParams, GBTParams, DefaultParamsReadable, DefaultParamsWritable):
    """Fits ``GBTClassifier`` on ``featuresCol``/``labelCol``; the model one-hot encodes the leaves."""

    def gbt(self) -> GBTClassifier:
        """The MLlib estimator these params describe."""
        return GBTClassifier(
            featuresCol=self.getFeaturesCol(),
            labelCol=self.getLabelCol(),
            maxIter=self.getOrDefault(self.numTrees),
            maxDepth=self.getOrDefault(self.maxDepth),
            stepSize=self.getOrDefault(self.stepSize),
            subsamplingRate=self.getOrDefault(self.subsamplingRate),
            maxBins=self.getOrDefault(self.maxBins),
            minInstancesPerNode=self.getOrDefault(self.minInstancesPerNode),
            seed=self.getSeed(),
        )

    def _fit(self, dataset: DataFrame) -> "LeafEncoderModel":
        with job_description(dataset.sparkSession, f"gbdt_lr: fit {self.getOrDefault(self.numTrees)} trees"):
            gbt = self.gbt().fit(dataset)
        return LeafEncoderModel.from_gbt(gbt, self.getFeaturesCol(), self.getOutputCol())


class LeafEncoderModel(Model, EncoderParams, GBTParams, SavedModel):
    """Holds the fitted trees; ``transform`` adds the one-hot leaves as ``outputCol``."""

    def __init__(self, gbt: GBTClassificationModel | None = None):
        super().__init__()
        self.gbt_model = gbt

    @classmethod
    def from_gbt(cls, gbt: GBTClassificationModel, features_col: str, output_col: str = "leaves") -> "LeafEncoderModel":
        """Wrap an already fitted ``GBTClassificationModel`` (trained here or elsewhere)."""
        model = cls(gbt)
        model._set(featuresCol=features_col, outputCol=output_col, numTrees=len(gbt.trees))
        return model

    def leaf_counts(self) -> list[int]:
        return tree_leaf_counts(self.gbt_model)

    def _with_trees(self, dataset: DataFrame, **outputs: str) -> DataFrame:
        """``dataset`` with the GBT model's columns (``leafCol``, ``probabilityCol``...) under private names."""
        gbt = (
            self.gbt_model.copy()
            .setFeaturesCol(self.getFeaturesCol())
            .setPredictionCol("_gbt_prediction")
            .setRawPredictionCol("_gbt_raw")
            .setProbabilityCol(outputs.get("probability", "_gbt_probability"))
        )
        if "leaf" in outputs:
            gbt = gbt.setLeafCol(outputs["leaf"])
        return gbt.transform(dataset).drop(
            "_gbt_prediction", "_gbt_raw", *(["_gbt_probability"] if "probability" not in outputs else [])
        )

    def _transform(self, dataset: DataFrame) -> DataFrame:
        leaf_col = "_leaf_ids"
        with_leaves = self._with_trees(dataset, leaf=leaf_col)
        ids = vector_to_array(F.col(leaf_col)).cast("array<int>")
        return encode_leaves(with_leaves, ids, self.leaf_counts(), self.getOutputCol()).drop(leaf_col)

    def tree_probability(self, dataset: DataFrame, output: str) -> DataFrame:
        """``dataset`` with ``output`` = the trees' P(label=1) (not re-calibrated)."""
        probability = "_gbt_probability_vector"
        scored = self._with_trees(dataset, probability=probability)
        return scored.withColumn(output, vector_to_array(F.col(probability))[1]).drop(probability)

    def importances(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """MLlib's split-gain importances by feature name, largest first (MLlib has no cover importance)."""
        ranked = sorted(zip(names, self.gbt_model.featureImportances.toArray()), key=lambda nv: -nv[1])
        return {"gain": [{"feature": n, "importance": round(float(v), 6)} for n, v in ranked]}

    def save_data(self, path: str, spark: SparkSession) -> None:
        """The GBT model as MLlib saves it (``gbt/``)."""
        self.gbt_model.write().overwrite().save(f"{path}/gbt")

    @classmethod
    def load_data(cls, path: str, spark: SparkSession, metadata: Mapping[str, Any]) -> "LeafEncoderModel":
        return cls(GBTClassificationModel.load(f"{path}/gbt"))


def encode_leaves(dataset: DataFrame, ids: Column, counts: list[int], output_col: str) -> DataFrame:
    """``dataset`` with ``output_col``: the leaf ordinals ``ids`` (``array<int>``, one per tree) one-hot encoded
    into one sparse vector, tree ``t`` owning ``counts[t]`` slots from ``leaf_offsets(counts)[t]``.

    MLlib's ``OneHotEncoder`` and ``VectorAssembler`` do the work in the JVM. The encoder is fitted on a one-row
    frame: with nominal metadata it sizes itself from the declared leaf counts, not from the data, so a leaf never
    seen still owns its slot and no data is scanned.
    """
    names = [f"_leaf_{t}" for t in range(len(counts))]
    spark = dataset.sparkSession
    probe = spark.createDataFrame([tuple(0 for _ in counts)], names)
    encoder = OneHotEncoder(
        inputCols=names, outputCols=[f"{n}_vec" for n in names], dropLast=False, handleInvalid="error"
    ).fit(probe.select(*_nominal_leaf_columns([F.col(n) for n in names], counts)))
    split = dataset.select("*", *_nominal_leaf_columns([ids[t] for t in range(len(counts))], counts))
    vec_cols = [f"{n}_vec" for n in names]
    assembled = VectorAssembler(inputCols=vec_cols, outputCol=output_col).transform(encoder.transform(split))
    return assembled.drop(*names, *vec_cols)


def _nominal_leaf_columns(ids: list[Column], counts: list[int]) -> list[Column]:
    """``_leaf_{t}`` = ``ids[t]``, tagged as nominal with ``counts[t]`` values (ML attribute metadata)."""
    return [
        ids[t]
        .cast("double")
        .alias(f"_leaf_{t}", metadata={"ml_attr": {"type": "nominal", "name": f"_leaf_{t}", "num_vals": n}})
        for t, n in enumerate(counts)
    ]
