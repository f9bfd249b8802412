"""pandas -> Spark DataFrames through Arrow, whatever the session's ``spark.sql.execution.arrow.pyspark.enabled``;
Arrow vector columns -> numpy matrices; the one check that a table has the columns a step reads.

Under spark-submit a job adds no Spark setting of its own, so it cannot count on that setting: without it
``createDataFrame(pandas)`` converts row by row, slowly, and refuses numpy scalars inside arrays ("FloatType()
can not accept object np.float32"). A pyarrow Table goes through Arrow in any session.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from pipelines.errors import InputError


def from_pandas(spark: SparkSession, pdf: pd.DataFrame, schema: str | None = None) -> DataFrame:
    """``pdf`` as a Spark DataFrame (its columns cast to ``schema``'s types when given; names must match)."""
    return spark.createDataFrame(pa.Table.from_pandas(pdf, preserve_index=False), schema)


def vector_matrix(table: pa.Table, column: str = "vector") -> np.ndarray:
    """The ``array<float>`` column of a (non-empty) Arrow table as one float32 matrix, a row per row."""
    return np.stack(table.column(column).to_numpy(zero_copy_only=False)).astype(np.float32)


def require_columns(df: DataFrame, columns: Iterable[str], where: str = "") -> None:
    """Raise ``InputError`` naming ``where`` (a path or a role, when given) and the first column ``df`` lacks."""
    for name in columns:
        if name not in df.columns:
            raise InputError(
                f"{where + ': ' if where else ''}column '{name}' not found; columns: {', '.join(df.columns)}"
            )
