"""Median imputation that finds the same medians on every run over the same input, whatever order tasks finish in.

Spark's ``Imputer`` (strategy ``median``) merges per-partition quantile sketches in the order its tasks finish,
so with more than two partitions its medians moved between runs of the same job on the same rows, within its
0.1% rank error: on 10,000 demo clicks in four partitions, three runs on the standalone cluster (two of them
losing an executor or a worker) gave three different sets of medians (i5: 0.6993 or 0.7004), and the models
trained on the imputed columns differed with them. ``MedianImputer`` takes the exact median (Spark SQL's
``median``, an aggregate of value counts, which merges in any order to the same result) of a seeded sample of
about ``sampleSize`` training rows (all rows of a smaller table), and imputes null and NaN values as ``Imputer``
does.
"""

from __future__ import annotations

from pyspark.ml import Estimator
from pyspark.ml.feature import SQLTransformer
from pyspark.ml.param.shared import HasInputCols, HasOutputCols
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.sampling import hash_sample
from pipelines.stages import StageParams, param


class MedianImputer(Estimator, StageParams, HasInputCols, HasOutputCols, DefaultParamsReadable, DefaultParamsWritable):
    """Fits to a ``SQLTransformer`` that writes each input column, nulls and NaNs replaced by its median, to the
    matching output column."""

    sampleSize = param(100_000, "about this many rows are sampled for the medians")
    seed = param(0, "seed of the sample")

    def medians(self, dataset: DataFrame) -> list[float]:
        """Each input column's exact median over the sample (over every row for a column the sample has no
        value of); an error for a column without any value."""
        cols, size = self.getInputCols(), self.getOrDefault(self.sampleSize)
        rows = dataset.count()
        sample = dataset if rows <= size else hash_sample(dataset, size / rows, self.getSeed(), "median sample")

        def of(df: DataFrame, names: list[str]) -> list[float | None]:
            values = [F.median(F.when(~F.isnan(F.col(c)), F.col(c))) for c in names]
            return list(df.agg(*values).first())

        found = dict(zip(cols, of(sample, cols)))
        unsampled = [c for c, m in found.items() if m is None]
        if unsampled:
            found.update(zip(unsampled, of(dataset, unsampled)))
        empty = [c for c, m in found.items() if m is None]
        if empty:
            raise ValueError(f"no median of {empty}: every value is null or NaN")
        return [float(found[c]) for c in cols]

    def _fit(self, dataset: DataFrame) -> SQLTransformer:
        filled = [
            f"CASE WHEN `{c}` IS NULL OR isnan(`{c}`) THEN CAST('{m!r}' AS DOUBLE) ELSE `{c}` END AS `{out}`"
            for c, out, m in zip(self.getInputCols(), self.getOutputCols(), self.medians(dataset))
        ]
        return SQLTransformer(statement=f"SELECT *, {', '.join(filled)} FROM __THIS__")
