"""Frequency-thresholded categories: values seen fewer than ``minCount`` times become ``__other__``.

Trees and one-hot LR both need a bounded, stable set of categories: rare values carry no
estimable signal, and values unseen at training time must land somewhere known at scoring time.
"""

from __future__ import annotations

from pyspark.ml import Estimator, Model
from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCols
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.stages import StageParams, param

OTHER = "__other__"
MISSING = "__missing__"


class _RareCategoryParams(StageParams, HasInputCols, HasOutputCols):
    minCount = param(10, "values seen fewer times than this in training become __other__")


class RareCategoryGrouper(Estimator, _RareCategoryParams, DefaultParamsReadable, DefaultParamsWritable):
    """Learns, per string column, the values frequent enough to keep (nulls become ``__missing__``)."""

    def _fit(self, dataset: DataFrame) -> "RareCategoryGrouperModel":
        cols = self.getInputCols()
        stacked = dataset.select(
            F.explode(
                F.array(
                    *[
                        F.struct(
                            F.lit(i).alias("col"), F.coalesce(F.col(c).cast("string"), F.lit(MISSING)).alias("value")
                        )
                        for i, c in enumerate(cols)
                    ]
                )
            ).alias("kv")
        ).select("kv.*")
        # One small row per frequent (column, value): bounded by the training data's distinct values.
        frequent = stacked.groupBy("col", "value").count().filter(F.col("count") >= self.getMinCount()).collect()
        kept: list[list[str]] = [[] for _ in cols]
        for row in frequent:
            kept[row["col"]].append(row["value"])
        model = RareCategoryGrouperModel(
            inputCols=cols,
            outputCols=self.getOutputCols(),
            minCount=self.getMinCount(),
            keptValues=[sorted(v) for v in kept],
        )
        return self._copyValues(model)


class RareCategoryGrouperModel(Model, _RareCategoryParams, DefaultParamsReadable, DefaultParamsWritable):
    """Maps each value to itself when it was frequent in training, else to ``__other__``."""

    keptValues = param(None, "frequent values per input column", TypeConverters.identity)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        kept = self.getOrDefault(self.keptValues)
        out = dataset
        for col, out_col, values in zip(self.getInputCols(), self.getOutputCols(), kept):
            value = F.coalesce(F.col(col).cast("string"), F.lit(MISSING))
            # Spark turns a long IN list into a hash-set lookup (InSet), so this stays cheap per row.
            out = out.withColumn(out_col, F.when(value.isin(values), value).otherwise(F.lit(OTHER)))
        return out
