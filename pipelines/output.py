"""Atomic outputs: write to a hidden staging directory, then commit by rename.

A job writes each output to ``<parent>/_staging/<name>.<uuid>`` (Spark and Hive readers of
``<parent>`` skip names that start with ``_``), adds ``_metrics.json`` and ``_config.yaml`` there,
and only then swaps it into place. A run that dies before the commit leaves the previous output
untouched; a run that dies during the swap leaves the previous output in
``_staging/<name>.previous.<uuid>``, which the next commit restores before it starts.
With a run date the target is the ``ds=YYYY-MM-DD`` partition under the output path, so a re-run
replaces that partition only.

Only what this package wrote is ever replaced or deleted: a target that exists must be a committed output
of ours (``_SUCCESS`` with our ``_metrics.json``) or an empty directory, and clean-up removes only staging
directories named like this output's (the run holds the output's lease, so no live run is using them).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any, Mapping

from pyspark.sql import DataFrame, SparkSession

from pipelines.errors import UserError
from pipelines.fs import FS, file_system, qualify
from pipelines.lineage import METRICS_FILE, SUCCESS_MARKER, read_metrics

CONFIG_FILE = "_config.yaml"
STAGING_DIR = "_staging"


class OutputError(UserError):
    """An output path this package must not write: empty, a file, or a directory it did not write."""


def check_replaceable(fs: FS, path: str) -> None:
    """Refuse to replace ``path`` unless it is absent, an empty directory or a committed output of ours."""
    if not fs.exists(path):
        return
    if fs.is_file(path):
        raise OutputError(
            f"output {path} is a file, not an output directory of this package; refusing to "
            f"replace it: choose another output path"
        )
    if read_metrics(fs, path) is None and fs.list_names(path):
        raise OutputError(
            f"output {path} exists and is not a committed output of this package (no {SUCCESS_MARKER} "
            f"with its {METRICS_FILE}); refusing to replace it: choose another output path or move "
            f"its contents away"
        )


def partition_path(path: str | os.PathLike, run_date: str | None) -> str:
    """The directory a job commits to: the path itself, or its ``ds=`` partition for a run date."""
    base = qualify(path).rstrip("/")
    return f"{base}/ds={run_date}" if run_date else base


def overlaps(a: str, b: str) -> bool:
    """Same path, or one inside the other (a whole table and one of its partitions)."""
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


class StagedOutput:
    """One output of one run: staged on ``write``, swapped into place on ``commit``."""

    def __init__(self, spark: SparkSession, path: str | os.PathLike, run_date: str | None = None, fs: FS | None = None):
        if path is None or not os.fspath(path).strip():
            raise OutputError("output path is empty; an empty path would mean the working directory")
        self.spark = spark
        self.final_path = partition_path(path, run_date)
        parent, name = self.final_path.rsplit("/", 1)
        self._parent, self._name = parent, name
        token = uuid.uuid4().hex[:12]
        self._staging_root = f"{parent}/{STAGING_DIR}"
        self.staging_path = f"{self._staging_root}/{name}.{token}"
        self._previous_path = f"{self._staging_root}/{name}.previous.{token}"
        self._fs = fs or file_system(spark)
        self.rows: int | None = None
        check_replaceable(self._fs, self.final_path)

    def write(
        self,
        df: DataFrame,
        fmt: str = "parquet",
        partition_by: list[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> int:
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
        check_replaceable(self._fs, self.final_path)
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
        leftovers = sorted(
            n for n in self._fs.list_names(self._staging_root) if n.startswith(f"{self._name}.previous.")
        )
        if leftovers:
            self._fs.rename(f"{self._staging_root}/{leftovers[-1]}", self.final_path)

    def _remove_stale_staging(self) -> None:
        """Staging directories of this output left by dead runs are garbage once a run commits.

        The committing run holds the output's lease (``pipelines.lease``), so no live run stages this output
        now; other outputs' staging directories and anything not named like ours stay.
        """
        ours = re.compile(rf"^{re.escape(self._name)}\.(previous\.)?[0-9a-f]{{12}}$")
        for n in self._fs.list_names(self._staging_root):
            if ours.match(n):
                self._fs.delete(f"{self._staging_root}/{n}")
        self._fs.delete(self._staging_root, recursive=False)
