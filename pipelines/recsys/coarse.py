"""Coarse ranking: a logistic regression on features known at merge time cuts each user's merged candidates
to the fine ranker's budget.

Features: the route flags, ``log1p`` of the route ranks, the route scores, ``n_routes`` and ``log1p`` of the
item's events in the split context. Trained on the validation split's merged candidates (label: the candidate
is the target), it scores both splits, so the fine ranker learns on candidates cut the way the test ones are.
The driver holds the model's coefficients only.
"""

from __future__ import annotations

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.merge import ROUTE_FEATURES
from pipelines.recsys.recall import rank_within_user
from pipelines.recsys.tables import ITEM, SPLIT, USER, VALID, RecsysError

COARSE_SCORE = "coarse_score"


def coarse_inputs(merged: DataFrame, contexts: DataFrame, targets: DataFrame) -> DataFrame:
    """``merged`` plus ``label`` (the split's target) and the coarse features as columns ``_c0..``."""
    pop = contexts.groupBy(SPLIT, ITEM).agg(F.count(F.lit(1)).alias("_pop"))
    label = targets.select(SPLIT, USER, ITEM, F.lit(1).alias("label"))
    rows = merged.join(pop, [SPLIT, ITEM], "left").join(label, [SPLIT, USER, ITEM], "left").fillna(0, ["_pop", "label"])
    cols = [F.log1p(F.col(c)) if c.startswith("rank_") else F.col(c) for c in ROUTE_FEATURES]
    cols.append(F.log1p(F.col("_pop")))
    return rows.select(*merged.columns, "label", *[c.cast("double").alias(f"_c{i}") for i, c in enumerate(cols)])


def coarse_cut(
    merged: DataFrame, contexts: DataFrame, targets: DataFrame, budget: int, max_iter: int = 50, reg: float = 0.01
) -> DataFrame:
    """``merged``'s rows (and ``coarse_score``) cut to each user's ``budget`` best by the coarse model;
    ``recall_rank`` is kept from the merge (the fine ranker's feature), ``coarse_score`` added."""
    if budget < 1:
        raise RecsysError(f"coarse.budget must be at least 1, got {budget}")
    rows = coarse_inputs(merged, contexts, targets)
    names = [c for c in rows.columns if c.startswith("_c")]
    assembled = VectorAssembler(inputCols=names, outputCol="_x").transform(rows)
    train = assembled.filter(F.col(SPLIT) == VALID)
    if not train.filter(F.col("label") == 1).limit(1).count():
        raise RecsysError(
            "coarse ranking: no validation target is among the merged candidates; "
            "raise the routes' k or check the routes"
        )
    model = LogisticRegression(featuresCol="_x", labelCol="label", maxIter=max_iter, regParam=reg).fit(train)
    scored = model.transform(assembled).withColumn(COARSE_SCORE, vector_to_array("probability")[1])
    cut = rank_within_user(scored, [F.col(COARSE_SCORE).desc(), F.col("recall_rank")], budget, "_coarse_rank")
    return cut.select(*merged.columns, COARSE_SCORE)
