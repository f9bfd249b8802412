"""Render a pipeline definition as an Airflow DAG: one ``SparkSubmitOperator`` per step.

Each task submits ``jobs/<job>.py`` with the same arguments the runner's subprocess mode uses, the run
date being Airflow's ``{{ ds }}``; edges are the pipeline's dependencies, and the schedule, start date
and retries come from the YAML. The schedule is a ``CronDataIntervalTimetable`` in UTC, so ``{{ ds }}`` is
the start of the data interval (yesterday for a daily run) in Airflow 2 and 3 alike (Airflow 3's default
for a cron string would make it the trigger date), matching the cron line. The Spark master comes from the
Airflow connection (``spark_default``); workers use the interpreter that rendered the DAG (the project's
virtualenv) unless ``--python`` says otherwise. The file imports only Airflow, and every value in it, the
docstring included, is a Python literal written with ``repr``: a name, path or setting is never read as code.
"""
from __future__ import annotations

import datetime as dt
import sys

from pipelines.orchestration.cron import cron_schedule
from pipelines.orchestration.definition import Pipeline
from pipelines.orchestration.plan import pyfiles_zip

AIRFLOW_DS = "{{ ds }}"


def _task(pipeline: Pipeline, name: str, conn_id: str, py_files: str, python: str) -> str:
    step = pipeline.steps[name]
    conf = {str(k): str(v) for k, v in (pipeline.spark.get("conf") or {}).items()}
    return "\n".join([
        f"    tasks[{name!r}] = SparkSubmitOperator(",
        f"        task_id={name!r},",
        f"        application={str(step.job_file)!r},",
        f"        application_args={step.job_args(AIRFLOW_DS)!r},",
        f"        py_files={py_files!r},",
        f"        name={f'{pipeline.name}.{name}'!r},",
        f"        conn_id={conn_id!r},",
        f"        conf={conf!r},",
        f"        env_vars={{'PYSPARK_PYTHON': {python!r}, 'PYSPARK_DRIVER_PYTHON': {python!r}}},",
        "    )",
    ])


def render_dag(pipeline: Pipeline, conn_id: str = "spark_default", py_files: str | None = None,
               command: str = "", python: str | None = None) -> str:
    """The Python source of the DAG (``python -m pipelines airflow conf/pipelines/<name>.yaml > dag.py``)."""
    start = dt.date.fromisoformat(pipeline.start_date)
    py_files = py_files or str(pyfiles_zip())
    edges = [f"    tasks[{dep!r}] >> tasks[{step.name!r}]"
             for step in pipeline.steps.values() for dep in step.depends_on]
    schedule = "None" if pipeline.schedule is None else \
        f"CronDataIntervalTimetable({cron_schedule(pipeline.schedule)!r}, timezone='UTC')"
    docstring = [f"Airflow DAG of pipeline {pipeline.name}, generated from {pipeline.source}.\n", "\n",
                 f"Regenerate rather than edit: {command or 'python -m pipelines airflow ' + str(pipeline.source)}\n",
                 f"Build the --py-files zip first: make pyfiles ({py_files}).\n"]
    return "\n".join([
        "(",  # the docstring, as literals like every other value: no text from the definition is read as code
        *[f"    {line!r}" for line in docstring],
        ")",
        "import datetime",
        "",
        "from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator",
        "from airflow.timetables.interval import CronDataIntervalTimetable",
        "",
        "try:",
        "    from airflow.sdk import DAG",
        "except ImportError:  # Airflow 2",
        "    from airflow import DAG",
        "",
        "with DAG(",
        f"    dag_id={pipeline.name!r},",
        f"    description={pipeline.description!r},",
        f"    schedule={schedule},",
        f"    start_date=datetime.datetime({start.year}, {start.month}, {start.day}, tzinfo=datetime.timezone.utc),",
        "    catchup=False,",
        "    max_active_runs=1,",
        f"    default_args={{'retries': {pipeline.retries!r}, "
        f"'retry_delay': datetime.timedelta(minutes={pipeline.retry_delay_minutes!r})}},",
        "    tags=['spark-ml-pipelines'],",
        ") as dag:",
        "    tasks = {}",
        *[_task(pipeline, name, conn_id, py_files, python or sys.executable) for name in pipeline.steps],
        *edges,
        "",
    ])
