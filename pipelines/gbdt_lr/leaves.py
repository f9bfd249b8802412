"""Leaf encoder: a row's leaf in every boosted tree, one-hot, as one sparse vector (He et al., 2014).

Tree ``t`` owns slots ``offset[t] .. offset[t] + leaves[t] - 1``; each row has exactly one active slot
per tree. The work stays in the JVM: ``GBTClassifier``'s ``leafCol`` gives the leaf index per tree, and
MLlib's ``OneHotEncoder`` turns those columns into one sparse vector, sized from nominal metadata
so that a leaf never seen in the data still owns its slot.
"""
from __future__ import annotations

from typing import Any

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.classification import GBTClassificationModel, GBTClassifier
from pyspark.ml.feature import OneHotEncoder, OneHotEncoderModel, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasOutputCol, HasSeed
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.session import job_description


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


class _LeafParams(HasFeaturesCol, HasLabelCol, HasOutputCol, HasSeed):
    numTrees: Param[int] = Param(Params._dummy(), "numTrees", "boosting iterations (trees)",
                                 typeConverter=TypeConverters.toInt)
    maxDepth: Param[int] = Param(Params._dummy(), "maxDepth", "depth of each tree (leaves <= 2^depth)",
                                 typeConverter=TypeConverters.toInt)
    stepSize: Param[float] = Param(Params._dummy(), "stepSize", "learning rate", typeConverter=TypeConverters.toFloat)
    subsamplingRate: Param[float] = Param(Params._dummy(), "subsamplingRate", "row share per tree",
                                          typeConverter=TypeConverters.toFloat)
    minInstancesPerNode: Param[int] = Param(Params._dummy(), "minInstancesPerNode", "minimum rows in a leaf",
                                            typeConverter=TypeConverters.toInt)
    maxBins: Param[int] = Param(Params._dummy(), "maxBins", "bins for continuous features and categories",
                                typeConverter=TypeConverters.toInt)

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(outputCol="leaves", numTrees=100, maxDepth=4, stepSize=0.1, subsamplingRate=0.8,
                         minInstancesPerNode=20, maxBins=64, seed=42)


class LeafEncoder(Estimator, _LeafParams, MLReadable, MLWritable):
    """Fits ``GBTClassifier`` on ``featuresCol``/``labelCol``; the model one-hot encodes the leaves."""

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label", outputCol: str = "leaves",
                 numTrees: int = 100, maxDepth: int = 4, stepSize: float = 0.1, subsamplingRate: float = 0.8,
                 minInstancesPerNode: int = 20, maxBins: int = 64, seed: int = 42):
        super().__init__()
        self._set(**self._input_kwargs)

    def gbt(self) -> GBTClassifier:
        """The MLlib estimator these params describe."""
        return GBTClassifier(
            featuresCol=self.getFeaturesCol(), labelCol=self.getLabelCol(), maxIter=self.getOrDefault(self.numTrees),
            maxDepth=self.getOrDefault(self.maxDepth), stepSize=self.getOrDefault(self.stepSize),
            subsamplingRate=self.getOrDefault(self.subsamplingRate), maxBins=self.getOrDefault(self.maxBins),
            minInstancesPerNode=self.getOrDefault(self.minInstancesPerNode), seed=self.getSeed())

    def _fit(self, dataset: DataFrame) -> "LeafEncoderModel":
        with job_description(dataset.sparkSession, f"gbdt_lr: fit {self.getOrDefault(self.numTrees)} trees"):
            gbt = self.gbt().fit(dataset)
        return LeafEncoderModel.from_gbt(gbt, self.getFeaturesCol(), self.getOutputCol())

    def write(self) -> MLWriter:
        return DefaultParamsWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return DefaultParamsReader(cls)


class LeafEncoderModel(Model, _LeafParams, MLReadable, MLWritable):
    """Holds the fitted trees and the one-hot encoder sized from their leaf counts."""

    def __init__(self, gbt: GBTClassificationModel | None = None, encoder: OneHotEncoderModel | None = None):
        super().__init__()
        self.gbt_model = gbt
        self.encoder = encoder

    @classmethod
    def from_gbt(cls, gbt: GBTClassificationModel, features_col: str, output_col: str = "leaves"
                 ) -> "LeafEncoderModel":
        """Wrap an already fitted ``GBTClassificationModel`` (trained here or elsewhere)."""
        counts = tree_leaf_counts(gbt)
        spark = SparkSession.getActiveSession()
        # Fit the encoder on a one-row frame: with nominal metadata it sizes itself from the
        # declared leaf counts, not from the data, so training data is not scanned again.
        probe = spark.createDataFrame([tuple(0 for _ in counts)], [f"_leaf_{t}" for t in range(len(counts))])
        probe = probe.select(*_nominal_leaf_columns(probe, counts))
        encoder = OneHotEncoder(inputCols=[f"_leaf_{t}" for t in range(len(counts))],
                                outputCols=[f"_leaf_{t}_vec" for t in range(len(counts))],
                                dropLast=False, handleInvalid="error").fit(probe)
        model = cls(gbt, encoder)
        model._set(featuresCol=features_col, outputCol=output_col, numTrees=len(counts))
        return model

    def leaf_counts(self) -> list[int]:
        return tree_leaf_counts(self.gbt_model)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        counts = self.leaf_counts()
        leaf_col, names = "_leaf_ids", [f"_leaf_{t}" for t in range(len(counts))]
        with_leaves = self.gbt_model.copy().setFeaturesCol(self.getFeaturesCol()).setLeafCol(leaf_col) \
            .setPredictionCol("_gbt_prediction").setRawPredictionCol("_gbt_raw") \
            .setProbabilityCol("_gbt_probability").transform(dataset)
        ids = vector_to_array(F.col(leaf_col))
        split = with_leaves.select("*", *[ids[t].cast("int").alias(n) for t, n in enumerate(names)])
        split = split.select(*[c for c in split.columns if c not in names], *_nominal_leaf_columns(split, counts))
        encoded = self.encoder.transform(split)
        vec_cols = [f"{n}_vec" for n in names]
        assembled = VectorAssembler(inputCols=vec_cols, outputCol=self.getOutputCol()).transform(encoded)
        drop = {leaf_col, "_gbt_prediction", "_gbt_raw", "_gbt_probability", *names, *vec_cols}
        return assembled.select(*[c for c in assembled.columns if c not in drop])

    def write(self) -> MLWriter:
        return _LeafEncoderModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _LeafEncoderModelReader(cls)


def _nominal_leaf_columns(df: DataFrame, counts: list[int]) -> list:
    """The leaf-id columns tagged as nominal with ``counts[t]`` values, as ML attribute metadata."""
    return [F.col(f"_leaf_{t}").cast("double").alias(
        f"_leaf_{t}", metadata={"ml_attr": {"type": "nominal", "name": f"_leaf_{t}", "num_vals": n}})
        for t, n in enumerate(counts)]


class _LeafEncoderModelWriter(MLWriter):
    def __init__(self, instance: LeafEncoderModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession)
        self.instance.gbt_model.write().overwrite().save(f"{path}/gbt")
        self.instance.encoder.write().overwrite().save(f"{path}/encoder")


class _LeafEncoderModelReader(MLReader):
    def __init__(self, cls: type):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> LeafEncoderModel:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        model = self.cls(GBTClassificationModel.load(f"{path}/gbt"), OneHotEncoderModel.load(f"{path}/encoder"))
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model
