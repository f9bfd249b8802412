"""The plan of one run date: every step in dependency order, with whether it runs and why.

Staleness, not existence, decides. A step runs when forced, when one of its outputs is not committed for
the run date, when a step it depends on runs, or when its committed outputs are stale: their lineage
(``pipelines.lineage``) shows another package version, another resolved configuration, other declared
inputs, or an input that changed since the commit (another producing run's token for our own outputs;
other files, sizes or modification times for external ones), or the outputs carry different runs' tokens
(a commit cut short). Otherwise it is skipped. An undated output (a model) written by a run of a later
date is kept and not judged, so re-running an old date does not by itself replace a newer model. Every
path is read through the Hadoop FileSystem API, so ``hdfs://`` and ``s3a://`` roots plan like local ones.
Inputs that no step produces must exist.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines import __version__
from pipelines.fs import FS
from pipelines.lineage import lineage_of, read_metrics, why_stale
from pipelines.orchestration.definition import Pipeline, PipelineError, Step, expand
from pipelines.resources import PACKAGE_PARENT, checkout, locate


@dataclass
class PlannedStep:
    step: Step
    action: str  # run | skip
    reason: str


def shown(pipeline: Pipeline, path: str) -> str:
    """A path as messages show it: relative to the pipeline's root when inside it."""
    return path[len(pipeline.root) + 1 :] if path.startswith(pipeline.root + "/") else path


def missing_inputs(fs: FS, pipeline: Pipeline, step: Step, run_date: str) -> list[str]:
    """Inputs of ``step`` that no step produces and that do not exist."""
    return [
        path
        for template in step.inputs
        if not pipeline.producers(template)
        for path in [expand(template, run_date)]
        if not fs.exists(path)
    ]


def _plan_step(fs: FS, pipeline: Pipeline, step: Step, run_date: str, upstream: list[str]) -> tuple[str, str]:
    if not step.outputs:
        return "run", "no declared outputs"
    documents = []
    for output in step.outputs:
        path = output.committed(run_date)
        document = read_metrics(fs, path)
        if document is None:
            return "run", f"not committed: {shown(pipeline, path)}"
        written_for = document.get("run_date") or ""
        if not output.dated and written_for > run_date:
            continue
        if not output.dated and written_for < run_date:
            return "run", f"{shown(pipeline, path)} was written for {written_for or 'no date'}"
        documents.append(document)
    if upstream:
        return "run", f"upstream '{upstream[0]}' runs"
    if not documents:
        return "skip", "outputs kept: written by later dates' runs"
    if len({lineage_of(d).get("token") for d in documents}) > 1:
        return "run", "outputs committed by different runs (a commit cut short)"
    lineage = lineage_of(documents[0])
    stale = why_stale(
        fs, lineage, step.resolved_config(run_date), step.input_paths(run_date), lambda p: shown(pipeline, p)
    )
    if stale:
        return "run", stale
    return "skip", f"outputs current (committed {str(lineage.get('committed_at'))[:16]})"


def make_plan(pipeline: Pipeline, run_date: str, fs: FS, force: bool = False) -> list[PlannedStep]:
    planned: dict[str, PlannedStep] = {}
    for step in pipeline.steps.values():
        missing = missing_inputs(fs, pipeline, step, run_date)
        if missing:
            raise PipelineError(
                f"step '{step.name}': input {missing[0]} is not produced by any step and does not exist"
            )
        upstream = [d for d in step.depends_on if planned[d].action == "run"]
        action, reason = ("run", "forced") if force else _plan_step(fs, pipeline, step, run_date, upstream)
        planned[step.name] = PlannedStep(step, action, reason)
    return list(planned.values())


def pyfiles_zip() -> Path:
    """The ``--py-files`` zip: ``dist/`` of the checkout, or of the working directory for an installed package."""
    return (checkout() or Path.cwd()) / "dist" / f"spark_ml_pipelines-{__version__}.zip"


def entry_args(job: str) -> list[str]:
    """The application and leading arguments that run ``job`` under spark-submit: the checkout's
    ``jobs/<job>.py``, or the installed package's ``__main__.py`` with ``job <job>``."""
    root = checkout()
    if root is not None:
        return [str(root / "jobs" / f"{job}.py")]
    return [str(PACKAGE_PARENT / "pipelines" / "__main__.py"), "job", job]


def spark_submit_binary() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the one shipped in the pyspark package."""
    home = os.environ.get("SPARK_HOME")
    if home:
        return str(Path(home) / "bin" / "spark-submit")
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def step_command(pipeline: Pipeline, step: Step, run_date: str) -> list[str]:
    """The process that runs ``step`` in subprocess mode: ``python -m pipelines job <job> ...`` or ``spark-submit``."""
    spark = pipeline.spark
    if spark.get("submit", "python") == "python":
        conf_file = spark.get("conf_file")
        extra = ["--spark-conf", str(locate(conf_file))] if conf_file else []
        return [sys.executable, "-m", "pipelines", "job", step.job, *step.job_args(run_date), *extra]
    submit = [spark_submit_binary(), "--name", f"{pipeline.name}.{step.name}"]
    if spark.get("master"):
        submit += ["--master", str(spark["master"])]
    for key, value in (spark.get("conf") or {}).items():
        submit += ["--conf", f"{key}={value}"]
    return [
        *submit,
        *[str(a) for a in spark.get("args") or []],
        "--py-files",
        str(pyfiles_zip()),
        *entry_args(step.job),
        *step.job_args(run_date),
    ]


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
