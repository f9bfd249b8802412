"""Scores as P(click), re-calibrated after negative downsampling (He et al., 2014, section 6.2).

Training on all positives and a share ``w`` of negatives inflates predictions; the calibrated score is
``q = p / (p + (1 - p) / w)``.
"""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def recalibrate(p: Column | float, negative_rate: float) -> Column | float:
    """``q = p / (p + (1 - p) / w)`` for a model trained on a share ``w`` of the negatives."""
    if not 0 < negative_rate <= 1:
        raise ValueError(f"negative_rate must be in (0, 1], got {negative_rate}")
    return p / (p + (1 - p) / negative_rate)


class ProbabilityScore(Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Adds ``outputCol`` = P(label=1) from a probability vector, re-calibrated for downsampling."""

    negativeRate: Param[float] = Param(Params._dummy(), "negativeRate",
                                       "share of negatives kept for training (1.0 = no downsampling)",
                                       typeConverter=TypeConverters.toFloat)

    @keyword_only
    def __init__(self, *, inputCol: str = "probability", outputCol: str = "score", negativeRate: float = 1.0):
        super().__init__()
        self._setDefault(inputCol="probability", outputCol="score", negativeRate=1.0)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        p = vector_to_array(F.col(self.getInputCol()))[1]
        rate = self.getOrDefault(self.negativeRate)
        return dataset.withColumn(self.getOutputCol(), p if rate == 1.0 else recalibrate(p, rate))
