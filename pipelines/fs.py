"""The file system calls the commit protocol, leases and the planner need, on a classic or a Connect session.

On a classic session every path goes through ``org.apache.hadoop.fs.FileSystem`` in Spark's JVM (local,
``file://``, ``hdfs://``, ``s3a://`` ...), so the same code plans, commits and locks on any store Spark can write
to. The file system of each path is resolved per call (Hadoop caches the instances), so one ``HadoopFS`` serves
paths on several stores. A Spark Connect client has no JVM: there ``ArrowFS`` makes the same calls through
``pyarrow.fs`` (local paths and ``file://``; ``hdfs://``, ``s3://`` and ``gs://`` where pyarrow has them), from
the client, which must therefore see the same store as the server. ``file_system`` picks one for a session.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pyspark.sql import SparkSession

from pipelines.connect import is_connect
from pipelines.errors import InputError

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


class FS:
    """The operations both implementations share the meaning of; subclasses make the store calls."""

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def write_bytes(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def _create_new(self, path: str, data: bytes) -> bool:
        """``create_exclusive`` off the local file system: the store's own create-without-overwrite."""
        raise NotImplementedError

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` holding ``data`` unless it exists; False when it does.

        Exclusive on the local file system (``O_EXCL``, since Hadoop's local ``create(path, false)`` checks and
        then creates), and with ``HadoopFS`` on HDFS (the NameNode refuses a second create). On object stores it
        is as exclusive as the connector's create-without-overwrite (``ArrowFS``: a check, then a write).
        """
        local = local_file(path)
        if local is None:
            return self._create_new(path, data)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        try:
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True


def require_input(fs: FS, path: str) -> str:
    """``path`` qualified, after checking it exists; else ``InputError`` with one line naming it."""
    full = qualify(path)
    if not fs.exists(full):
        raise InputError(f"input path not found: {full}")
    return full


def file_system(spark: SparkSession) -> FS:
    """``HadoopFS`` on a classic session; ``ArrowFS`` on a Spark Connect session, which has no JVM to call."""
    return ArrowFS() if is_connect(spark) else HadoopFS(spark)


class HadoopFS(FS):
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
        try:
            done = self._fs(src).rename(self._Path(src), self._Path(dst))
        except Exception as exc:  # noqa: BLE001 - py4j wraps Hadoop's FileNotFoundException for a missing src
            raise OSError(f"could not rename {src} to {dst}: {str(exc).strip().splitlines()[-1]}") from exc
        if not done:
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

    def _create_new(self, path: str, data: bytes) -> bool:
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
            relative = full[len(root) + 1 :] if full.startswith(root + "/") else os.path.basename(full)
            if skip_dirs and any(part in skip_dirs for part in relative.split("/")[:-1]):
                continue
            yield FileEntry(relative, int(status.getLen()), int(status.getModificationTime()))


class ArrowFS(FS):
    """The same operations through ``pyarrow.fs``, for a Spark Connect client (no JVM in this process).

    Local and ``file:`` paths use the local file system; any other URI the store pyarrow resolves it to (one
    instance per scheme and authority). Calls mean what Hadoop's mean: a rename needs its target absent and the
    target's parent present, a non-recursive delete leaves a non-empty directory alone.
    """

    def __init__(self) -> None:
        self._stores: dict[str, pafs.FileSystem] = {}

    def _resolve(self, path: str) -> tuple[pafs.FileSystem, str]:
        local = local_file(path)
        if local is not None:
            return self._stores.setdefault("", pafs.LocalFileSystem()), os.path.abspath(local)
        parsed = urlparse(path)
        key = f"{parsed.scheme}://{parsed.netloc}"
        if key not in self._stores:
            self._stores[key] = pafs.FileSystem.from_uri(path)[0]
        return self._stores[key], f"{parsed.netloc}{parsed.path}" if parsed.scheme in ("s3", "gs") else parsed.path

    def _info(self, path: str) -> pafs.FileInfo:
        store, where = self._resolve(path)
        return store.get_file_info(where)

    def exists(self, path: str) -> bool:
        return self._info(path).type != pafs.FileType.NotFound

    def is_file(self, path: str) -> bool:
        return self._info(path).type == pafs.FileType.File

    def is_dir(self, path: str) -> bool:
        return self._info(path).type == pafs.FileType.Directory

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``, or into ``dst`` when that is a directory, as Hadoop's ``rename`` does."""
        store, where = self._resolve(src)
        into = dst.rstrip("/") + "/" + os.path.basename(where.rstrip("/")) if self.is_dir(dst) else dst
        if not self.exists(src) or self.exists(into) or not self.is_dir(into.rsplit("/", 1)[0]):
            raise OSError(f"could not rename {src} to {dst}")
        store.move(where, self._resolve(into)[1])

    def delete(self, path: str, recursive: bool = True) -> bool:
        """Delete ``path``; with ``recursive=False`` a non-empty directory is left alone (returns False)."""
        store, where = self._resolve(path)
        kind = store.get_file_info(where).type
        if kind == pafs.FileType.NotFound:
            return False
        if kind != pafs.FileType.Directory:
            store.delete_file(where)
        elif recursive or not store.get_file_info(pafs.FileSelector(where)):
            store.delete_dir(where)
        else:
            return False
        return True

    def mkdirs(self, path: str) -> None:
        store, where = self._resolve(path)
        store.create_dir(where, recursive=True)

    def write_bytes(self, path: str, data: bytes) -> None:
        store, where = self._resolve(path)
        store.create_dir(where.rstrip("/").rsplit("/", 1)[0], recursive=True)
        with store.open_output_stream(where) as stream:
            stream.write(data)

    def _create_new(self, path: str, data: bytes) -> bool:
        if self.exists(path):
            return False
        self.write_bytes(path, data)
        return True

    def read_text(self, path: str) -> str:
        """A small text file (metrics, configuration, a lease)."""
        if not self.is_file(path):
            raise FileNotFoundError(f"not found: {path}")
        store, where = self._resolve(path)
        with store.open_input_stream(where) as stream:
            return stream.read().decode("utf-8")

    def list_names(self, path: str) -> list[str]:
        if not self.is_dir(path):
            return [os.path.basename(path.rstrip("/"))] if self.exists(path) else []
        store, where = self._resolve(path)
        return [info.base_name for info in store.get_file_info(pafs.FileSelector(where))]

    def files_under(self, path: str, skip_dirs: tuple[str, ...] = ()) -> Iterator[FileEntry]:
        """Every file below ``path`` (or ``path`` itself if it is a file), skipping directories named in
        ``skip_dirs`` at any depth."""
        store, where = self._resolve(path)
        top = store.get_file_info(where)
        if top.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"not found: {path}")
        if top.type == pafs.FileType.File:
            found = [top]
        else:
            found = store.get_file_info(pafs.FileSelector(where, recursive=True))
        root = where.rstrip("/")
        for info in found:
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(root) + 1 :] if info.path.startswith(root + "/") else info.base_name
            if skip_dirs and any(part in skip_dirs for part in relative.split("/")[:-1]):
                continue
            yield FileEntry(relative, int(info.size), int(info.mtime_ns // 1_000_000))
