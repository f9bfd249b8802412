"""Run a pipeline with spark-submit on the test cluster and, at chosen moments, SIGKILL one executor JVM or one
worker JVM.

A moment is read from the driver's REST API: a stage with running tasks in a Spark job whose description (set by
the library with ``pipelines.session.job_description``) matches, optionally after some such jobs finished. (The
job's own progress lines reach spark-submit's output seconds late when the machine is busy.) After each kill the
cluster is made whole again before the next moment: a killed worker is started again at once (a node coming
back), and the next kill waits until the application has an executor on it again. What each kill cost is read
from the event log afterwards, per pipeline step (by when each step started, in the run's manifest): failed task
attempts by reason, stage attempts run again, executors lost and added.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from tests.cluster.standalone import (
    HOST,
    ROOT,
    StandaloneCluster,
    children,
    cmdline,
    free_port,
    get_json,
    spark_submit,
)

FAULTS = ("executor", "worker")
VICTIM = 0  # the worker whose executor (or itself) is killed


@dataclass(frozen=True)
class Moment:
    """When to kill: once ``jobs_done`` Spark jobs whose description matches ``job`` (the phase) have finished,
    while a stage of such a job, of at least ``tasks`` tasks, has running tasks (and ``tasks_done`` finished)."""

    job: str
    jobs_done: int = 0
    tasks: int = 1
    tasks_done: int = 0


@dataclass
class Run:
    """A pipeline run: its seconds, its manifest's steps, its event log, the kills."""

    seconds: float
    steps: list[dict]
    log_dir: Path
    kills: list[dict] = field(default_factory=list)


class Driver:
    """The driver's REST API (``spark.ui.port``) of one submitted application."""

    def __init__(self, port: int):
        self.base = f"http://{HOST}:{port}/api/v1/applications"
        self.app_id = ""

    def get(self, path: str) -> list:
        if not self.app_id:
            self.app_id = get_json(self.base)[0]["id"]
        return get_json(f"{self.base}/{self.app_id}/{path}")

    def executors(self) -> int:
        """Executors registered and active (the driver not counted)."""
        return sum(e["id"] != "driver" and e["isActive"] for e in self.get("executors"))

    def running_stage(self, moment: Moment) -> dict | None:
        """A stage as ``moment`` wants it (id, description, tasks finished of all), or None."""
        jobs = [j for j in self.get("jobs") if re.search(moment.job, j.get("description", ""))]
        if sum(j["status"] == "SUCCEEDED" for j in jobs) < moment.jobs_done:
            return None
        for s in self.get("stages?status=active"):
            done, tasks = s["numCompleteTasks"], s["numTasks"]
            if (
                re.search(moment.job, s.get("description", ""))
                and tasks >= moment.tasks
                and s["numActiveTasks"] > 0
                and done >= moment.tasks_done
            ):
                return {"stage": s["stageId"], "job": s["description"], "tasks_done": f"{done}/{tasks}"}
        return None


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def step_events(log_dir: Path, steps: list[dict]) -> dict[str, dict]:
    """Per step of the manifest: tasks, failed task attempts by reason, stage attempts run again, and executors
    removed and added while it ran. An event belongs to the last step started before it (the manifest's start
    times are whole seconds: an event within a second of a step's start may go to the step before)."""
    starts = sorted((_ms(s["started_at"]), s["name"]) for s in steps if s.get("started_at"))
    found = {
        name: {
            "tasks": 0,
            "failed_tasks": 0,
            "failed_by_reason": Counter(),
            "stage_attempts_rerun": 0,
            "executors_removed": 0,
            "executors_added": 0,
        }
        for _, name in starts
    }

    def at(ms: float) -> dict | None:
        before = [name for start, name in starts if start <= ms]
        return found[before[-1]] if before else None

    (path,) = log_dir.iterdir()
    with path.open() as lines:
        for line in lines:
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerTaskEnd":
                row = at(event["Task Info"]["Finish Time"])
                if row is not None:
                    row["tasks"] += 1
                    reason = event["Task End Reason"]["Reason"]
                    if reason != "Success":
                        row["failed_tasks"] += 1
                        row["failed_by_reason"][reason] += 1
            elif kind == "SparkListenerStageSubmitted" and event["Stage Info"]["Stage Attempt ID"] > 0:
                row = at(event["Stage Info"].get("Submission Time") or 0)
                if row is not None:
                    row["stage_attempts_rerun"] += 1
            elif kind in ("SparkListenerExecutorAdded", "SparkListenerExecutorRemoved"):
                row = at(event["Timestamp"])
                if row is not None:
                    row["executors_" + kind.removeprefix("SparkListenerExecutor").lower()] += 1
    return {name: {**row, "failed_by_reason": dict(row["failed_by_reason"])} for name, row in found.items()}


