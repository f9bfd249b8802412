"""SparkSession factory shared by jobs and tests.

Under ``spark-submit`` the launcher has already decided master, ``--conf`` values and spark-defaults, and a
job adds no setting of its own: only a Spark YAML named explicitly (a job's ``--spark-conf``, a pipeline's
``spark.conf_file``) and a pipeline's ``spark.conf`` fill what is still unset. Under plain ``python`` there is
no launcher, so the YAML (``conf/spark/local.yaml`` unless another is named) decides everything.

A Spark Connect session is asked for with ``SPARK_REMOTE=sc://host:port`` (as PySpark itself reads it) or a
YAML's ``remote:`` key; the server then owns master and static settings, and only SQL settings apply.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import yaml
from pyspark import SparkConf
from pyspark.sql import SparkSession
from pyspark.util import inheritable_thread_target

from pipelines.connect import is_connect
from pipelines.resources import Resource, spark_settings

T = TypeVar("T")
R = TypeVar("R")

LOCAL_SPARK_CONF = spark_settings("local")


def load_spark_yaml(path: str | os.PathLike | Resource | None) -> dict[str, Any]:
    """Read a ``conf/spark/*.yaml`` file (or one the package ships): ``{master: ..., remote: sc://... or None,
    conf: {spark.key: value}}``."""
    if path is None:
        return {"master": "local[*]", "remote": None, "conf": {}}
    p = Path(path) if isinstance(path, (str, os.PathLike)) else path
    if not p.is_file():
        raise FileNotFoundError(f"Spark configuration file not found: {p}")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    unknown = set(data) - {"master", "remote", "conf"}
    if unknown:
        raise ValueError(f"{p}: unknown keys {sorted(unknown)}; valid keys: ['conf', 'master', 'remote']")
    return {
        "master": data.get("master", "local[*]"),
        "remote": data.get("remote"),
        "conf": dict(data.get("conf") or {}),
    }


def under_spark_submit() -> bool:
    """True when this Python process was launched by spark-submit (or pyspark) with a JVM waiting."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _as_conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def get_spark(
    app_name: str, spark_conf: str | os.PathLike | Resource | None = None, overrides: Mapping[str, Any] | None = None
) -> SparkSession:
    """Return the active SparkSession or build one.

    ``spark_conf`` names a Spark YAML (None: ``conf/spark/local.yaml`` under plain python, nothing under
    spark-submit); ``overrides`` (``spark.*`` keys) win over it; values set by spark-submit win over both.
    With ``SPARK_REMOTE`` set, or a ``remote:`` in the YAML, it is a Spark Connect session to that server.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if spark_conf is None and under_spark_submit():
        settings = {"master": None, "remote": None, "conf": {}}
    else:
        settings = load_spark_yaml(LOCAL_SPARK_CONF if spark_conf is None else spark_conf)
    wanted = {k: _as_conf_value(v) for k, v in {**settings["conf"], **(overrides or {})}.items()}
    builder = SparkSession.builder.appName(app_name)
    remote = os.environ.get("SPARK_REMOTE") or settings["remote"]
    if remote:
        # The server decided master and static settings when it started: the client sets SQL settings only.
        builder = builder.remote(remote)
        for key, value in wanted.items():
            if key.startswith("spark.sql."):
                builder = builder.config(key, value)
        return builder.getOrCreate()
    if under_spark_submit():
        # The JVM exists already: read what the launcher set and only fill the gaps.
        from pyspark import SparkContext

        SparkContext._ensure_initialized()
        launched = SparkConf()
        for key, value in wanted.items():
            if not launched.contains(key):
                builder = builder.config(key, value)
    else:
        # Workers run the interpreter that runs the job (its venv has numpy/pandas), unless told otherwise.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(os.environ.get("SPARK_MASTER", settings["master"]))
        for key, value in wanted.items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return spark


@contextmanager
def job_description(spark: SparkSession, text: str) -> Iterator[None]:
    """Spark jobs started inside (from this thread, and threads it starts with ``inheritable_thread_target``) carry
    ``text`` in the Spark UI and its REST API instead of a call site; the previous description comes back after.
    A Spark Connect client cannot set a job description: there the jobs keep the server's own."""
    if is_connect(spark):
        yield
        return
    sc = spark.sparkContext
    previous = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription(text)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", previous)


def thread_map(spark: SparkSession, fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``fn`` over ``items`` from up to ``threads`` driver threads that keep this thread's Spark properties (job
    description, scheduler pool), as ``pyspark.ml.tuning`` runs its fits: a chain of small Spark jobs alone
    leaves the cores idle between its jobs."""
    with ThreadPool(max(1, min(threads, len(items)))) as pool:
        return pool.map(inheritable_thread_target(spark)(fn), items)
