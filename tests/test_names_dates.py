"""Names and dates are checked where they enter (issue 15, item 5).

Pipeline and step names are Airflow ids; the generated DAG holds every value as a Python literal, so quotes,
``\"\"\"``, backslashes and newlines in a description, a path or a setting stay data; the cron line quotes every
word for the shell; the demo's ``run_date`` is a date. Nothing here needs Spark except the demo job run.
"""

from __future__ import annotations

import ast
import copy
import shlex
import sys
import types
from pathlib import Path

import pytest
import yaml

from pipelines.job_runtime import run_job
from pipelines.orchestration.airflow import AIRFLOW_DS, Deployment, render_dag
from pipelines.orchestration.cron import cron_line
from pipelines.orchestration.definition import PipelineError, build_pipeline
from pipelines.orchestration.plan import pyfiles_zip

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "conf" / "pipelines" / "clicks_demo.yaml"
NASTY = 'say "hi" \'there\' """ back\\slash \\" \n next line """'
PAYLOAD = '\n"""\nopen("PWNED", "w").close()\n"""\n'  # ends a docstring pasted raw, then writes a file


def definition(**changes) -> dict:
    data = yaml.safe_load(DEMO.read_text())
    data.update(changes)
    return data


@pytest.mark.parametrize("name", ['a"""b', "has space", "x" * 251, "naïve"])
def test_pipeline_name_must_be_an_airflow_id(name):
    with pytest.raises(PipelineError) as err:
        build_pipeline(definition(name=name), DEMO, "/tmp/root")
    assert str(err.value) == (
        f"The pipeline 'name' in {DEMO} must contain only letters, digits, '_', '-' and '.' "
        f"(at most 250). Got {name!r} instead."
    )


@pytest.mark.parametrize("name", ['a"""b', "has space"])
def test_step_name_must_be_an_airflow_id(name):
    data = definition()
    data["steps"] = {name if key == "train" else key: step for key, step in data["steps"].items()}
    with pytest.raises(PipelineError, match="The step name in .* must contain only letters, digits") as err:
        build_pipeline(data, DEMO, "/tmp/root")
    assert str(err.value).endswith(f"Got {name!r} instead.")


def test_valid_names_and_start_date_pass_and_the_date_is_normalised():
    pipeline = build_pipeline(definition(name="clicks-demo.v2_1", start_date="20261101"), DEMO, "/tmp/root")
    assert pipeline.name == "clicks-demo.v2_1" and pipeline.start_date == "2026-11-01"
    with pytest.raises(PipelineError, match=r"start_date: expected a date YYYY-MM-DD, got '2026-02-30'"):
        build_pipeline(definition(start_date="2026-02-30"), DEMO, "/tmp/root")


def airflow_stubs(monkeypatch) -> dict:
    """Just enough of Airflow for the DAG file to run: the DAG and each operator record their arguments."""
    seen: dict = {"tasks": {}, "edges": []}

    class DAG:
        def __init__(self, **kwargs):
            seen["dag"] = kwargs

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class SparkSubmitOperator:
        def __init__(self, **kwargs):
            seen["tasks"][kwargs["task_id"]] = kwargs

        def __rshift__(self, other):
            seen["edges"].append((self, other))

    class CronDataIntervalTimetable:
        def __init__(self, expression, timezone):
            seen["timetable"] = (expression, timezone)

    members = {
        "airflow": {"DAG": DAG},
        "airflow.sdk": {"DAG": DAG},
        "airflow.providers.apache.spark.operators.spark_submit": {"SparkSubmitOperator": SparkSubmitOperator},
        "airflow.timetables.interval": {"CronDataIntervalTimetable": CronDataIntervalTimetable},
    }
    for name in (
        "airflow.providers",
        "airflow.providers.apache",
        "airflow.providers.apache.spark",
        "airflow.providers.apache.spark.operators",
        "airflow.timetables",
        *members,
    ):
        module = types.ModuleType(name)
        for key, value in members.get(name, {}).items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)
    return seen


