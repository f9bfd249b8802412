"""Input checks shared by every metric: one aggregate pass that counts offending rows per column.

Metrics are computed on a canonical frame (``score`` double, ``label`` 0/1, ``weight`` double and,
for grouped metrics, ``group``) so that the numeric code never sees user column names. Bad input
raises :class:`MetricsInputError` naming each offending column and its row count; with
``drop_invalid=True`` rows with a missing value (null or NaN) are excluded and counted instead.
Other bad values (infinite scores, labels outside the two classes, negative weights) always raise:
they point at a wrong column or a broken model, not at a gap in the data.
"""

from __future__ import annotations

import functools
import inspect
import logging
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.errors import UserError
from pipelines.frames import require_columns

logger = logging.getLogger(__name__)

SCORE, LABEL, WEIGHT, GROUP = "score", "label", "weight", "group"
DROP_HINT = "drop_invalid=True excludes rows with null or NaN values"
COLUMNS = ("df", "score_col", "label_col", "weight_col")
"""The positional arguments of every binary metric, as :func:`prepare_binary` names them."""
LABEL_OPTIONS = ("positive_label", "negative_label", "drop_invalid")
"""The keywords of :func:`prepare_binary` that say how to read the labels; every binary metric takes them too."""

R = TypeVar("R")


class MetricsInputError(UserError):
    """Input a metric cannot be computed on; the message names the column and the count of offending rows.

    A ``ValueError`` (through ``UserError``), so jobs print it as one line.
    """


@dataclass(frozen=True)
class Check:
    """Rows of ``column`` for which ``flag`` is true are ``what`` (e.g. "null or NaN values")."""

    column: str
    what: str
    flag: Column
    droppable: bool = False


@dataclass(frozen=True)
class Checked:
    """What one validation pass found: valid rows, excluded rows, and sums over the valid rows."""

    df: DataFrame
    rows: int
    rows_dropped: int
    sums: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BinaryFrame:
    """Valid rows of a binary-classification input in canonical columns, with their class totals.

    ``df`` has ``score`` (double), ``label`` (int, 1 for the positive class), ``weight`` (double,
    1.0 when unweighted) and, when a group column was given, ``group``.
    """

    df: DataFrame
    rows: int
    rows_dropped: int
    positive_weight: float
    negative_weight: float
    weighted: bool
    sums: Mapping[str, float] = field(default_factory=dict)


def _dtype(df: DataFrame, name: str) -> T.DataType:
    return df.schema[name].dataType


def _fractional(df: DataFrame, name: str) -> bool:
    return isinstance(_dtype(df, name), T.FractionalType)


def require_numeric(df: DataFrame, name: str) -> None:
    if not isinstance(_dtype(df, name), T.NumericType):
        raise MetricsInputError(f"column '{name}' must be numeric, got {_dtype(df, name).simpleString()}")


def missing(df: DataFrame, name: str) -> Column:
    """True where ``name`` is null, or NaN for a floating-point column."""
    flag = F.col(name).isNull()
    return flag | F.isnan(name) if _fractional(df, name) else flag


def infinite(df: DataFrame, name: str) -> Column:
    """True where a floating-point ``name`` is +-inf; never true for other types."""
    if not _fractional(df, name):
        return F.lit(False)
    return F.col(name).isin(float("inf"), float("-inf"))


def missing_check(df: DataFrame, name: str) -> Check:
    return Check(name, "null or NaN values", missing(df, name), droppable=True)


def weight_checks(df: DataFrame, weight_col: str | None) -> list[Check]:
    """Missing, negative or infinite sample weights; none when unweighted."""
    if weight_col is None:
        return []
    require_numeric(df, weight_col)
    bad = (F.col(weight_col) < 0) | infinite(df, weight_col)
    return [missing_check(df, weight_col), Check(weight_col, "negative or infinite weights", bad)]


def validate(
    df: DataFrame, checks: list[Check], *, drop_invalid: bool, sums: Mapping[str, Column] | None = None
) -> Checked:
    """Count every check's offending rows and sum ``sums`` over the valid rows, in one pass.

    Raises MetricsInputError listing each failed check with its column and row count. Droppable
    checks (missing values) are excluded instead when ``drop_invalid`` is set.
    """
    invalid = functools.reduce(operator.or_, (check.flag for check in checks), F.lit(False))
    droppable = functools.reduce(operator.or_, (check.flag for check in checks if check.droppable), F.lit(False))
    aggs = [F.count(F.lit(1)).alias("_rows"), F.count_if(droppable).alias("_dropped")]
    aggs += [F.count_if(check.flag).alias(f"_check{i}") for i, check in enumerate(checks)]
    aggs += [F.sum(F.when(~invalid, expr)).alias(f"_sum{i}") for i, expr in enumerate((sums or {}).values())]
    row = df.agg(*aggs).first()
    problems = [
        f"column '{check.column}': {row[f'_check{i}']} rows with {check.what}"
        for i, check in enumerate(checks)
        if row[f"_check{i}"] and not (drop_invalid and check.droppable)
    ]
    if problems:
        hint = f" ({DROP_HINT})" if any(check.droppable for check in checks) and not drop_invalid else ""
        raise MetricsInputError("; ".join(problems) + hint)
    dropped = int(row["_dropped"])
    rows = int(row["_rows"]) - dropped
    if rows == 0:
        raise MetricsInputError(
            f"no valid rows: the input has {dropped} rows, all with null or NaN values"
            if dropped
            else "no rows: the input is empty"
        )
    if dropped:
        logger.warning("excluded %d of %d rows with null or NaN values", dropped, rows + dropped)
    totals = {name: float(row[f"_sum{i}"] or 0.0) for i, name in enumerate((sums or {}).keys())}
    return Checked(df.where(~invalid) if dropped else df, rows, dropped, totals)


