"""Render a pipeline definition as an Airflow DAG: one ``SparkSubmitOperator`` per step.

Each task submits ``<deploy root>/jobs/<job>.py`` with the same arguments the runner's subprocess mode uses,
the run date being Airflow's ``{{ ds }}``; edges are the pipeline's dependencies, and the schedule, start date
and retries come from the YAML. The deploy root is where the DAG's tasks find the entry files and the
``--py-files`` zip on the machine that submits them (default: this checkout); a packed environment
(``make dist``) travels to the executors as ``spark.archives`` with ``spark.pyspark.python`` pointing into it.
No path of the checkout that rendered the DAG is written into it unless that checkout is the deploy root.
The schedule is a ``CronDataIntervalTimetable`` in UTC, so ``{{ ds }}`` is the start of the data interval
(yesterday for a daily run) in Airflow 2 and 3 alike (Airflow 3's default for a cron string would make it the
trigger date), matching the cron line. The Spark master comes from the Airflow connection (``spark_default``).
The file imports only Airflow, and every value in it, the docstring included, is a Python literal written with
``repr``: a name, path or setting is never read as code.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.orchestration.cron import cron_schedule
from pipelines.orchestration.definition import Pipeline
from pipelines.orchestration.plan import pyfiles_zip
from pipelines.resources import checkout

AIRFLOW_DS = "{{ ds }}"
ENV_DIR = "environment"


@dataclass(frozen=True)
class Deployment:
    """Where a DAG's tasks find the code: the deploy root (``jobs/``, ``dist/``), the ``--py-files`` zip, a packed
    executor environment (optional) and the Python that runs drivers and executors (None: the cluster's)."""

    root: str
    py_files: str
    env_archive: str | None = None
    python: str | None = None

    @classmethod
    def make(
        cls,
        root: str | None = None,
        py_files: str | None = None,
        env_archive: str | None = None,
        python: str | None = None,
    ) -> "Deployment":
        """Defaults: this checkout as the root, its ``dist/`` zip and, with no root given, this interpreter."""
        here = checkout() or Path.cwd()
        base = (root or str(here)).rstrip("/")
        return cls(
            base,
            py_files or f"{base}/dist/{pyfiles_zip().name}",
            env_archive,
            python or (None if root or env_archive else sys.executable),
        )

    def path(self, local: str) -> str:
        """A path of this checkout as it is under the deploy root (others unchanged)."""
        here = checkout()
        if here is not None and Path(local).is_relative_to(here):
            return f"{self.root}/{Path(local).relative_to(here).as_posix()}"
        return local


def _task(pipeline: Pipeline, name: str, conn_id: str, deployment: Deployment) -> str:
    step = pipeline.steps[name]
    conf = {str(k): str(v) for k, v in (pipeline.spark.get("conf") or {}).items()}
    if deployment.env_archive:
        conf.update(
            {"spark.archives": f"{deployment.env_archive}#{ENV_DIR}", "spark.pyspark.python": f"./{ENV_DIR}/bin/python"}
        )
    env = {}
    if deployment.python:
        # With a packed environment the executors run its Python; the driver still runs the deployment's.
        env["PYSPARK_DRIVER_PYTHON"] = deployment.python
        if not deployment.env_archive:
            env["PYSPARK_PYTHON"] = deployment.python
    args = [deployment.path(a) for a in step.job_args(AIRFLOW_DS)]
    return "\n".join(
        [
            f"    tasks[{name!r}] = SparkSubmitOperator(",
            f"        task_id={name!r},",
            f"        application={f'{deployment.root}/jobs/{step.job}.py'!r},",
            f"        application_args={args!r},",
            f"        py_files={deployment.py_files!r},",
            f"        name={f'{pipeline.name}.{name}'!r},",
            f"        conn_id={conn_id!r},",
            f"        conf={conf!r},",
            f"        env_vars={env!r},",
            "    )",
        ]
    )


def render_dag(
    pipeline: Pipeline, conn_id: str = "spark_default", deployment: Deployment | None = None, command: str = ""
) -> str:
    """The Python source of the DAG (``spark-ml-pipelines airflow <pipeline> --deploy-root DIR > dag.py``)."""
    deployment = deployment or Deployment.make()
    start = dt.date.fromisoformat(pipeline.start_date)
    edges = [
        f"    tasks[{dep!r}] >> tasks[{step.name!r}]" for step in pipeline.steps.values() for dep in step.depends_on
    ]
    schedule = (
        "None"
        if pipeline.schedule is None
        else f"CronDataIntervalTimetable({cron_schedule(pipeline.schedule)!r}, timezone='UTC')"
    )
    source = deployment.path(str(pipeline.source))
    docstring = [
        f"Airflow DAG of pipeline {pipeline.name}, generated from {source}.\n",
        "\n",
        f"Regenerate rather than edit: {command or 'spark-ml-pipelines airflow ' + pipeline.name}\n",
        f"Deploy first: jobs/ and dist/ of `make dist` under {deployment.root} ({deployment.py_files}).\n",
    ]
    return "\n".join(
        [
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
            f"    start_date=datetime.datetime({start.year}, {start.month}, {start.day}, "
            "tzinfo=datetime.timezone.utc),",
            "    catchup=False,",
            "    max_active_runs=1,",
            f"    default_args={{'retries': {pipeline.retries!r}, "
            f"'retry_delay': datetime.timedelta(minutes={pipeline.retry_delay_minutes!r})}},",
            "    tags=['spark-ml-pipelines'],",
            ") as dag:",
            "    tasks = {}",
            *[_task(pipeline, name, conn_id, deployment) for name in pipeline.steps],
            *edges,
            "",
        ]
    )