def test_dag_holds_quotes_backslashes_and_newlines_as_data(tmp_path, monkeypatch):
    data = definition(description=NASTY + PAYLOAD)
    data["steps"]["evaluate"]["set"]["output.path"] = "{root}/eval " + NASTY
    root = str(tmp_path / f"root {NASTY}")
    pipeline = build_pipeline(copy.deepcopy(data), DEMO, root)
    py_files, python, command = f"/zips/{NASTY}.zip" + PAYLOAD, f"/venv {NASTY}/python", "regen " + NASTY + PAYLOAD
    deployment = Deployment.make(f"/srv/{NASTY}", py_files, python=python)
    source = render_dag(pipeline, deployment=deployment, command=command)

    code = compile(source, "dag.py", "exec")
    tree = ast.parse(source)
    assert [type(node).__name__ for node in tree.body] == ["Expr", "Import", "ImportFrom", "ImportFrom", "Try", "With"]
    assert ast.get_docstring(tree, clean=False) == (
        f"Airflow DAG of pipeline clicks_demo, generated from /srv/{NASTY}/conf/pipelines/clicks_demo.yaml.\n\n"
        f"Regenerate rather than edit: {command}\n"
        f"Deploy first: jobs/ and dist/ of `make dist` under /srv/{NASTY} ({py_files}).\n"
    )

    seen = airflow_stubs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    exec(code, {"__name__": "dag"})  # noqa: S102 - the point: running the generated file runs nothing of ours
    assert not (tmp_path / "PWNED").exists()
    assert seen["dag"]["description"] == NASTY + PAYLOAD and seen["dag"]["dag_id"] == "clicks_demo"
    assert seen["timetable"] == ("0 3 * * *", "UTC")
    assert set(seen["tasks"]) == set(pipeline.steps) and len(seen["edges"]) == 3
    for name, task in seen["tasks"].items():
        assert task["application_args"] == pipeline.steps[name].job_args(AIRFLOW_DS)
        assert task["py_files"] == py_files and task["name"] == f"clicks_demo.{name}"
        assert task["env_vars"] == {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}
    args = seen["tasks"]["evaluate"]["application_args"]
    assert f"output.path={root}/eval {NASTY}" in args


def test_dag_for_another_deploy_root_holds_no_path_of_this_checkout(tmp_path, monkeypatch):
    """Rendered for a deploy root and a packed environment on HDFS, the DAG names only the deploy root's files,
    the pipeline's root and the archive: a step's configuration file inside this checkout moves with it."""
    conf = ROOT / "conf" / "jobs" / "evaluate.yaml"
    data = definition()
    data["steps"]["evaluate"]["conf"] = str(conf)
    pipeline = build_pipeline(data, DEMO, "hdfs:///warehouse/clicks")
    deployment = Deployment.make("/opt/spark-ml", env_archive="hdfs:///envs/env.tar.gz")
    source = render_dag(pipeline, deployment=deployment)
    assert str(ROOT) not in source and sys.executable not in source
    seen = airflow_stubs(monkeypatch)
    exec(compile(source, "dag.py", "exec"), {"__name__": "dag"})  # noqa: S102
    for name, task in seen["tasks"].items():
        step = pipeline.steps[name]
        assert task["application"] == f"/opt/spark-ml/jobs/{step.job}.py"
        assert task["py_files"] == f"/opt/spark-ml/dist/{pyfiles_zip().name}"
        assert task["conf"] == {
            "spark.archives": "hdfs:///envs/env.tar.gz#environment",
            "spark.pyspark.python": "./environment/bin/python",
        }
        assert task["env_vars"] == {}
        expected = [a.replace(str(conf), "/opt/spark-ml/conf/jobs/evaluate.yaml") for a in step.job_args(AIRFLOW_DS)]
        assert task["application_args"] == expected
    assert "/opt/spark-ml/conf/jobs/evaluate.yaml" in seen["tasks"]["evaluate"]["application_args"]


def test_cron_line_splits_back_into_the_intended_words(tmp_path):
    root = str(tmp_path / "my root's dir %d")
    pipeline = build_pipeline(definition(), DEMO, root)
    python = "/opt/my venv/bin/python"
    comment, line = cron_line(pipeline, python=python, root_override=root).splitlines()
    assert comment.startswith("# clicks_demo: 0 3 * * * in cron's time zone")
    fields = line.split(" ", 5)
    assert fields[:5] == ["0", "3", "*", "*", "*"]
    command = fields[5].replace("\\%", "%")  # what cron hands to the shell
    assert shlex.split(command) == [
        "cd",
        str(ROOT),
        "&&",
        "mkdir",
        "-p",
        f"{root}/_runs",
        "&&",
        "flock",
        "-n",
        "/tmp/pipelines-clicks_demo.lock",
        python,
        "-m",
        "pipelines",
        "run",
        str(DEMO),
        "--root",
        root,
        "--retries",
        "1",
        "--retry-delay",
        "300",
        "--run-date",
        "$(date -u -d yesterday +%F)",
        ">>",
        f"{root}/_runs/cron.log",
        "2>&1",
    ]
    assert "%" not in line.replace("\\%", "")  # an unescaped % would end cron's command there


@pytest.mark.parametrize("schedule", ["0 3 * * $(touch x)", "0 3 * *\n* echo", "0 3 * * ;"])
def test_cron_schedule_fields_are_checked(schedule):
    with pytest.raises(PipelineError, match="is not a 5-field cron expression"):
        cron_line(build_pipeline(definition(schedule=schedule), DEMO, "/tmp/root"))


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "2026-11-20; rm -rf /"])
def test_demo_refuses_a_run_date_that_is_not_a_date(spark, tmp_path, capsys, bad):
    code = run_job("demo", ["--set", f"run_date={bad}", "--set", f"output.path={tmp_path / 'demo'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"error: run_date: expected a date YYYY-MM-DD, got {bad!r}"]
    assert not (tmp_path / "demo").exists()
