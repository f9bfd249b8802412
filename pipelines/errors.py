"""Errors a user can act on, and failures inside Spark told as one line: jobs print either without a traceback."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Mapping, TypeVar

from py4j.java_gateway import is_instance_of
from py4j.protocol import Py4JJavaError
from pyspark import SparkContext
from pyspark.errors.exceptions.base import PythonException
from pyspark.errors.exceptions.captured import CapturedException
from pyspark.logger import PySparkLogger

Model = TypeVar("Model")
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\.?\s*$")
_QUERY_CONTEXT_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


def _server_error_types() -> tuple[type[Exception], ...]:
    """Errors Spark raised and PySpark converted: captured from the JVM, or sent by a Spark Connect server."""
    try:
        from pyspark.errors.exceptions.connect import SparkConnectGrpcException
    except ImportError:  # no Connect client extras (grpcio): no Connect session either
        return (CapturedException,)
    return (CapturedException, SparkConnectGrpcException)


SPARK_ERRORS = _server_error_types()


class UserError(ValueError):
    """Bad configuration or input; the message names the key, file, column or row and what was expected."""


class InputError(UserError):
    """A job's input that is not there: a path, or a column of a table; the message names it and what there is."""


class ModelError(UserError):
    """A model directory that is missing or cannot be read back; the message names it and the cause."""


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return _SQLSTATE.sub("", lines[0]) if lines else ""


def _spark_line(message: str, params: Mapping[str, str]) -> str:
    """Spark's ``[ERROR_CLASS] message`` first line, led by the ``path`` parameter when the line lacks it."""
    line = _first_line(message)
    path = params.get("path")
    return f"{path}: {line}" if path and path not in line else line


def _java_failure(top: Any) -> str:
    """The first Spark error class in a JVM exception's cause chain, and the root cause beneath it."""
    chain = [top]
    while chain[-1].getCause() is not None and len(chain) < 50:
        chain.append(chain[-1].getCause())
    cause = f"{chain[-1].getClass().getSimpleName()}: {_first_line(chain[-1].getMessage())}".rstrip(": ")
    for depth, error in enumerate(chain):
        if is_instance_of(SparkContext._gateway, error, "org.apache.spark.SparkThrowable") and error.getCondition():
            line = _spark_line(error.getMessage(), dict(error.getMessageParameters()))
            return line if depth == len(chain) - 1 else f"{line.rstrip('. ')}; caused by {cause}"
    return cause


def describe_failure(exc: BaseException) -> str | None:
    """One line for a failure inside Spark, or None for anything else, so that a bug keeps its traceback.

    A truncated file, a missing or corrupt model directory or an ANSI cast error reaches Python as an exception
    PySpark captured from the JVM (``AnalysisException``, ``NumberFormatException``...) or a Spark Connect server
    sent, or, when PySpark does not convert it (a failed stage), as py4j's ``Py4JJavaError``. The line is Spark's
    error class and the first line of its message (which names the file when Spark knows it) and, under a failed
    stage, the root cause.
    An exception raised by Python code in a worker (``PythonException``) is not described: it is a bug.
    """
    if isinstance(exc, SPARK_ERRORS) and not isinstance(exc, PythonException):
        if exc.getCondition():
            return _spark_line(str(exc), exc.getMessageParameters() or {})
        return f"{type(exc).__name__}: {_first_line(str(exc))}"
    if isinstance(exc, Py4JJavaError):
        return _java_failure(exc.java_exception)
    return None


def load_model(load: Callable[[str], Model], path: str) -> Model:
    """``load(path)`` (a model class's ``load``), refusing a missing or unreadable model directory in one line.

    Spark ML readers fail on a missing ``metadata/`` with an ``AnalysisException``, on a damaged file with a
    Spark error, and on garbage metadata with Python's ``JSONDecodeError`` or ``KeyError``.
    """
    try:
        return load(path)
    except (ValueError, KeyError, *SPARK_ERRORS, Py4JJavaError) as exc:
        cause = describe_failure(exc) or f"{type(exc).__name__}: {_first_line(str(exc))}"
        raise ModelError(f"{path}: cannot load the model: {cause}") from exc


def spark_error_logs(enabled: bool) -> None:
    """Turn PySpark's own log of captured errors on or off.

    PySpark logs every captured error that has a query context (an ANSI cast error, say), with its JVM stack
    trace, as a JSON line on stderr, even when the error is handled; a job reports the error itself in one line
    and shows the log only with ``--verbose``.
    """
    for name in _QUERY_CONTEXT_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.WARNING if enabled else logging.CRITICAL)
