"""A Spark standalone cluster on 127.0.0.1 for tests: one master, N workers, always torn down."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cluster_env(work: Path) -> dict[str, str]:
    return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": HOST, "SPARK_LOCAL_HOSTNAME": HOST,
            "SPARK_LOG_DIR": str(work / "logs"), "SPARK_WORKER_DIR": str(work / "worker"),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://{HOST}:{ui_port}/json/", timeout=5) as resp:
        return json.load(resp)


@contextmanager
def standalone_cluster(work: Path, workers: int = 2, cores: int = 1, memory: str = "1500m",
                       timeout: float = 120) -> Iterator[str]:
    """Start ``spark-class`` master and workers; yield the master URL once every worker is alive."""
    work.mkdir(parents=True, exist_ok=True)
    env = cluster_env(work)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, ui_port = free_port(), free_port()
    url = f"spark://{HOST}:{port}"
    procs: list[subprocess.Popen] = []

    def launch(name: str, args: list[str]) -> None:
        log = open(work / f"{name}.log", "w")
        procs.append(subprocess.Popen([spark_class, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True))
        log.close()

    try:
        launch("master", ["org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(port),
                          "--webui-port", str(ui_port)])
        for i in range(workers):
            launch(f"worker{i}", ["org.apache.spark.deploy.worker.Worker", url, "--host", HOST,
                                  "--port", str(free_port()), "--webui-port", str(free_port()),
                                  "--cores", str(cores), "--memory", memory, "--work-dir", str(work / f"w{i}")])
        deadline = time.time() + timeout
        while True:
            dead = [p.args[1] for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"cluster process exited early: {dead}; logs in {work}")
            try:
                if _master_state(ui_port).get("aliveworkers", 0) == workers:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"{workers} workers did not register with {url} in {timeout}s; logs in {work}")
            time.sleep(1)
        yield url
    finally:
        for proc in reversed(procs):
            _stop(proc)
