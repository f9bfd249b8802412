"""The exact binary metrics as a Spark ML ``Evaluator``, so ``CrossValidator`` and ``TrainValidationSplit`` can
select models on them.

``ExactBinaryEvaluator`` wraps the library's functions (no new maths): ``areaUnderROC`` is ``curves.roc_auc``,
``areaUnderPR`` is ``curves.pr_auc`` (average precision, as scikit-learn), ``logLoss`` and ``normalizedEntropy``
are ``binary.log_loss`` and ``binary.normalized_entropy``, ``gauc`` is ``grouped.grouped_auc`` over ``groupCol``.
Spark's own ``BinaryClassificationEvaluator`` bins scores (1000 bins) and has no log loss or GAUC. A vector score
column (a classifier's ``probability`` or ``rawPrediction``) is read at index 1, the positive class. The driver
holds what those functions hold: one row of sums per partition, never the rows. It saves and loads like Spark's
evaluators (``DefaultParamsWritable``), also inside a saved ``CrossValidator``.
"""

from __future__ import annotations

from typing import Callable

from pyspark.ml.evaluation import Evaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import HasLabelCol, HasWeightCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.frames import require_columns
from pipelines.metrics.binary import log_loss, normalized_entropy
from pipelines.metrics.curves import pr_auc, roc_auc
from pipelines.metrics.grouped import grouped_auc
from pipelines.metrics.validation import MetricsInputError
from pipelines.stages import StageParams, param


def _gauc(df: DataFrame, score_col: str, label_col: str, group_col: str) -> float:
    return grouped_auc(df, group_col, score_col, label_col).gauc


# metricName -> (function of (df, score, label, weight or group), larger is better)
METRICS: dict[str, tuple[Callable[..., float], bool]] = {
    "areaUnderROC": (roc_auc, True),
    "areaUnderPR": (pr_auc, True),
    "logLoss": (log_loss, False),
    "normalizedEntropy": (normalized_entropy, False),
    "gauc": (_gauc, True),
}
_POSITIVE = "_evaluator_positive_score"


class ExactBinaryEvaluator(
    Evaluator, StageParams, HasLabelCol, HasWeightCol, DefaultParamsReadable, DefaultParamsWritable
):
    """Exact ROC-AUC, average precision, log loss, normalized entropy or GAUC of a scored binary table."""

    metricName = param("areaUnderROC", f"metric: {' | '.join(METRICS)}")
    scoreCol = param(
        "probability",
        "score of the positive class: a number (a probability for logLoss and "
        "normalizedEntropy) or a vector read at index 1",
    )
    groupCol = param(None, "group of each row for gauc, e.g. the user id", TypeConverters.toString)

    def getGroupCol(self) -> str | None:
        return self.getOrDefault(self.groupCol) if self.isDefined(self.groupCol) else None

    def _metric(self) -> tuple[Callable[..., float], bool]:
        name = self.getMetricName()
        if name not in METRICS:
            raise MetricsInputError(f"metricName: expected one of {', '.join(METRICS)}, got {name!r}")
        return METRICS[name]

    def isLargerBetter(self) -> bool:
        return self._metric()[1]

    def _evaluate(self, dataset: DataFrame) -> float:
        function, _ = self._metric()
        score, label = self.getScoreCol(), self.getLabelCol()
        weight = self.getOrDefault(self.weightCol) if self.isDefined(self.weightCol) else None
        require_columns(dataset, [score])
        if isinstance(dataset.schema[score].dataType, VectorUDT):
            dataset, score = dataset.withColumn(_POSITIVE, vector_to_array(F.col(score))[1]), _POSITIVE
        if self.getMetricName() != "gauc":
            return function(dataset, score, label, weight or None)
        if weight:
            raise MetricsInputError(f"weightCol '{weight}': gauc weighs each group by its rows and takes no weights")
        group = self.getGroupCol()
        if not group:
            raise MetricsInputError("groupCol: gauc needs the column that groups the rows (e.g. the user id)")
        return function(dataset, score, label, group)
