"""The Airflow DAG of every pipeline in conf/pipelines/, loaded by Airflow's real ``DagBag`` (issue 8).

Airflow lives in its own virtualenv (``.venv-airflow``, made by ``scripts/airflow_env.sh``; ``make test-airflow``
makes it and runs this file), so the DAGs are generated here, with ``python -m pipelines airflow``, into a
temporary DAG folder and loaded by ``tests/airflow_probe.py`` under that environment's interpreter, with a
temporary ``AIRFLOW_HOME`` (a DagBag needs no metadata database). Skips, saying why, when the environment is
absent or its installation failed (e.g. no package index reachable).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.orchestration.airflow import AIRFLOW_DS
from pipelines.orchestration.command import main
from pipelines.orchestration.cron import cron_schedule
from pipelines.orchestration.definition import Pipeline, load_pipeline
from pipelines.orchestration.plan import pyfiles_zip

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = sorted((ROOT / "conf" / "pipelines").glob("*.yaml"))
AIRFLOW_VENV = Path(os.environ.get("AIRFLOW_VENV", ROOT / ".venv-airflow"))
FAILED_MARK = ".install-failed"  # written by scripts/airflow_env.sh with the reason


def airflow_python() -> Path:
    """The Airflow environment's interpreter; skips the test when the environment is not (fully) installed."""
    python = AIRFLOW_VENV / "bin" / "python"
    if python.is_file() and any(AIRFLOW_VENV.glob(".installed-*")):
        return python
    failed = AIRFLOW_VENV / FAILED_MARK
    why = f"its installation failed: {failed.read_text().strip()}" if failed.is_file() else "it is not installed"
    pytest.skip(
        f"no Airflow environment at {AIRFLOW_VENV} ({why}); `make test-airflow` or `scripts/airflow_env.sh` creates it"
    )


def pipeline_root(tmp: Path, definition: Path) -> str:
    return str(tmp / "roots" / definition.stem)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    """Every pipeline's DAG generated into one folder and described by Airflow's DagBag (airflow_probe.py)."""
    python = airflow_python()
    tmp = tmp_path_factory.mktemp("airflow")
    dags = tmp / "dags"
    dags.mkdir()
    for definition in DEFINITIONS:
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            code = main(["airflow", str(definition), "--root", pipeline_root(tmp, definition)])
        assert code == 0, f"python -m pipelines airflow {definition} failed"
        (dags / f"{definition.stem}.py").write_text(text.getvalue())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(tmp / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    out = tmp / "dagbag.json"
    proc = subprocess.run(
        [str(python), str(ROOT / "tests" / "airflow_probe.py"), str(dags), str(out)],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return {"tmp": tmp, **json.loads(out.read_text())}


def test_dagbag_loads_every_pipeline_without_import_errors(dagbag):
    assert dagbag["import_errors"] == {}
    assert sorted(dagbag["dags"]) == sorted(load_pipeline(d).name for d in DEFINITIONS)
    assert {Path(d["fileloc"]).stem for d in dagbag["dags"].values()} == {d.stem for d in DEFINITIONS}


@pytest.fixture(params=DEFINITIONS, ids=[d.stem for d in DEFINITIONS])
def dag_and_pipeline(request, dagbag) -> tuple[dict, Pipeline]:
    pipeline = load_pipeline(request.param, pipeline_root(dagbag["tmp"], request.param))
    return dagbag["dags"][pipeline.name], pipeline


def test_tasks_are_the_steps_and_edges_the_dependencies(dag_and_pipeline):
    dag, pipeline = dag_and_pipeline
    assert set(dag["tasks"]) == set(pipeline.steps)
    edges = {(up, name) for name, task in dag["tasks"].items() for up in task["upstream"]}
    assert edges == {(dep, step.name) for step in pipeline.steps.values() for dep in step.depends_on}
    assert dag["serialisation"] == {"task_ids": sorted(pipeline.steps)}


def test_schedule_start_retries_and_run_limits(dag_and_pipeline):
    dag, pipeline = dag_and_pipeline
    if pipeline.schedule is None:
        assert dag["timetable"]["class"] == "NullTimetable"
    else:
        assert dag["timetable"]["class"] == "CronDataIntervalTimetable"
        assert dag["timetable"]["serialized"] == {"expression": cron_schedule(pipeline.schedule), "timezone": "UTC"}
    assert dag["start_date"] == f"{pipeline.start_date}T00:00:00+00:00"
    assert dag["catchup"] is False and dag["max_active_runs"] == 1
    for task in dag["tasks"].values():
        assert task["retries"] == pipeline.retries
        assert task["retry_delay_s"] == pytest.approx(pipeline.retry_delay_minutes * 60)


def test_each_task_submits_its_job_with_the_run_date_from_ds(dag_and_pipeline):
    """``{{ ds }}`` reaches ``--run-date`` (and every path holding the date): rendered for the first scheduled
    run, the arguments are exactly the runner's for that date, and that date is the day before the run, as
    in the cron line."""
    dag, pipeline = dag_and_pipeline
    run = dag["first_run"]
    if pipeline.schedule is not None:
        assert "error" not in run, run
        assert run["ds"] == run["data_interval_start"][:10]
        if cron_schedule(pipeline.schedule).split()[2:] == ["*", "*", "*"]:  # daily: ds is yesterday
            run_after = dt.datetime.fromisoformat(run["run_after"])
            assert run["ds"] == (run_after - dt.timedelta(days=1)).date().isoformat()
    for name, task in dag["tasks"].items():
        step = pipeline.steps[name]
        assert task["operator"] == "SparkSubmitOperator"
        assert task["application"] == str(ROOT / "jobs" / f"{step.job}.py")
        args = task["application_args"]
        assert args == step.job_args(AIRFLOW_DS)
        assert args[args.index("--run-date") + 1] == "{{ ds }}"
        if run.get("ds"):
            assert task["rendered_args"] == step.job_args(run["ds"])
        assert task["conn_id"] == "spark_default" and task["py_files"] == str(pyfiles_zip())
        assert task["conf"] == {str(k): str(v) for k, v in (pipeline.spark.get("conf") or {}).items()}
        assert task["name"] == f"{pipeline.name}.{name}"
        assert task["env_vars"] == {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
