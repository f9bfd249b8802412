"""The connect tier's fixtures: one local Spark Connect server for the whole run, and a client session to it.

The tier skips, saying why, when the Connect client extras are missing (``make test-connect`` installs them and
leaves the reason in ``.connect-install-failed`` when it cannot). A test process holds only Connect sessions:
PySpark marks the whole process as Connect once it makes one, so classic reference runs are subprocesses.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.connect.server import ROOT, ConnectServer

CLIENT_EXTRAS = ("grpc", "grpc_status", "google.rpc", "zstandard")


def missing_extras() -> list[str]:
    missing = []
    for module in CLIENT_EXTRAS:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(module)
    return missing


@pytest.fixture(scope="session")
def connect_server(tmp_path_factory):
    missing = missing_extras()
    if missing:
        failed = ROOT / ".connect-install-failed"
        why = failed.read_text().strip() if failed.is_file() else "`make test-connect` installs them"
        pytest.skip(f"Spark Connect client extras not installed (no module {', '.join(missing)}): {why}")
    server = ConnectServer(Path(tmp_path_factory.mktemp("connect-server")) / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def connect_spark(connect_server):
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(connect_server.url).getOrCreate()
    yield session
    session.stop()
