"""XGBoost inside pandas UDFs (``pipelines.gbdt_lr.xgboost_leaves``): a booster from its bytes, rows as a
``DMatrix``, and each row's leaf in every tree or its P(label=1), batch by batch. Declared at each call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import Column


def load_booster(raw: bytes) -> Any:
    """A single-threaded ``xgboost.Booster`` from its UBJSON bytes (one per Python worker and partition)."""
    import xgboost as xgb

    booster = xgb.Booster(model_file=bytearray(raw))
    booster.set_param({"nthread": 1})
    return booster


def dmatrix(features: np.ndarray | pd.Series, booster: Any) -> Any:
    """An ``xgboost.DMatrix`` of rows (a matrix, or a Series of ``vector_to_array`` values) typed as the booster's
    features (categorical slots included)."""
    import xgboost as xgb

    width = booster.num_features()
    if isinstance(features, pd.Series):
        features = np.stack(features.to_numpy()) if len(features) else np.empty((0, width))
    types = booster.feature_types
    return xgb.DMatrix(
        features.astype(np.float32, copy=False),
        missing=np.nan,
        feature_types=types,
        enable_categorical=bool(types and "c" in types),
    )


def leaves_udf(booster: Any, table: np.ndarray) -> Callable[[Column], Column]:
    """pandas UDF: feature arrays -> each row's leaf ordinal in every tree (``array<int>``), from ``booster`` (a
    broadcast, or shipped, UBJSON bytes) and ``table`` (``leaf_tables``: node id -> leaf ordinal, per tree)."""
    from pyspark.sql.functions import pandas_udf

    trees = table.shape[0]

    def leaves(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model, rows = load_booster(booster.value), np.arange(trees)
        for features in batches:
            ids = model.predict(dmatrix(features, model), pred_leaf=True).astype(np.int64).reshape(-1, trees)
            yield pd.Series(list(table[rows, ids]))

    return pandas_udf(leaves, "array<int>")


def probability_udf(booster: Any) -> Callable[[Column], Column]:
    """pandas UDF: feature arrays -> the booster's P(label=1) (``double``)."""
    from pyspark.sql.functions import pandas_udf

    def probability(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model = load_booster(booster.value)
        for features in batches:
            yield pd.Series(model.predict(dmatrix(features, model)).astype(np.float64))

    return pandas_udf(probability, "double")