def executor_back_s(log_dir: Path, at_ms: int) -> float | None:
    """Seconds from ``at_ms`` (a kill) until the driver registered an executor again, from the event log."""
    (path,) = log_dir.iterdir()
    with path.open() as lines:
        added = [e["Timestamp"] for e in map(json.loads, lines) if e["Event"] == "SparkListenerExecutorAdded"]
    later = [t for t in added if t > at_ms]
    return round((min(later) - at_ms) / 1000, 1) if later else None


def _await(until, what: str, proc: subprocess.Popen, output: Path, deadline: float):
    """Poll ``until()`` until it returns something; fails when the job ends first or at ``deadline``."""
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the job ended before {what}:\n{output.read_text()[-3000:]}")
        try:
            found = until()
            if found:
                return found
        except (OSError, ValueError, IndexError, KeyError):  # the driver's UI or REST API is not up yet
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no {what} in time")


def _kill(cluster: StandaloneCluster, fault: str, app_id: str) -> dict:
    """SIGKILL the victim's executor JVM, or the victim worker's JVM (and start that worker again); what was
    killed, and the interpreters of the executor's Python workers (the worker's own, if all is well)."""
    (executor,) = cluster.executor_pids(app_id)[VICTIM]
    pythons = sorted({cmdline(pid).split()[0] for pid in children(executor) if "pyspark.daemon" in cmdline(pid)})
    if fault == "executor":
        os.kill(executor, signal.SIGKILL)
        return {"fault": fault, "pythons": pythons}
    cluster.kill_worker(VICTIM)
    cluster.start_worker(VICTIM, wait=False)
    return {"fault": fault, "pythons": pythons}


def run_pipeline(
    cluster: StandaloneCluster,
    pyfiles: Path,
    definition: Path,
    run_date: str,
    work: Path,
    moments: list[Moment] = (),
    fault: str | None = None,
    conf: dict | None = None,
    timeout: float = 900,
) -> Run:
    """``spark-submit jobs/run_pipeline.py definition`` once every worker is alive; with ``fault``, kill at each
    of ``moments`` in turn, each time once the application has an executor on every worker again. Fails the
    test unless the run exits 0."""
    cluster.wait_for_workers(cluster.size)
    logs, ui_port = work / "eventlog", free_port()
    logs.mkdir(parents=True)
    conf = {
        "spark.ui.enabled": "true",
        "spark.ui.port": ui_port,
        "spark.ui.liveUpdate.period": 0,  # the REST API shows tasks when they start
        "spark.ui.showConsoleProgress": "false",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": logs.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        **(conf or {}),
    }
    output = work / "output.log"  # spark-submit passes the Python driver's stderr to its stdout
    started, kills = time.time(), []
    deadline = started + timeout
    with output.open("w") as log:
        proc = subprocess.Popen(
            spark_submit(cluster, pyfiles, "run_pipeline", [str(definition), "--run-date", run_date], conf),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cluster.env,
            cwd=ROOT,
        )
    try:
        driver = Driver(ui_port)
        for moment in moments if fault else ():
            _await(
                lambda: driver.executors() == cluster.size and cluster.executor_pids(driver.app_id)[VICTIM],
                "an executor on every worker",
                proc,
                output,
                deadline,
            )
            kill = _await(lambda m=moment: driver.running_stage(m), f"moment {moment}", proc, output, deadline)
            at = time.time()
            kills.append(
                {
                    "at_s": round(at - started, 1),
                    "at_ms": int(at * 1000),
                    **kill,
                    **_kill(cluster, fault, driver.app_id),
                }
            )
        proc.wait(timeout=max(1.0, deadline - time.time()))
        seconds = time.time() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        if VICTIM not in cluster.workers:
            cluster.start_worker(VICTIM, wait=False)
    text = output.read_text()
    assert proc.returncode == 0, f"the pipeline exited {proc.returncode} ({kills}):\n{text[-5000:]}"
    (manifest,) = (Path(yaml.safe_load(definition.read_text())["root"]) / "_runs" / f"ds={run_date}").glob(
        "*/manifest.json"
    )
    return Run(seconds, json.loads(manifest.read_text())["steps"], logs, kills)
