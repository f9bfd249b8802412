"""The run manifest: one JSON file per run of one date, rewritten after every step.

It records what ran and on what: each step's status (skipped, ran, failed, or running if the run was
killed), timings, input fingerprints as the step found them (``pipelines.lineage.fingerprint``: the producing
run's token for a committed output, else file count, bytes, newest mtime and a digest), output row counts,
commit tokens and metrics from
each output's ``_metrics.json``, the resolved configuration, and the package version and git revision.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

from pipelines import __version__
from pipelines.fs import FS, local_file
from pipelines.lineage import fingerprint, lineage_of, now_iso, read_metrics
from pipelines.orchestration.definition import Pipeline
from pipelines.orchestration.plan import PlannedStep
from pipelines.resources import checkout

MANIFEST_NAME = "manifest.json"


def git_revision() -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout the code runs from, or None for an installed package (its version
    says what ran) or outside a git checkout."""
    root = checkout()
    if root is None:
        return None
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"revision": rev, "dirty": bool(dirty)}


def output_record(fs: FS, path: str) -> dict[str, Any]:
    """A committed output: its row count (from the job's ``_metrics.json``) and whether it is committed."""
    metrics = read_metrics(fs, path)
    record: dict[str, Any] = {"path": path, "committed": metrics is not None}
    if metrics:
        keys = [k for k, p in (metrics.get("outputs") or {}).items() if p == path]
        rows = metrics.get("rows_out") or {}
        record.update(
            key=keys[0] if keys else None,
            rows=rows.get(keys[0]) if keys else None,
            job_run_date=metrics.get("run_date"),
            job_started_at=metrics.get("started_at"),
            token=lineage_of(metrics).get("token"),
        )
    return record


def _metrics_of(fs: FS, outputs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The job's ``_metrics.json`` (every output of one job run carries the same document)."""
    committed = [read_metrics(fs, o["path"]) for o in outputs if o["committed"]]
    return committed[0] if committed else None


class Manifest:
    """The record of one run of one date, saved under ``<root>/_runs/ds=<date>/<run_id>/manifest.json``."""

    def __init__(
        self,
        pipeline: Pipeline,
        run_date: str,
        mode: str,
        plan: list[PlannedStep],
        fs: FS,
        argv: list[str] | None = None,
        force: bool = False,
    ):
        now = time.time()
        self.fs = fs
        self.run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e3) % 1000:03d}Z-{os.getpid()}"
        self.dir = f"{pipeline.runs_dir}/ds={run_date}/{self.run_id}"
        self.path = f"{self.dir}/{MANIFEST_NAME}"
        self.started = now
        self.data: dict[str, Any] = {
            "pipeline": pipeline.name,
            "definition": str(pipeline.source),
            "root": pipeline.root,
            "run_id": self.run_id,
            "run_date": run_date,
            "mode": mode,
            "force": force,
            "status": "running",
            "started_at": now_iso("milliseconds"),
            "finished_at": None,
            "duration_s": None,
            "version": __version__,
            "git": git_revision(),
            "python": platform.python_version(),
            "host": platform.node(),
            "command": argv if argv is not None else sys.argv,
            "steps": [self._entry(fs, p, run_date) for p in plan],
        }
        self.save()

    @staticmethod
    def _entry(fs: FS, planned: PlannedStep, run_date: str) -> dict[str, Any]:
        outputs = [output_record(fs, o) for o in planned.step.output_paths(run_date)]
        skipped = planned.action == "skip"
        return {
            "name": planned.step.name,
            "job": planned.step.job,
            "depends_on": planned.step.depends_on,
            "status": "skipped" if skipped else "pending",
            "reason": planned.reason,
            "started_at": None,
            "duration_s": None,
            "inputs": [],
            "outputs": outputs,
            "config": None,
            "metrics": _metrics_of(fs, outputs) if skipped else None,
            "error": None,
        }

    def step(self, name: str) -> dict[str, Any]:
        return next(s for s in self.data["steps"] if s["name"] == name)

    def start_step(self, planned: PlannedStep, run_date: str, config: dict[str, Any], command: list[str] | None):
        entry = self.step(planned.step.name)
        entry.update(
            status="running",
            started_at=now_iso("milliseconds"),
            config=config,
            command=command,
            inputs=[{"path": p, **fingerprint(self.fs, p)} for p in planned.step.input_paths(run_date)],
        )
        entry["_t0"] = time.time()
        self.save()

    def finish_step(self, planned: PlannedStep, run_date: str, error: str | None = None) -> dict[str, Any]:
        entry = self.step(planned.step.name)
        entry["duration_s"] = round(time.time() - entry.pop("_t0", time.time()), 3)
        entry["status"] = "failed" if error else "ran"
        entry["error"] = error
        entry["outputs"] = [output_record(self.fs, o) for o in planned.step.output_paths(run_date)]
        entry["metrics"] = _metrics_of(self.fs, entry["outputs"])
        self.save()
        return entry

    def finish(self, status: str) -> None:
        self.data.update(
            status=status, finished_at=now_iso("milliseconds"), duration_s=round(time.time() - self.started, 3)
        )
        self.save()

    def save(self) -> None:
        """Write atomically on a local root (a reader never sees half a file); through Hadoop on other stores."""
        text = (
            json.dumps(
                {
                    **self.data,
                    "steps": [{k: v for k, v in s.items() if not k.startswith("_")} for s in self.data["steps"]],
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
        local = local_file(self.path)
        if local is None:
            self.fs.write_text(self.path, text)
            return
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(f"{local}.tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(f"{local}.tmp", local)


def manifests(pipeline: Pipeline, run_date: str) -> list[str]:
    """Manifest paths of every run of ``run_date``, oldest first (a root on the local file system)."""
    base = local_file(f"{pipeline.runs_dir}/ds={run_date}")
    if base is None or not os.path.isdir(base):
        return []
    return [
        f"{base}/{d}/{MANIFEST_NAME}" for d in sorted(os.listdir(base)) if os.path.isfile(f"{base}/{d}/{MANIFEST_NAME}")
    ]
