"""Load a folder of DAG files with Airflow's own ``DagBag`` and print what ``test_runner_airflow.py`` checks.

Runs under the Airflow environment's interpreter (``.venv-airflow/bin/python``), not the project's: it imports
only Airflow and the standard library. Prints one JSON document: the Airflow version, the DagBag's import
errors, and per DAG its schedule, start date, tasks (operator, upstream ids, retries, the SparkSubmitOperator
fields, the ``application_args`` rendered for the first scheduled run's ``ds``) and whether it survives the
serialisation the scheduler stores. The document goes to a file (Airflow logs to stdout).

    .venv-airflow/bin/python tests/airflow_probe.py DAGS_FOLDER OUT.json
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any


def load_dagbag(folder: str) -> Any:
    """``DagBag`` of ``folder`` without Airflow's example DAGs (Airflow 3, or 2's import path)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    kwargs: dict[str, Any] = {"dag_folder": folder}
    if "include_examples" in inspect.signature(DagBag.__init__).parameters:
        kwargs["include_examples"] = False
    return DagBag(**kwargs)


def first_run(dag: Any) -> dict[str, Any]:
    """The first scheduled run from the start date: when it runs, its data interval and its ``ds``."""
    from airflow.timetables.base import TimeRestriction

    try:
        info = dag.timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
        )
    except Exception as exc:  # noqa: BLE001 - reported, the test fails on it
        return {"error": f"{type(exc).__name__}: {exc}"}
    if info is None:
        return {}
    logical = getattr(info, "logical_date", None) or info.data_interval.start
    return {
        "run_after": info.run_after.isoformat(),
        "data_interval_start": info.data_interval.start.isoformat(),
        "data_interval_end": info.data_interval.end.isoformat(),
        "ds": logical.strftime("%Y-%m-%d"),
    }


def serialised(dag: Any) -> dict[str, Any]:
    """Round trip through the scheduler's DAG serialisation: the task ids it gives back, or the error."""
    from airflow.serialization import serialized_objects as so

    serializer = getattr(so, "DagSerialization", None) or so.SerializedDAG
    try:
        back = serializer.from_dict(json.loads(json.dumps(serializer.to_dict(dag))))
    except Exception as exc:  # noqa: BLE001 - reported, the test fails on it
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"task_ids": sorted(back.task_ids)}


def describe_task(task: Any, ds: str | None) -> dict[str, Any]:
    """Operator class, upstream ids, retries and the SparkSubmitOperator fields of one task."""
    record = {
        "operator": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "retries": task.retries,
        "retry_delay_s": task.retry_delay.total_seconds(),
    }
    for field in ("application", "application_args", "conn_id", "py_files", "name", "env_vars", "conf"):
        record[field] = getattr(task, field, None) if field != "conn_id" else getattr(task, "_conn_id", None)
    if ds is not None:
        record["rendered_args"] = task.render_template(task.application_args, {"ds": ds})
    return record


def describe_dag(dag: Any) -> dict[str, Any]:
    """Schedule, start date, run limits, first run, serialisation and tasks of one DAG."""
    timetable = dag.timetable
    run = first_run(dag)
    return {
        "fileloc": dag.fileloc,
        "description": dag.description,
        "timetable": {
            "class": type(timetable).__name__,
            "summary": timetable.summary,
            "serialized": timetable.serialize(),
        },
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "first_run": run,
        "serialisation": serialised(dag),
        "tasks": {t.task_id: describe_task(t, run.get("ds")) for t in dag.tasks},
    }


def main(folder: str, out: str) -> None:
    """Write the JSON description of every DAG in ``folder`` to ``out``."""
    import airflow

    bag = load_dagbag(folder)
    document = {
        "airflow_version": airflow.__version__,
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": {dag_id: describe_dag(dag) for dag_id, dag in bag.dags.items()},
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(document, f, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
