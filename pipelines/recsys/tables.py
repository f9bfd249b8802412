"""Reading the recommender's tables: a clear error naming the path or column, and common column names.

After the split every table uses ``user_id``, ``item_id``, ``ts`` (seconds since the epoch, BIGINT) and
``session_id``; the raw input's own names are configuration of the split job only.
"""

from __future__ import annotations

from typing import Iterable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.errors import UserError
from pipelines.frames import require_columns
from pipelines.fs import file_system, require_input

USER, ITEM, TS, SESSION, SPLIT = "user_id", "item_id", "ts", "session_id", "split"
VALID, TEST = "valid", "test"  # the ranker's training target (second to last) and the test target (last)


class RecsysError(UserError):
    """Input the recommender cannot use; the message names the path or column."""


def read_parquet(spark: SparkSession, path: str, columns: Iterable[str] = ()) -> DataFrame:
    """A Parquet table written by an earlier step, with the columns this step needs."""
    full = require_input(file_system(spark), path)
    df = spark.read.parquet(full)
    require_columns(df, columns, full)
    return df


def epoch_seconds(df: DataFrame, col: str, where: str) -> Column:
    """Column ``col`` as whole seconds since the epoch: timestamps and dates converted, numbers as they are."""
    dtype = df.schema[col].dataType
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return F.unix_seconds(F.col(col).cast("timestamp"))
    if isinstance(dtype, T.DateType):
        return F.unix_seconds(F.col(col).cast("timestamp"))
    if isinstance(dtype, T.NumericType):
        return F.col(col).cast("bigint")
    raise RecsysError(
        f"{where}: column '{col}' must be a timestamp, date or number of seconds, got {dtype.simpleString()}"
    )


def item_key(col: str = ITEM) -> Column:
    """Item ids as the strings item2vec and PQ use for them (the word of an item vector)."""
    return F.col(col).cast("string")
