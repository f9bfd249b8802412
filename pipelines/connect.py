"""Spark Connect compatibility: which session this is, and the few classic calls the library needs, made safe.

A Spark Connect session (Spark 4 clients, Databricks serverless and shared clusters) has no ``SparkContext``, no
JVM in this process and no RDDs. The library's DataFrame code runs on either kind of session; what needs the
classic API asks ``require_classic`` first, so it stops at once with one line instead of an ``AttributeError``
deep inside a job.
"""

from __future__ import annotations

import pickle
from typing import Any, Generic, TypeVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.errors import UserError

T = TypeVar("T")
# A value a UDF closes over travels inside the plan over Connect; bigger ones need a classic broadcast.
MAX_SHIPPED_BYTES = 64 << 20
_PARALLELISM: dict[str, int] = {}


class ConnectUnsupported(UserError):
    """A library function that needs the classic API was called with a Spark Connect session."""


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect session (``pyspark.sql.connect.session.SparkSession``), False for a classic one."""
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError:  # the Connect client extras (grpcio...) are not installed: no Connect session exists
        return False
    return isinstance(spark, ConnectSession)


def remote_url(spark: SparkSession) -> str:
    """``sc://host:port`` of a Connect session, for messages (without the URL's parameters, which may hold a
    token)."""
    return f"sc://{spark.client._builder.endpoint}"


def require_classic(spark: SparkSession, what: str, why: str) -> None:
    """Stop with one line when ``what`` (which needs ``why``, e.g. "it uses RDDs") is asked of a Connect session."""
    if is_connect(spark):
        raise ConnectUnsupported(
            f"{what} needs a classic SparkSession ({why}); it cannot run over Spark Connect "
            f"(spark.remote={remote_url(spark)})"
        )


def default_parallelism(spark: SparkSession) -> int:
    """``SparkContext.defaultParallelism`` on a classic session; over Connect the same number, read once per
    session as the partition count of ``spark.range`` (which Spark sizes by the default parallelism)."""
    if not is_connect(spark):
        return spark.sparkContext.defaultParallelism
    key = spark.session_id
    if key not in _PARALLELISM:
        parts = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p"))
        _PARALLELISM[key] = int(parts.agg(F.max("p")).first()[0]) + 1
    return _PARALLELISM[key]


class Shipped(Generic[T]):
    """A value shipped inside a UDF's closure (``.value`` like a broadcast's), for Connect sessions."""

    def __init__(self, value: T):
        self.value = value

    def destroy(self) -> None:
        """Nothing to free: the value goes away with the UDF."""


def share(spark: SparkSession, value: T, what: str) -> Any:
    """A read-only ``value`` for tasks: a broadcast on a classic session; over Connect the value itself, carried
    with the UDF that closes over it, so it must stay small (``MAX_SHIPPED_BYTES``; ``what`` names it)."""
    if not is_connect(spark):
        return spark.sparkContext.broadcast(value)
    size = len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    if size > MAX_SHIPPED_BYTES:
        raise ConnectUnsupported(
            f"{what} takes {size / 2**20:.0f} MB, more than the {MAX_SHIPPED_BYTES >> 20} MB "
            f"a Spark Connect session can ship with a UDF; use fewer at once or a classic "
            f"SparkSession (which broadcasts it)"
        )
    return Shipped(value)
