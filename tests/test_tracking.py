"""MLflow tracking (pipelines/tracking.py): a job's run, a pipeline's parent run with a child per step, tracking off,
and a store that does not answer. Runs go to temporary SQLite stores, read back with MlflowClient; the job is
``evaluate`` on a 200-row CSV (its AUC checked against scikit-learn, its plots as artifacts)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from pipelines.config import ConfigError
from pipelines.job_runtime import run_job
from pipelines.orchestration.command import main
from pipelines.orchestration.manifest import git_revision
from pipelines.tracking import Run, settings

mlflow_tracking = pytest.importorskip("mlflow.tracking")

ROOT = Path(__file__).resolve().parents[1]
D1 = "2026-11-20"


@pytest.fixture
def scores(tmp_path) -> Path:
    rng = np.random.default_rng(8)
    label = rng.integers(0, 2, 200)
    path = tmp_path / "scores.csv"
    pd.DataFrame({"label": label, "score": np.clip(0.3 * label + 0.7 * rng.random(200), 0, 1)}).to_csv(
        path, index=False
    )
    return path


@pytest.fixture
def tracking_on(monkeypatch):
    monkeypatch.delenv("PIPELINES_TRACKING", raising=False)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_PARENT_RUN_ID", "PIPELINES_STEP_NAME"):
        monkeypatch.delenv(name, raising=False)


def evaluate_args(scores: Path, out: Path) -> list[str]:
    return [
        "--set",
        f"input.path={scores}",
        "--set",
        "input.format=csv",
        "--set",
        "input.schema=label INT, score DOUBLE",
        "--set",
        "input.options={header: true}",
        "--set",
        f"output.path={out}",
        "--run-date",
        D1,
    ]


@pytest.fixture
def shared_store(mlflow_store) -> Path:
    return mlflow_store


def only_run(client, experiment: str):
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def test_job_run_logs_configuration_metrics_plots_and_tags(
    spark, scores, tmp_path, tracking_on, monkeypatch, shared_store
):
    store = shared_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    assert run_job("evaluate", evaluate_args(scores, tmp_path / "eval")) == 0
    client = mlflow_tracking.MlflowClient(f"sqlite:///{store}")
    run = only_run(client, "evaluate")
    assert run.info.status == "FINISHED" and run.info.run_name == "evaluate"
    assert run.data.params["input.path"] == str(scores) and run.data.params["curve_points"] == "200"
    assert run.data.params["input.options.header"] == "true"
    table = pd.read_csv(scores)
    assert run.data.metrics["evaluation.roc_auc"] == pytest.approx(
        roc_auc_score(table["label"], table["score"]), rel=1e-12
    )
    git = git_revision()
    assert run.data.tags["run_date"] == D1 and run.data.tags["package_version"] == "0.1.0"
    assert run.data.tags.get("git_revision") == (git["revision"] if git else None)
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots/report")}
    assert plots == {"plots/report/roc.png", "plots/report/pr.png", "plots/report/calibration.png"}
    artifacts = store.parent / "mlartifacts"  # beside the store, not in the working directory
    assert artifacts.is_dir() and run.info.artifact_uri.startswith(artifacts.as_uri())
    config = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))).read_text())
    assert config["input"]["path"] == str(scores)


def write_definition(tmp_path: Path, scores: Path, tracking: dict | None = None) -> Path:
    """Two steps: the CSV ingested to Parquet, then evaluated."""
    data = {
        "name": "tracked",
        "root": str(tmp_path / "root"),
        "spark": {"conf_file": "conf/spark/test.yaml"},
        "steps": {
            "ingest_scores": {
                "job": "ingest",
                "set": {
                    "input.path": str(scores),
                    "input.schema": "label INT, score DOUBLE",
                    "input.options": {"header": True},
                    "output.path": "{root}/clean/scores",
                },
                "outputs": ["{root}/clean/scores"],
            },
            "evaluate_scores": {
                "job": "evaluate",
                "set": {"input.path": "{root}/clean/scores/ds={run_date}", "output.path": "{root}/evaluation"},
                "inputs": ["{root}/clean/scores/ds={run_date}"],
                "outputs": ["{root}/evaluation"],
            },
        },
    }
    if tracking is not None:
        data["tracking"] = tracking
    path = tmp_path / "tracked.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def runs_of(store: Path, experiment: str) -> tuple:
    client = mlflow_tracking.MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return client, parent, [r for r in runs if r is not parent]


def test_pipeline_run_is_a_parent_with_a_child_per_step(spark, scores, tmp_path, tracking_on, capsys):
    definition = write_definition(tmp_path, scores)
    assert main(["run", str(definition), "--run-date", D1, "--mode", "session"], spark=spark) == 0
    client, parent, children = runs_of(tmp_path / "root" / "mlruns.db", "tracked")
    assert parent.info.status == "FINISHED" and parent.data.tags["run_date"] == D1
    assert parent.data.metrics["steps_ran"] == 2 and parent.data.params["mode"] == "session"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"manifest.json", "report.html"}
    assert sorted(r.info.run_name for r in children) == ["evaluate_scores", "ingest_scores"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert all(r.info.status == "FINISHED" for r in children)
    evaluated = next(r for r in children if r.info.run_name == "evaluate_scores")
    table = pd.read_csv(scores)
    assert evaluated.data.metrics["evaluation.roc_auc"] == pytest.approx(
        roc_auc_score(table["label"], table["score"]), rel=1e-12
    )
    assert evaluated.data.tags["job"] == "evaluate" and evaluated.data.tags["step"] == "evaluate_scores"
    [manifest] = (tmp_path / "root" / "_runs" / f"ds={D1}").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["tracking"]["run_id"] == parent.info.run_id


@pytest.mark.slow
def test_subprocess_steps_are_children_of_the_pipeline_run(spark, scores, tmp_path, tracking_on):
    definition = write_definition(tmp_path, scores)
    assert main(["run", str(definition), "--run-date", D1, "--mode", "subprocess"], spark=spark) == 0
    _, parent, children = runs_of(tmp_path / "root" / "mlruns.db", "tracked")
    assert sorted(r.info.run_name for r in children) == ["evaluate_scores", "ingest_scores"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert all(r.info.status == "FINISHED" and r.data.params for r in children)


def test_a_definition_turns_tracking_off(spark, scores, tmp_path, tracking_on):
    definition = write_definition(tmp_path, scores, {"enabled": False})
    assert main(["run", str(definition), "--run-date", D1, "--mode", "session", "--no-report"], spark=spark) == 0
    assert not (tmp_path / "root" / "mlruns.db").exists() and not (tmp_path / "root" / "mlartifacts").exists()
    with pytest.raises(ConfigError, match="unknown key 'tracking.enable'; valid keys: tracking.enabled"):
        settings({"enable": False})


OFF_PROBE = """
import sys
from types import SimpleNamespace
import pipelines.demo, pipelines.orchestration.command, pipelines.orchestration.report
from pipelines.registry import JOBS
from pipelines.tracking import tracked_job
for job in JOBS.values():
    job.main
