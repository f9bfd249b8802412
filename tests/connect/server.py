"""A local Spark Connect server from the pip PySpark, on 127.0.0.1 and a free port, for the connect tier.

``spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer`` runs the server from the
``spark-connect`` jar in ``pyspark/jars``, with the tests' Spark settings (``conf/spark/test.yaml``), so a
classic local session with the same settings is a fair reference. Its Python workers run this interpreter with
the repository on ``PYTHONPATH`` (the library's UDFs are imported by module on the executors).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyspark

from pipelines.session import load_spark_yaml

ROOT = Path(__file__).resolve().parents[2]
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 180
SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"  # the pip PySpark's, not $SPARK_HOME's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConnectServer:
    """One server process; ``url`` is its ``sc://`` address; ``stop`` ends it and its process group."""

    def __init__(self, log_path: Path):
        settings = load_spark_yaml(ROOT / "conf" / "spark" / "test.yaml")
        self.port = free_port()
        self.url = f"sc://127.0.0.1:{self.port}"
        self.log_path = log_path
        conf = {
            **settings["conf"],
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": self.port,
        }
        command = [
            str(SPARK_SUBMIT),
            "--master",
            settings["master"],
            "--class",
            SERVER_CLASS,
            *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")],
            "spark-internal",
        ]
        env = {
            **os.environ,
            "SPARK_HOME": str(SPARK_SUBMIT.parents[1]),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        env.pop("SPARK_REMOTE", None)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
            )

    def wait_ready(self) -> None:
        """Until the port answers; a server that exits or stays silent fails with its log's last lines."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Spark Connect server exited with code {self.process.returncode}:\n{self.tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"Spark Connect server not listening after {START_TIMEOUT_S}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
