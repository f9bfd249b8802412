"""The ranker: GBDT+LR (``pipelines.gbdt_lr``) on candidate rows, trained on the validation split.

Label 1 marks the candidate that is the split's target. The LR-only and trees-only models that
``pipelines.gbdt_lr.model.train`` fits alongside score the test rows too, so the ranked lists of all three
can be compared.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

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
    """``rows``' keys, ``keep`` columns and one score column per model (``score`` is GBDT+LR)."""
    scored = rows.select(*KEYS, *keep)
    for name in MODELS:
        column = SCORE if name == "gbdt_lr" else f"score_{name}"
        one = getattr(models, name).transform(rows).select(*KEYS, F.col(SCORE).alias(column))
        scored = scored.join(one, KEYS)
    return scored
