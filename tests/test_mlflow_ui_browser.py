"""The MLflow UI on the store ``make demo`` leaves, in headless Chromium (the browser tier, ``make test-report``).

The demo runs tracked (``tracked_demo``, tests/conftest.py); ``mlflow server`` (the ``tracking-ui`` extra) serves
its store on 127.0.0.1; the REST API gives the demo run's id, and Chromium renders the UI's page of that run (a
React app: ``--dump-dom`` after a virtual time budget), which must show the run and its NDCG@10. Skips, saying
why, without chromium or without the full mlflow.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.chromium import chromium, chromium_binary
from tests.conftest import DEMO_DATE

pytestmark = pytest.mark.browser

NDCG = "demo.evaluation.methods.ours.ndcg_at_10"  # the demo's NDCG@10 of our ranked lists, as MLflow logs it
SERVER_START_S = 180


def ui_command() -> list[str]:
    """``mlflow server`` of this interpreter's environment; skips without the UI (mlflow-skinny has none)."""
    command = Path(sys.executable).with_name("mlflow")
    try:
        import mlflow.server
    except ImportError:
        pytest.skip("no MLflow UI: install the tracking-ui extra (`make` does)")
    if not command.exists() or not (Path(mlflow.server.__file__).parent / "js" / "build" / "index.html").exists():
        pytest.skip(
            f"no MLflow UI (the `mlflow` command beside {sys.executable} and the UI's build come with the "
            f"tracking-ui extra, which `make` installs)"
        )
    return [str(command), "server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, endpoint: str, body: dict | None = None, **query: str) -> dict:
    """A call of the REST API: GET with ``query``, or POST of ``body``."""
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def ui(tracked_demo, tmp_path_factory):
    """The UI's base URL on 127.0.0.1, serving the demo's store; stopped after the module."""
    command = ui_command()
    chromium_binary()
    code, out, store = tracked_demo
    assert code == 0
    base = f"http://127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("ui") / "server.log"
    with open(log, "w") as sink:
        server = subprocess.Popen(
            [
                *command,
                "--backend-store-uri",
                f"sqlite:///{store}",
                "--host",
                "127.0.0.1",
                "--port",
                base.rsplit(":", 1)[1],
                "--workers",
                "1",
            ],
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.time() + SERVER_START_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5).close()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, log.read_text()[-3000:]
                time.sleep(1)
        yield base, out
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_ui_shows_the_demo_run_and_its_ndcg(ui):
    base, out = ui
    experiment = api(base, "experiments/get-by-name", experiment_name="demo")["experiment"]["experiment_id"]
    runs = api(base, "runs/search", {"experiment_ids": [experiment], "filter": "attributes.run_name = 'demo'"}).get(
        "runs", []
    )
    assert len(runs) == 1
    run_id = runs[0]["info"]["run_id"]
    page = chromium(
        "--window-size=1280,4000",
        "--virtual-time-budget=30000",
        "--dump-dom",
        f"{base}/#/experiments/{experiment}/runs/{run_id}",
    )
    assert page.returncode == 0, page.stderr[-3000:]
    dom = page.stdout
    assert re.search(r'data-testid="runs-header">demo<', dom) and run_id in dom, dom[-3000:]
    shown = re.search(re.escape(NDCG) + r'</a>.{0,600}?title="([^"]+)"', dom, re.S)
    assert shown, f"{NDCG} not on the run's page"
    ndcg = json.loads((out / "evaluation" / "results" / f"ds={DEMO_DATE}" / "_metrics.json").read_text())["evaluation"][
        "methods"
    ]["ours"]["ndcg@10"]
    assert float(shown.group(1)) == pytest.approx(ndcg, rel=1e-12)
