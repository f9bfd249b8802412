"""The Hadoop FileSystem calls the commit protocol, leases and the planner need, through Spark's JVM.

Every path goes through ``org.apache.hadoop.fs.FileSystem`` (local, ``file://``, ``hdfs://``, ``s3a://`` ...),
so the same code plans, commits and locks on any store Spark can write to. The file system of each path is
resolved per call (Hadoop caches the instances), so one ``HadoopFS`` serves paths on several stores.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

from pyspark.sql import SparkSession

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def qualify(path: str | os.PathLike) -> str:
    """Absolute local paths for scheme-less input (so messages and Spark agree), URIs unchanged."""
    text = os.fspath(path)
    return text if _SCHEME.match(text) else os.path.abspath(text)


def local_file(path: str) -> str | None:
    """The local path of ``path`` when it is on the local file system (scheme-less or ``file:``), else None."""
    parsed = urlparse(path)
    if not _SCHEME.match(path):
        return path
    return parsed.path if parsed.scheme == "file" else None


@dataclass(frozen=True)
class FileEntry:
    """One file under a directory: its path relative to that directory, length and modification time (ms)."""
    relative: str
    length: int
    mtime_ms: int


class HadoopFS:
    """Hadoop FileSystem operations on any path, through the session's JVM and Hadoop configuration."""

    def __init__(self, spark: SparkSession):
        sc = spark.sparkContext
        self._jvm = sc._jvm
        self._Path = self._jvm.org.apache.hadoop.fs.Path
        self._conf = sc._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        return self._Path(path).getFileSystem(self._conf)

    def _call(self, name: str, path: str, *args):
        return getattr(self._fs(path), name)(self._Path(path), *args)

    def exists(self, path: str) -> bool:
        return bool(self._call("exists", path))

    def is_file(self, path: str) -> bool:
        return bool(self._call("isFile", path))

    def is_dir(self, path: str) -> bool:
        return bool(self._call("isDirectory", path))

    def rename(self, src: str, dst: str) -> None:
        if not self._fs(src).rename(self._Path(src), self._Path(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def delete(self, path: str, recursive: bool = True) -> bool:
        """Delete ``path``; with ``recursive=False`` a non-empty directory is left alone (returns False)."""
        try:
            return bool(self._call("delete", path, recursive))
        except Exception:  # noqa: BLE001 - Hadoop refuses a non-empty directory with an IOException
            if recursive:
                raise
            return False

    def mkdirs(self, path: str) -> None:
        self._call("mkdirs", path)

    def write_bytes(self, path: str, data: bytes) -> None:
        stream = self._call("create", path, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` holding ``data`` unless it exists; False when it does.

        Exclusive on HDFS (the NameNode refuses a second create) and on the local file system (``O_EXCL``,
        since Hadoop's local ``create(path, false)`` checks and then creates). On object stores it is as
        exclusive as the connector's create-without-overwrite.
        """
        local = local_file(path)
        if local is not None:
            os.makedirs(os.path.dirname(local), exist_ok=True)
            try:
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        try:
            stream = self._call("create", path, False)
        except Exception as exc:  # noqa: BLE001 - py4j wraps FileAlreadyExistsException
            if "FileAlreadyExists" in str(exc) or self.exists(path):
                return False
            raise
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        return True

    def read_text(self, path: str) -> str:
        """A small text file (metrics, configuration, a lease) on any Hadoop file system."""
        if not self.exists(path):
            raise FileNotFoundError(f"not found: {path}")
        stream = self._call("open", path)
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def list_names(self, path: str) -> list[str]:
        if not self.exists(path):
            return []
        return [status.getPath().getName() for status in self._call("listStatus", path)]

    def files_under(self, path: str, skip_dirs: tuple[str, ...] = ()) -> Iterator[FileEntry]:
        """Every file below ``path`` (or ``path`` itself if it is a file), skipping directories named in
        ``skip_dirs`` at any depth."""
        root = self._fs(path).makeQualified(self._Path(path)).toUri().getPath().rstrip("/")
        files = self._call("listFiles", path, True)
        while files.hasNext():
            status = files.next()
            full = status.getPath().toUri().getPath()
            relative = full[len(root) + 1:] if full.startswith(root + "/") else os.path.basename(full)
            if skip_dirs and any(part in skip_dirs for part in relative.split("/")[:-1]):
                continue
            yield FileEntry(relative, int(status.getLen()), int(status.getModificationTime()))
