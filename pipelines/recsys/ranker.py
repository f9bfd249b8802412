"""The ranker: GBDT+LR (``pipelines.gbdt_lr``) on candidate rows, trained on the validation split.

Label 1 marks the candidate that is the split's target. The LR-only and trees-only models that
``pipelines.gbdt_lr.model.train`` fits alongside score the test rows too, so the ranked lists of all three
can be compared.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pyspark.sql import DataFrame

from pipelines.gbdt_lr.features import FeatureSpec
from pipelines.gbdt_lr.model import SCORE, TrainedModels, train
from pipelines.gbdt_lr.report import MODELS
from pipelines.recsys.features import CATEGORICAL, LABEL, NUMERIC
from pipelines.recsys.tables import ITEM, SPLIT, USER

SPEC = FeatureSpec(LABEL, list(NUMERIC), list(CATEGORICAL), [])
KEYS = [SPLIT, USER, ITEM]


def fit_ranker(rows: DataFrame, cfg: Mapping[str, Any], log: Callable[[str], None] = print) -> TrainedModels:
    """GBDT+LR and its two baselines on ``rows`` (features and label, from a table that passed
    ``check_training_data``); ``cfg`` as train_gbdt_lr's keys."""
    return train(rows, SPEC, cfg, log)


def score_candidates(models: TrainedModels, rows: DataFrame, keep: list[str]) -> DataFrame:
    """``rows``' keys, ``keep`` columns and one score column per model (``score`` is GBDT+LR), from one
    preparation of ``rows`` (the three models share it)."""
    scored = models.gbdt_lr.stages["prep"].transform(rows)
    for name in ("lr_only", "trees_only", "gbdt_lr"):  # GBDT+LR last: its ``score`` keeps the name
        scored = getattr(models, name).score_prepared(scored, scored.columns).drop("probability")
        if name != "gbdt_lr":
            scored = scored.withColumnRenamed(SCORE, f"score_{name}")
    return scored.select(*KEYS, *keep, SCORE, *[f"score_{m}" for m in MODELS if m != "gbdt_lr"])
