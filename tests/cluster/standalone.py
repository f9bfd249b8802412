"""A Spark standalone cluster on 127.0.0.1 for tests: one master, N workers, always torn down.

Each worker runs in its own work directory (so do its executors: not in the driver's working directory, not in
the checkout) with its own Python (``worker_env``: by default the runtime requirements, or none): executors start
``PYSPARK_PYTHON``, a wrapper that runs the interpreter named by the worker's environment. Workers can be
killed and started again (``kill_worker``, ``start_worker``), and an application's executor JVMs are found per
worker (``executor_pids``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyspark

from tests.cluster.worker_env import make_worker_python
from tests.conftest import JAVA_OPTIONS

SPARK_HOME = Path(pyspark.__file__).parent
HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
WORKER_PYTHON = "CLUSTER_WORKER_PYTHON"
# The tests' JIT/GC options (C1 only, serial GC) for every JVM of the tier: master, workers, drivers and
# executors. Seven JVMs share the 2 cores here, each short-lived or mostly idle, and C2's compiler
# threads and G1's GC threads cost more than they save: a 10,000-row train_gbdt_lr application on two executors
# took 114 s and 153 CPU-seconds with them, 152-164 s and 263-289 CPU-seconds without.
# Two one-core executors of 1 GB, all registered before the first job.
EXECUTORS = {
    "spark.executor.cores": 1,
    "spark.cores.max": 2,
    "spark.executor.memory": "1g",
    "spark.driver.host": HOST,
    "spark.scheduler.minRegisteredResourcesRatio": 1.0,
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
    "spark.driver.extraJavaOptions": JAVA_OPTIONS,
    "spark.executor.extraJavaOptions": JAVA_OPTIONS,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> str:
    """A process's command line, arguments separated by spaces ("" once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
    except OSError:
        return ""


class StandaloneCluster:
    """``spark-class`` master and workers under ``work``; ``start`` returns once every worker is alive."""

    def __init__(
        self,
        work: Path,
        workers: int = 2,
        cores: int = 1,
        memory: str = "1500m",
        make_python: Callable[[Path], Path] = make_worker_python,
    ):
        self.work, self.size, self.cores, self.memory = work, workers, cores, memory
        self.make_python = make_python
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://{HOST}:{self.port}"
        self.master: subprocess.Popen | None = None
        self.workers: dict[int, subprocess.Popen] = {}
        self.pythons: dict[int, Path] = {}
        self.ports: dict[int, int] = {}
        self.orphans: list[tuple[int, str]] = []  # (pid, worker URL) of a killed worker's executors
        self.wrapper = work / "worker-python"

    @property
    def env(self) -> dict[str, str]:
        """Environment of the cluster's processes and of ``spark-submit``: the driver runs this interpreter,
        executors the wrapper."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", WORKER_PYTHON)}
        return {
            **env,
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOCAL_HOSTNAME": HOST,
            "SPARK_LOG_DIR": str(self.work / "logs"),
            "SPARK_DAEMON_JAVA_OPTS": JAVA_OPTIONS,
            "SPARK_WORKER_DIR": str(self.work / "worker"),
            "PYSPARK_PYTHON": str(self.wrapper),
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }

    def _launch(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.work / f"{name}.log", "a") as log:
            return subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.work,
                start_new_session=True,
            )

    def start(self, timeout: float = 120) -> "StandaloneCluster":
        self.work.mkdir(parents=True, exist_ok=True)
        self.wrapper.write_text(f'#!/bin/sh\nexec "${{{WORKER_PYTHON}:?not run by a test worker}}" "$@"\n')
        self.wrapper.chmod(0o755)
        self.master = self._launch(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--webui-port",
                str(self.ui_port),
            ],
            self.env,
        )
        with ThreadPoolExecutor(self.size) as pool:
            paths = pool.map(lambda i: self.make_python(self.work / f"python{i}"), range(self.size))
            self.pythons = dict(enumerate(paths))
        for i in range(self.size):
            self.start_worker(i, wait=False)
        self.wait_for_workers(self.size, timeout)
        return self

    def start_worker(self, i: int, wait: bool = True, timeout: float = 120) -> None:
        """Start worker ``i`` (again, after ``kill_worker``) in work directory ``w<i>`` with its own Python."""
        self.ports[i] = free_port()
        self.workers[i] = self._launch(
            f"worker{i}",
            [
                "org.apache.spark.deploy.worker.Worker",
                self.url,
                "--host",
                HOST,
                "--port",
                str(self.ports[i]),
                "--webui-port",
                str(free_port()),
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--work-dir",
                str(self.work / f"w{i}"),
            ],
            {**self.env, WORKER_PYTHON: str(self.pythons[i])},
        )
        if wait:
            self.wait_for_workers(len(self.workers), timeout)

    def state(self) -> dict:
        """The master's JSON (workers, applications)."""
        return get_json(f"http://{HOST}:{self.ui_port}/json/")

    def wait_for_workers(self, alive: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while True:
            procs = [self.master, *self.workers.values()]
            dead = [p.args[1] for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"cluster process exited early: {dead}; logs in {self.work}")
            try:
                if self.state().get("aliveworkers", 0) == alive:
                    return
            except (OSError, ValueError):  # the master's UI is not up yet
                pass
            if time.time() > deadline:
                raise TimeoutError(
                    f"{alive} workers did not register with {self.url} in {timeout}s; logs in {self.work}"
                )
            time.sleep(0.5)

    def executor_pids(self, app_id: str) -> dict[int, list[int]]:
        """Executor JVMs of application ``app_id`` per worker index (children of that worker's JVM)."""
        return {
            i: [
                pid
                for pid in children(proc.pid)
                if "CoarseGrainedExecutorBackend" in cmdline(pid) and f" {app_id} " in cmdline(pid)
            ]
            for i, proc in self.workers.items()
            if proc.poll() is None
        }

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i``'s JVM (only it: its executors notice and exit, as on a lost node)."""
        proc = self.workers.pop(i)
        url = f"spark://Worker@{HOST}:{self.ports[i]}"
        self.orphans += [(pid, url) for pid in children(proc.pid) if "CoarseGrainedExecutorBackend" in cmdline(pid)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=15)

    def stop(self) -> None:
        """Workers (their process groups: executors too), executors a killed worker left, if any, and the master."""
        for proc in self.workers.values():
            _stop(proc)
        for pid, url in self.orphans:
            if url in cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        if self.master is not None:
            _stop(self.master)


def spark_submit(
    cluster: StandaloneCluster,
    pyfiles: Path,
    job: str,
    args: list[str],
    conf: dict[str, object] | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """The ``spark-submit`` command of ``jobs/<job>.py`` on two one-core executors of ``cluster``, with more
    spark-submit ``options`` (e.g. ``--archives``)."""
    settings = {**EXECUTORS, **(conf or {})}
    return [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master",
        cluster.url,
        "--py-files",
        str(pyfiles),
        *[a for k, v in settings.items() for a in ("--conf", f"{k}={v}")],
        *options,
        str(ROOT / "jobs" / f"{job}.py"),
        *args,
    ]