ctx = SimpleNamespace(name="evaluate", run_date="2026-11-20", config={"a": 1}, committed={},
                      metrics_document=lambda: {"auc": 0.5})
with tracked_job(ctx) as run:
    pass
from pipelines.model_registry import resolve_config
assert resolve_config({"model_path": "output/model", "input": {"path": "in"}}) == {}
print("tracked", bool(run), "mlflow imported", "mlflow" in sys.modules)
"""


def test_tracking_off_never_imports_mlflow(tmp_path):
    """Every job's module, the job shell's tracking and a configuration without models:/ URIs through the
    registry's resolver in a new interpreter, no JVM: mlflow stays out."""
    env = {**os.environ, "PIPELINES_TRACKING": "off", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", OFF_PROBE], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert "tracked False mlflow imported False" in done.stdout, done.stderr[-2000:]
    assert not list(tmp_path.rglob("mlruns*"))


@pytest.mark.slow
def test_a_job_with_tracking_off_logs_nothing_and_never_imports_mlflow(scores, tmp_path):
    """A real job in a new interpreter, in a directory where the default store (./output/mlruns.db) would go."""
    args = evaluate_args(scores, tmp_path / "eval") + ["--spark-conf", str(ROOT / "conf/spark/test.yaml")]
    probe = (
        "import sys\nfrom pipelines.job_runtime import run_job\n"
        f"code = run_job('evaluate', {args!r})\n"
        "print('exit', code, 'mlflow imported', 'mlflow' in sys.modules)\n"
    )
    env = {**os.environ, "PIPELINES_TRACKING": "off", "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert "exit 0 mlflow imported False" in done.stdout, done.stderr[-2000:]
    assert (tmp_path / "eval" / f"ds={D1}" / "_SUCCESS").exists()
    assert not list(tmp_path.rglob("mlruns*")) and not list(tmp_path.rglob("mlartifacts"))


def test_an_unreachable_store_warns_once_and_the_job_commits(spark, scores, tmp_path, tracking_on, monkeypatch, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert run_job("evaluate", evaluate_args(scores, tmp_path / "eval")) == 0
    assert (tmp_path / "eval" / f"ds={D1}" / "_SUCCESS").exists()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: MLflow tracking of evaluate stopped"), warnings


def test_params_are_flattened_and_cut_to_mlflows_limit(tmp_path, tracking_on, shared_store):
    conf = {**settings(), "uri": f"sqlite:///{shared_store}"}
    run = Run.start(conf, str(tmp_path), "limits", "limits", {"run_date": D1})
    members = {"movies.csv": "movies"}  # keys may hold dots (unpack_archive)
    run.log_config({"model": {"name": "x" * 7000, "sizes": [1, 2]}, "empty": {}, "members": members})
    run.log_numbers({"a": {"ndcg@10": 0.5, "flag": True, "n": 3}, "spark": {"executors": 2}, "rows": [1, 2]})
    run.finish(True)
    got = mlflow_tracking.MlflowClient(conf["uri"]).get_run(run.run_id).data
    assert got.params == {
        "model.name": "x" * 6000,
        "model.sizes": "[1, 2]",
        "empty": "{}",
        "members.movies.csv": "movies",
    }
    assert got.metrics == {"a.ndcg_at_10": 0.5, "a.n": 3.0}
    assert not Run.start({**conf, "enabled": False}, str(tmp_path), "limits", "off", {})
