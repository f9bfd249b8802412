"""The plan of one run date: every step in dependency order, with whether it runs and why.

A step is skipped when each of its outputs is committed for the run date (``_SUCCESS`` in the dated
partition; for an undated output such as a model, ``_SUCCESS`` and a ``_metrics.json`` written by a run of
that date or a later one, so re-running an old date does not replace a newer model). It runs when forced,
when an output is missing, or when a step it depends on runs (its inputs change). Inputs that no step
produces must exist.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pipelines import __version__
from pipelines.orchestration.definition import ROOT, Output, Pipeline, PipelineError, Step, expand
from pipelines.output import METRICS_FILE, SUCCESS_MARKER


@dataclass
class PlannedStep:
    step: Step
    action: str        # run | skip
    reason: str


def local_path(path: str) -> str | None:
    """The local file system path of ``path``, or None for other file systems (not inspected here)."""
    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else path
    return None


def read_metrics(path: str) -> dict | None:
    """The ``_metrics.json`` of a committed output directory, or None."""
    local = local_path(path)
    try:
        with open(os.path.join(local, METRICS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (TypeError, OSError, ValueError):
        return None


def is_committed(output: Output, run_date: str) -> bool:
    local = local_path(output.committed(run_date))
    if local is None or not os.path.isfile(os.path.join(local, SUCCESS_MARKER)):
        return False
    if output.dated:
        return True
    written_for = (read_metrics(local) or {}).get("run_date") or ""
    return written_for >= run_date


def missing_inputs(pipeline: Pipeline, step: Step, run_date: str) -> list[str]:
    """Inputs of ``step`` that no step produces and that do not exist (local paths only)."""
    missing = []
    for template in step.inputs:
        if pipeline.producers(template):
            continue
        local = local_path(expand(template, run_date))
        if local is not None and not os.path.exists(local):
            missing.append(local)
    return missing


def make_plan(pipeline: Pipeline, run_date: str, force: bool = False) -> list[PlannedStep]:
    planned: dict[str, PlannedStep] = {}
    for step in pipeline.steps.values():
        missing = missing_inputs(pipeline, step, run_date)
        if missing:
            raise PipelineError(f"step '{step.name}': input {missing[0]} is not produced by any step "
                                f"and does not exist")
        upstream = [d for d in step.depends_on if planned[d].action == "run"]
        absent = [o.committed(run_date) for o in step.outputs if not is_committed(o, run_date)]
        if force:
            action, reason = "run", "forced"
        elif not step.outputs:
            action, reason = "run", "no declared outputs"
        elif absent:
            more = f" (+{len(absent) - 1})" if len(absent) > 1 else ""
            action, reason = "run", f"not committed: {absent[0]}{more}"
        elif upstream:
            action, reason = "run", f"upstream '{upstream[0]}' runs"
        else:
            action, reason = "skip", "outputs committed"
        planned[step.name] = PlannedStep(step, action, reason)
    return list(planned.values())


def pyfiles_zip() -> Path:
    return ROOT / "dist" / f"spark_ml_pipelines-{__version__}.zip"


def spark_submit_binary() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the one shipped in the pyspark package."""
    home = os.environ.get("SPARK_HOME")
    if home:
        return str(Path(home) / "bin" / "spark-submit")
    import pyspark
    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def step_command(pipeline: Pipeline, step: Step, run_date: str) -> list[str]:
    """The process that runs ``step`` in subprocess mode: ``python jobs/<job>.py ...`` or ``spark-submit``."""
    spark = pipeline.spark
    if spark.get("submit", "python") == "python":
        conf_file = spark.get("conf_file")
        extra = ["--spark-conf", str(ROOT / conf_file) if not os.path.isabs(conf_file) else conf_file] \
            if conf_file else []
        return [sys.executable, str(step.job_file), *step.job_args(run_date), *extra]
    submit = [spark_submit_binary(), "--name", f"{pipeline.name}.{step.name}"]
    if spark.get("master"):
        submit += ["--master", str(spark["master"])]
    for key, value in (spark.get("conf") or {}).items():
        submit += ["--conf", f"{key}={value}"]
    return [*submit, *[str(a) for a in spark.get("args") or []], "--py-files", str(pyfiles_zip()),
            str(step.job_file), *step.job_args(run_date)]


def date_range(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if last < first:
        raise PipelineError(f"--to {end} is before --from {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def render_plan(pipeline: Pipeline, run_date: str, plan: list[PlannedStep], mode: str) -> str:
    """The ``--dry-run`` text: steps in order, run or skip and why, inputs, outputs and the command."""
    lines = [f"pipeline {pipeline.name} ({pipeline.source}), run date {run_date}, mode {mode}, root {pipeline.root}"]
    width = max(len(p.step.name) for p in plan)
    for i, p in enumerate(plan, 1):
        step = p.step
        after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
        lines.append(f"{i:3d}. {step.name:<{width}}  {p.action.upper():<4}  {p.reason}  [job {step.job}{after}]")
        lines += [f"       in:  {path}" for path in step.input_paths(run_date)]
        lines += [f"       out: {path}" for path in step.output_paths(run_date)]
        lines.append(f"       cmd: {shlex.join(step_command(pipeline, step, run_date))}")
    runs = sum(p.action == "run" for p in plan)
    lines.append(f"{runs} of {len(plan)} steps would run")
    return "\n".join(lines)
