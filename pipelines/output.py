"""Atomic outputs: write to a hidden staging directory, then commit by rename.

A job writes each output to ``<parent>/_staging/<name>.<uuid>`` (Spark and Hive readers of
``<parent>`` skip names that start with ``_``), adds ``_metrics.json`` and ``_config.yaml`` there,
and only then swaps it into place. A run that dies before the commit leaves the previous output
untouched; a run that dies during the swap leaves the previous output in
``_staging/<name>.previous.<uuid>``, which the next commit restores before it starts.
With a run date the target is the ``ds=YYYY-MM-DD`` partition under the output path, so a re-run
replaces that partition only.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any, Mapping

from pyspark.sql import DataFrame, SparkSession

SUCCESS_MARKER = "_SUCCESS"
METRICS_FILE = "_metrics.json"
CONFIG_FILE = "_config.yaml"
STAGING_DIR = "_staging"
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def qualify(path: str | os.PathLike) -> str:
    """Absolute local paths for scheme-less input (so messages and Spark agree), URIs unchanged."""
    text = os.fspath(path)
    return text if _SCHEME.match(text) else os.path.abspath(text)


def partition_path(path: str | os.PathLike, run_date: str | None) -> str:
    """The directory a job commits to: the path itself, or its ``ds=`` partition for a run date."""
    base = qualify(path).rstrip("/")
    return f"{base}/ds={run_date}" if run_date else base


class HadoopFS:
    """The few Hadoop FileSystem calls the commit protocol needs, through Spark's JVM."""

    def __init__(self, spark: SparkSession, path: str):
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._fs = self._Path(path).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._Path(path)))

    def rename(self, src: str, dst: str) -> None:
        if not self._fs.rename(self._Path(src), self._Path(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def delete(self, path: str) -> None:
        self._fs.delete(self._Path(path), True)

    def mkdirs(self, path: str) -> None:
        self._fs.mkdirs(self._Path(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        stream = self._fs.create(self._Path(path), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        """A small text file (metrics, configuration) beside an output, on any Hadoop file system."""
        if not self.exists(path):
            raise FileNotFoundError(f"not found: {path}")
        stream = self._fs.open(self._Path(path))
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def list_names(self, path: str) -> list[str]:
        if not self.exists(path):
            return []
        return [status.getPath().getName() for status in self._fs.listStatus(self._Path(path))]


class StagedOutput:
    """One output of one run: staged on ``write``, swapped into place on ``commit``."""

    def __init__(self, spark: SparkSession, path: str | os.PathLike, run_date: str | None = None):
        self.spark = spark
        self.final_path = partition_path(path, run_date)
        parent, name = self.final_path.rsplit("/", 1)
        self._parent, self._name = parent, name
        token = uuid.uuid4().hex[:12]
        self._staging_root = f"{parent}/{STAGING_DIR}"
        self.staging_path = f"{self._staging_root}/{name}.{token}"
        self._previous_path = f"{self._staging_root}/{name}.previous.{token}"
        self._fs = HadoopFS(spark, self.final_path)
        self.rows: int | None = None

    def write(self, df: DataFrame, fmt: str = "parquet", partition_by: list[str] | None = None,
              options: Mapping[str, Any] | None = None) -> int:
        """Write ``df`` to the staging directory and return the number of rows written."""
        writer = df.write.format(fmt).mode("overwrite").options(**{k: str(v) for k, v in (options or {}).items()})
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.staging_path)
        reader = self.spark.read.format(fmt)
        if fmt == "csv":
            reader = reader.option("header", (options or {}).get("header", "false"))
        self.rows = reader.load(self.staging_path).count()
        return self.rows

    def write_model(self, model: Any) -> None:
        """Save a Spark ML model (``MLWritable``) to the staging directory."""
        model.write().save(self.staging_path)

    def put_text(self, name: str, text: str | bytes) -> None:
        """Add a small file (metrics, configuration, a plot) that commits with the data."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self._fs.write_bytes(f"{self.staging_path}/{name}", data)

    def put_json(self, name: str, payload: Mapping[str, Any]) -> None:
        self.put_text(name, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")

    def commit(self) -> str:
        """Swap the staged directory into place; the previous output survives any crash before this."""
        if not self._fs.exists(self.staging_path):
            raise RuntimeError(f"nothing staged for {self.final_path}")
        if not self._fs.exists(f"{self.staging_path}/{SUCCESS_MARKER}"):
            self._fs.write_text(f"{self.staging_path}/{SUCCESS_MARKER}", "")
        self._recover_interrupted_swap()
        self._fs.mkdirs(self._parent)
        had_previous = self._fs.exists(self.final_path)
        if had_previous:
            self._fs.rename(self.final_path, self._previous_path)
        self._fs.rename(self.staging_path, self.final_path)
        if had_previous:
            self._fs.delete(self._previous_path)
        self._remove_stale_staging()
        return self.final_path

    def abort(self) -> None:
        """Drop the staged data; the committed output is untouched."""
        self._fs.delete(self.staging_path)

    def _recover_interrupted_swap(self) -> None:
        """A crash between the two renames left only ``<name>.previous.*``: put it back first."""
        if self._fs.exists(self.final_path):
            return
        leftovers = sorted(n for n in self._fs.list_names(self._staging_root)
                           if n.startswith(f"{self._name}.previous."))
        if leftovers:
            self._fs.rename(f"{self._staging_root}/{leftovers[-1]}", self.final_path)

    def _remove_stale_staging(self) -> None:
        """Staging directories of killed runs of this output are garbage once a run commits."""
        for n in self._fs.list_names(self._staging_root):
            if n.startswith(f"{self._name}."):
                self._fs.delete(f"{self._staging_root}/{n}")
        if not self._fs.list_names(self._staging_root):
            self._fs.delete(self._staging_root)


def write_atomic(df: DataFrame, path: str | os.PathLike, run_date: str | None = None, fmt: str = "parquet",
                 files: Mapping[str, str] | None = None) -> str:
    """Stage ``df`` (and small side files), then commit; returns the committed path."""
    out = StagedOutput(df.sparkSession, path, run_date)
    out.write(df, fmt=fmt)
    for name, text in (files or {}).items():
        out.put_text(name, text)
    return out.commit()
