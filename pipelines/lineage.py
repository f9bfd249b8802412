"""Lineage: what a committed output was made from, so a planner can tell a fresh output from a stale one.

Every job run has a commit token. Each output it commits carries, in its ``_metrics.json`` under
``lineage``, that token, the time of the commit, the package version, a digest of the resolved
configuration and a fingerprint of every input as the run found it before reading it: the producing run's
token for an input that is a committed output of this package, otherwise the input's files (count, bytes,
newest modification time and a digest of every file's name, length and modification time). An output is
stale when any of these differs now (``why_stale``); outputs committed together by one run share a token,
so a set the driver died in the middle of committing shows as two tokens (``half_committed``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any, Iterable, Mapping

from pipelines import __version__
from pipelines.fs import FS

SUCCESS_MARKER = "_SUCCESS"
METRICS_FILE = "_metrics.json"
HIDDEN_DIRS = ("_staging", "_leases")


def new_token() -> str:
    """The commit token of one job run."""
    return uuid.uuid4().hex


def config_digest(config: Mapping[str, Any]) -> str:
    """A stable digest of a resolved configuration (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def now_iso(timespec: str = "seconds") -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec=timespec)


def read_metrics(fs: FS, path: str) -> dict[str, Any] | None:
    """The ``_metrics.json`` of a committed output of this package (``_SUCCESS`` beside it), or None."""
    try:
        if not fs.exists(f"{path}/{SUCCESS_MARKER}"):
            return None
        doc = json.loads(fs.read_text(f"{path}/{METRICS_FILE}"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "job" in doc and "version" in doc else None


def lineage_of(doc: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((doc or {}).get("lineage") or {})


def fingerprint(fs: FS, path: str) -> dict[str, Any]:
    """What ``path`` is now: a committed output's token, or its files' summary and digest; ``id`` compares."""
    if not fs.exists(path):
        return {"id": "absent"}
    lineage = lineage_of(read_metrics(fs, path))
    if lineage.get("token"):
        return {"id": f"token:{lineage['token']}", "committed_at": lineage.get("committed_at")}
    digest = hashlib.sha256()
    files = size = newest = 0
    for entry in sorted(fs.files_under(path, HIDDEN_DIRS), key=lambda e: e.relative):
        digest.update(f"{entry.relative}\0{entry.length}\0{entry.mtime_ms}\n".encode("utf-8"))
        files, size, newest = files + 1, size + entry.length, max(newest, entry.mtime_ms)
    modified = dt.datetime.fromtimestamp(newest / 1000, dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "id": f"files:{digest.hexdigest()[:20]}",
        "files": files,
        "bytes": size,
        "newest_mtime": modified if files else None,
    }


def make_lineage(
    token: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Mapping[str, Any]],
    declared: bool,
    outputs: Mapping[str, str],
) -> dict[str, Any]:
    """The ``lineage`` section of a run's ``_metrics.json``; ``declared``: the inputs came from a pipeline
    step (``--input``) rather than the configuration; ``outputs``: the outputs committed together."""
    return {
        "token": token,
        "committed_at": now_iso(),
        "version": __version__,
        "config_sha256": config_digest(config),
        "inputs": {p: dict(f) for p, f in inputs.items()},
        "inputs_from": "declared" if declared else "configuration",
        "outputs": dict(outputs),
    }


def _since(lineage: Mapping[str, Any]) -> str:
    return str(lineage.get("committed_at") or "?")[:16]


def why_stale(
    fs: FS, lineage: Mapping[str, Any], config: Mapping[str, Any], inputs: Iterable[str] | None = None, show=lambda p: p
) -> str | None:
    """Why an output with this ``lineage`` must be made again, or None while it is current.

    ``inputs``, when given, are the inputs the step declares now: a list other than the one the run was
    given with ``--input`` is a change (none declared matches inputs taken from the configuration);
    ``show`` shortens paths for the message.
    """
    if not lineage.get("token"):
        return "no lineage recorded with the output (written before lineage was kept)"
    if lineage.get("version") != __version__:
        return f"package version changed ({lineage.get('version')} -> {__version__})"
    if lineage.get("config_sha256") != config_digest(config):
        return f"configuration changed since {_since(lineage)}"
    recorded = lineage.get("inputs") or {}
    was_declared = sorted(recorded) if lineage.get("inputs_from") == "declared" else []
    if inputs is not None and sorted(set(inputs)) != was_declared:
        return f"declared inputs differ from those recorded at {_since(lineage)}"
    for path, then in recorded.items():
        if fingerprint(fs, path)["id"] != then.get("id"):
            return f"input {show(path)} changed since {_since(lineage)}"
    return None


def half_committed(fs: FS, doc: Mapping[str, Any]) -> str | None:
    """An output committed together with others whose current token differs (a commit cut short), or None.

    Undated siblings since replaced by a run of a later date are not a broken set.
    """
    lineage = lineage_of(doc)
    for key, path in (lineage.get("outputs") or {}).items():
        sibling = read_metrics(fs, path)
        if sibling is not None and (sibling.get("run_date") or "") > (doc.get("run_date") or ""):
            continue
        if lineage_of(sibling).get("token") != lineage.get("token"):
            return path
    return None