def _literal(value: Any, dtype: T.DataType) -> Column:
    """A label literal comparable with the label column without an ANSI cast error."""
    if isinstance(dtype, T.StringType):
        return F.lit(str(value))
    if isinstance(dtype, T.BooleanType):
        return F.lit(bool(value))
    return F.lit(value)


def prepare_binary(
    df: DataFrame,
    score_col: str,
    label_col: str,
    weight_col: str | None = None,
    *,
    group_col: str | None = None,
    positive_label: Any = 1,
    negative_label: Any = 0,
    drop_invalid: bool = False,
    sums: Mapping[str, Column] | None = None,
) -> BinaryFrame:
    """Validate a scored binary-classification table and return its canonical valid rows.

    ``sums`` are row expressions over the canonical columns (``score``, ``label``, ``weight``),
    summed over the valid rows in the same pass as the checks, so that aggregate metrics cost
    no extra pass. A single-class input (by row count, or by weight) is an error: no ranking
    metric is defined on it.
    """
    used = [score_col, label_col] + [c for c in (weight_col, group_col) if c is not None]
    require_columns(df, used)
    require_numeric(df, score_col)
    label_type = _dtype(df, label_col)
    pos, neg = _literal(positive_label, label_type), _literal(negative_label, label_type)
    checks = [
        missing_check(df, score_col),
        Check(score_col, "infinite values", infinite(df, score_col)),
        missing_check(df, label_col),
        Check(
            label_col,
            f"labels outside {{{negative_label}, {positive_label}}}",
            ~missing(df, label_col) & ~F.col(label_col).isin(pos, neg),
        ),
    ]
    checks += weight_checks(df, weight_col)
    if group_col is not None:
        checks.append(missing_check(df, group_col))
    weight = F.col(weight_col).cast("double") if weight_col else F.lit(1.0)
    canonical = [
        F.col(score_col).cast("double").alias(SCORE),
        F.when(F.col(label_col) == pos, 1).otherwise(0).alias(LABEL),
        weight.alias(WEIGHT),
    ]
    if group_col is not None:
        canonical.append(F.col(group_col).alias(GROUP))
    # Checks read the user's columns, sums the canonical ones: project both, then validate.
    flags = [check.flag.alias(f"_flag{i}") for i, check in enumerate(checks)]
    projected = df.select(*canonical, *flags)
    flagged = [Check(c.column, c.what, F.col(f"_flag{i}"), c.droppable) for i, c in enumerate(checks)]
    class_sums = {
        "_positives": F.col(LABEL),
        "_positive_weight": F.col(LABEL) * F.col(WEIGHT),
        "_negative_weight": (1 - F.col(LABEL)) * F.col(WEIGHT),
    }
    checked = validate(projected, flagged, drop_invalid=drop_invalid, sums={**class_sums, **(sums or {})})
    positives = int(checked.sums["_positives"])
    if positives in (0, checked.rows):
        kind, value = ("negative", negative_label) if positives == 0 else ("positive", positive_label)
        raise MetricsInputError(
            f"column '{label_col}': all {checked.rows} rows are {kind} (label {value}); the metric needs both classes"
        )
    for name, kind, count in (
        ("_positive_weight", "positive", positives),
        ("_negative_weight", "negative", checked.rows - positives),
    ):
        if checked.sums[name] <= 0:
            raise MetricsInputError(
                f"column '{weight_col}': all {count} {kind} rows have weight 0; the metric needs weight in both classes"
            )
    return BinaryFrame(
        df=checked.df.select(*(c for c in projected.columns if not c.startswith("_flag"))),
        rows=checked.rows,
        rows_dropped=checked.rows_dropped,
        positive_weight=checked.sums["_positive_weight"],
        negative_weight=checked.sums["_negative_weight"],
        weighted=weight_col is not None,
        sums={k: v for k, v in checked.sums.items() if k not in class_sums},
    )


@dataclass(frozen=True)
class BinaryInput:
    """A binary metric's arguments as the caller gave them: the table, its columns and the label options."""

    df: DataFrame
    score_col: str
    label_col: str
    weight_col: str | None
    options: Mapping[str, Any]

    def prepare(self, sums: Mapping[str, Column] | None = None) -> BinaryFrame:
        """The canonical valid rows, with ``sums`` summed over them in the checks' pass (see :func:`prepare_binary`)."""
        return prepare_binary(self.df, self.score_col, self.label_col, self.weight_col, sums=sums, **self.options)


def binary_metric(compact: Callable[..., R]) -> Callable[..., R]:
    """Decorator: give a metric written as ``compact(data: BinaryInput, *, <own keywords>)`` the public signature
    ``(df, score_col, label_col, weight_col=None, *, <own keywords>, positive_label=1, negative_label=0,
    drop_invalid=False)``.

    The shared parameters are :func:`prepare_binary`'s, annotations and defaults included, so that they are
    spelled once; the metric keeps ``compact``'s name and docstring, and ``inspect.signature`` (hence ``help``)
    shows its public parameters.
    """
    shared = inspect.signature(prepare_binary).parameters
    own = list(inspect.signature(compact).parameters.values())[1:]
    signature = inspect.signature(compact).replace(
        parameters=[*(shared[name] for name in COLUMNS), *own, *(shared[name] for name in LABEL_OPTIONS)]
    )

    @functools.wraps(compact)
    def metric(*args: Any, **kwargs: Any) -> R:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        options = {name: given.pop(name) for name in LABEL_OPTIONS}
        return compact(BinaryInput(**{name: given.pop(name) for name in COLUMNS}, options=options), **given)

    metric.__signature__ = signature  # type: ignore[attr-defined]
    metric.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    metric.__annotations__["return"] = signature.return_annotation
    return metric
