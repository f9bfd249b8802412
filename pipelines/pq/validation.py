"""Checks on PQ inputs: vector columns, row problems (quarantined with counts) and set-up errors.

Vector columns are ``array<float>``, ``array<double>`` (any numeric array), an ML ``Vector`` or
``binary``: packed little-endian float32, ``4 * d`` bytes per vector (what ``numpy.ndarray.tobytes``
gives), which Spark hands to Python as one buffer per Arrow batch instead of element by element.

Row problems (null vector, wrong dimension, NaN/inf component) are found with Spark SQL
expressions (for binary vectors the NaN/inf test is a vectorised Arrow UDF), so a bad row never
reaches the encoder; a job splits them off to a quarantine. Problems no
quarantine can fix (d not divisible by M, too few training vectors, duplicate item ids, nbits out
of range) raise ``PQError`` with the numbers involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.frames import require_columns
from pipelines.job_runtime import JobError
from udfs.pq import binary_floats_udf, binary_nonfinite_udf

REASON_COL = "_problem"
MIN_NBITS, MAX_NBITS = 4, 8


class PQError(JobError):
    """A PQ input or setting that cannot work; the message gives the counts involved.

    A ``JobError``, so a job prints it as one line instead of a traceback.
    """


VECTOR_TYPES = "array<float>, array<double>, an ML vector or binary (packed little-endian float32)"


def vector_type(df: DataFrame, col: str) -> T.DataType:
    """The Spark type of vector column ``col``; a clear error when it is missing or not a vector type."""
    require_columns(df, [col], "vectors")
    dtype = df.schema[col].dataType
    numeric_array = isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, T.NumericType)
    if not (isinstance(dtype, (VectorUDT, T.BinaryType)) or numeric_array):
        raise PQError(f"vector column '{col}' has type {dtype.simpleString()}, expected {VECTOR_TYPES}")
    return dtype


def float_array(df: DataFrame, col: str) -> Column:
    """Column ``col`` as ``array<float>``: ML ``Vector`` via ``vector_to_array``, numeric arrays by cast,
    binary vectors decoded in an Arrow UDF."""
    dtype = vector_type(df, col)
    if isinstance(dtype, VectorUDT):
        return vector_to_array(F.col(col), "float32")
    if isinstance(dtype, T.BinaryType):
        return binary_floats_udf(F.col(col))
    if isinstance(dtype.elementType, T.FloatType):
        return F.col(col)
    return F.col(col).cast(T.ArrayType(T.FloatType()))


def encoder_input(df: DataFrame, col: str) -> Column:
    """Column ``col`` as the encoder's Arrow UDF reads it: ``array<float>``, ``array<double>`` and binary
    as they are (numpy converts them; a Spark cast of ``array<double>`` boxes every element), other
    types as ``array<float>``."""
    dtype = vector_type(df, col)
    if isinstance(dtype, T.BinaryType) or (
        isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, (T.FloatType, T.DoubleType))
    ):
        return F.col(col)
    return float_array(df, col)


def vector_size(df: DataFrame, col: str) -> Column:
    """Components per vector (binary: bytes / 4, -1 when not a multiple of 4); null or -1 for a null vector."""
    if isinstance(vector_type(df, col), T.BinaryType):
        n = F.length(F.col(col))
        return F.when(n % 4 == 0, (n / 4).cast("int")).otherwise(F.lit(-1))
    return F.size(float_array(df, col))


def check_layout(dim: int, m: int, nbits: int) -> None:
    """``d`` must split into M equal sub-vectors and ``nbits`` must be in 4..8."""
    if not MIN_NBITS <= nbits <= MAX_NBITS:
        raise PQError(f"nbits={nbits} is out of range; allowed {MIN_NBITS} to {MAX_NBITS}")
    if m < 1 or dim % m:
        raise PQError(f"dimension {dim} is not divisible by M={m}; choose M among {divisors(dim)}")


def check_list_col(df: DataFrame, col: str) -> str:
    """IVF codes are searched (and residual ones decoded) with their list id: column ``col`` must be in ``df``;
    returns ``col``."""
    if col not in df.columns:
        raise PQError(
            f"IVF codes need their list column '{col}' (written by transform beside the codes); columns: {df.columns}"
        )
    return col


def divisors(n: int) -> list[int]:
    """Divisors of ``n`` (the valid M for dimension ``n``)."""
    return [i for i in range(1, n + 1) if n % i == 0]


def check_training_size(n_train: int, k: int, what: str = "sub-space") -> None:
    """k-means needs at least ``k`` training vectors to place ``k`` centroids."""
    if n_train < k:
        raise PQError(
            f"{n_train} training vectors, fewer than the {k} centroids per {what}; "
            f"give at least {k} valid vectors or lower nbits"
        )


def problem(vec: Column, dim: int) -> Column:
    """Why an ``array<float>`` vector cannot be quantised (null if it can): null, wrong dimension, NaN/inf."""
    bad_value = F.exists(vec, lambda x: x.isNull() | F.isnan(x) | (F.abs(x) == float("inf")))
    return (
        F.when(vec.isNull(), F.lit("null vector"))
        .when(F.size(vec) != dim, F.lit(f"wrong dimension (expected {dim})"))
        .when(bad_value, F.lit("NaN/inf component"))
    )


def binary_problem(vec: Column, dim: int) -> Column:
    """``problem`` for binary vectors: a length other than ``4 * dim`` bytes is a wrong dimension."""
    return (
        F.when(vec.isNull(), F.lit("null vector"))
        .when(F.length(vec) != 4 * dim, F.lit(f"wrong dimension (expected {dim})"))
        .when(binary_nonfinite_udf(vec), F.lit("NaN/inf component"))
    )


def infer_dim(df: DataFrame, col: str) -> int:
    """The most common vector length of column ``col`` (so a few malformed rows cannot set d)."""
    top = (
        df.select(vector_size(df, col).alias("n"))
        .filter("n > 0")
        .groupBy("n")
        .count()
        .orderBy(F.desc("count"), "n")
        .first()
    )
    if top is None:
        raise PQError("no non-empty vectors to infer the dimension from")
    return int(top["n"])


@dataclass
class Checked:
    """Rows split into good ones (vector as ``array<float>``) and bad ones with a reason, plus counts."""

    good: DataFrame
    bad: DataFrame
    rows_in: int
    bad_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rows_bad(self) -> int:
        return sum(self.bad_by_reason.values())

    @property
    def bad_fraction(self) -> float:
        return self.rows_bad / self.rows_in if self.rows_in else 0.0


def split_vectors(df: DataFrame, vector_col: str, dim: int) -> Checked:
    """Separate rows whose vector cannot be quantised; one pass counts rows and problems.

    Good rows keep binary vectors as binary (the encoder's fastest input) and have any other vector
    type as ``array<float>``; bad rows carry the vector as a string (binary: base64)."""
    if isinstance(vector_type(df, vector_col), T.BinaryType):
        marked = df.withColumn(REASON_COL, binary_problem(F.col(vector_col), dim))
        shown = F.base64(F.col(vector_col))
    else:
        marked = df.withColumn(vector_col, float_array(df, vector_col))
        marked = marked.withColumn(REASON_COL, problem(F.col(vector_col), dim))
        shown = F.col(vector_col).cast("string")
    counts = marked.groupBy(REASON_COL).count().collect()
    by_reason = {r[REASON_COL]: int(r["count"]) for r in counts if r[REASON_COL] is not None}
    rows_in = sum(int(r["count"]) for r in counts)
    if rows_in == 0:
        raise PQError("empty input: no vectors")
    good = marked.filter(F.col(REASON_COL).isNull()).drop(REASON_COL)
    bad = marked.filter(F.col(REASON_COL).isNotNull()).withColumn(vector_col, shown)
    return Checked(good, bad, rows_in, by_reason)


def check_bad_fraction(checked: Checked, limit: float, where: str, quarantine: str | None) -> None:
    """Fail when more than ``limit`` of the rows are bad; the message names the counts per reason."""
    if checked.bad_fraction > limit:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(checked.bad_by_reason.items()))
        raise PQError(
            f"{where}: {checked.rows_bad} of {checked.rows_in} vectors ({checked.bad_fraction:.2%}) "
            f"are invalid ({reasons}), above the limit {limit:.2%}; quarantined to {quarantine}"
        )


def check_unique_ids(df: DataFrame, id_col: str, where: str) -> None:
    """Item ids must be unique (search results are keyed by them)."""
    require_columns(df, [id_col], where)
    dup = df.groupBy(id_col).count().filter("count > 1")
    stats = dup.agg(F.count(F.lit(1)).alias("ids"), F.sum(F.col("count") - 1).alias("extra")).first()
    if stats["ids"]:
        examples = [r[id_col] for r in dup.orderBy(F.desc("count"), id_col).limit(5).collect()]
        raise PQError(
            f"{where}: {stats['ids']} duplicate {id_col} value(s) ({stats['extra']} extra rows), "
            f"e.g. {examples}; ids must be unique"
        )
