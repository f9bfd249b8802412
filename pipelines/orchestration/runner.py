"""Run a pipeline for one or more run dates, step by step, in one SparkSession or as subprocesses.

Session mode calls each registered job's function through ``JobContext.run_step`` (the same machinery as the
demo), so outputs are staged and committed exactly as ``jobs/<job>.py`` commits them. Subprocess mode runs
``python -m pipelines job <job>`` or ``spark-submit ... jobs/<job>.py`` with the same arguments Airflow gets.
Steps whose committed outputs are current are skipped (``orchestration.plan`` says when they are stale;
``force`` redoes them); the first failure stops the run with the step's name and the reason, and running
the same command again resumes at that step. In subprocess mode the runner plans through a small local
session of its own (``local[1]``), since the plan reads the outputs through the Hadoop FileSystem API.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
import traceback
from typing import Any, TextIO

from pipelines.config import check_date
from pipelines.errors import UserError, describe_failure
from pipelines.fs import FS, file_system
from pipelines.lineage import read_metrics
from pipelines.orchestration.definition import Pipeline, Step
from pipelines.orchestration.manifest import Manifest
from pipelines.orchestration.plan import PlannedStep, make_plan, pyfiles_zip, step_command
from pipelines.packaging import ensure_pyfiles
from pipelines.resources import locate
from pipelines.tracking import Run, finish_pipeline, start_pipeline


class StepFailed(Exception):
    def __init__(self, step: str, reason: str):
        super().__init__(f"step '{step}' failed: {reason}")
        self.step, self.reason = step, reason


class Runner:
    """Runs the plan of each date; ``spark`` is reused in session mode (built on first use otherwise).

    Each date is an MLflow run (``pipelines.tracking``), a child of ``parent_run`` when given (the demo's job run).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        mode: str | None = None,
        force: bool = False,
        spark: Any = None,
        argv: list[str] | None = None,
        err: TextIO | None = None,
        parent_run: Run | None = None,
    ):
        self.pipeline = pipeline
        self.mode = mode or pipeline.mode
        self.force = force
        self.spark = spark
        self.argv = argv
        self.err = err or sys.stderr
        self.manifests: list[Manifest] = []
        self.parent_run = parent_run
        self.tracked = Run()
        self._fs: FS | None = None

    def session(self) -> Any:
        """The session of session-mode steps, or the planning session in subprocess mode (built once)."""
        if self.spark is None:
            from pipelines.session import get_spark

            conf_file = self.pipeline.spark.get("conf_file")
            overrides = dict(self.pipeline.spark.get("conf") or {})
            if self.mode == "subprocess":
                overrides.update({"spark.master": "local[1]", "spark.ui.enabled": "false"})
            self.spark = get_spark(
                f"pipeline-{self.pipeline.name}", locate(conf_file) if conf_file else None, overrides
            )
        return self.spark

    @property
    def fs(self) -> FS:
        if self._fs is None:
            self._fs = file_system(self.session())
        return self._fs

    def plan(self, run_date: str) -> list[PlannedStep]:
        return make_plan(self.pipeline, run_date, self.fs, self.force)

    def log(self, run_date: str, message: str) -> None:
        print(f"[{self.pipeline.name} {run_date} {time.strftime('%H:%M:%S')}] {message}", file=self.err, flush=True)

    def run(self, run_date: str) -> Manifest:
        """Run one date; raises ``StepFailed`` after recording the failure in the manifest."""
        run_date = check_date("run_date", run_date)
        plan = self.plan(run_date)
        manifest = Manifest(self.pipeline, run_date, self.mode, plan, self.fs, self.argv, self.force)
        self.manifests.append(manifest)
        self.tracked = start_pipeline(self.pipeline, run_date, self.mode, self.force, self.parent_run)
        manifest.data["tracking"] = self.tracked.describe()
        self.log(
            run_date,
            f"{sum(p.action == 'run' for p in plan)} of {len(plan)} steps to run, "
            f"mode {self.mode}; manifest {manifest.path}",
        )
        ran: set[str] = set()
        for i, planned in enumerate(plan, 1):
            step = planned.step
            label = f"{i}/{len(plan)} {step.name} ({step.job})"
            if planned.action == "skip" and not ran.intersection(step.depends_on):
                self.log(run_date, f"{label}: skipped, {planned.reason}")
                continue
            if planned.action == "skip":
                planned = PlannedStep(step, "run", "an upstream step ran")
                manifest.step(step.name)["reason"] = planned.reason
            self.log(run_date, f"{label}: running ({planned.reason})")
            error = self._run_step(planned, run_date, manifest)
            entry = manifest.finish_step(planned, run_date, error)
            if error:
                manifest.finish("failed")
                finish_pipeline(self.tracked, manifest, ok=False)
                self.log(run_date, f"{label}: FAILED after {entry['duration_s']:.1f}s: {error}")
                self.log(
                    run_date, f"re-run the same command to resume at step '{step.name}' (finished steps are skipped)"
                )
                raise StepFailed(step.name, error)
            ran.add(step.name)
            rows = ", ".join(
                f"{o['key'] or os.path.basename(o['path'])}={o['rows']:,}"
                for o in entry["outputs"]
                if o.get("rows") is not None
            )
            self.log(run_date, f"{label}: done in {entry['duration_s']:.1f}s" + (f" (rows {rows})" if rows else ""))
        manifest.finish("succeeded")
        finish_pipeline(self.tracked, manifest, ok=True)
        self.log(
            run_date, f"done in {manifest.data['duration_s']:.1f}s; {len(ran)} ran, {len(plan) - len(ran)} skipped"
        )
        return manifest

    def _run_step(self, planned: PlannedStep, run_date: str, manifest: Manifest) -> str | None:
        """Run one step; the reason it failed, or None."""
        step = planned.step
        config = step.resolved_config(run_date)
        command = step_command(self.pipeline, step, run_date) if self.mode == "subprocess" else None
        manifest.start_step(planned, run_date, config, command)
        error = self._in_session(step, config, run_date) if command is None else self._in_subprocess(command, step.name)
        if error is None:
            absent = [p for p in step.output_paths(run_date) if read_metrics(self.fs, p) is None]
            if absent:
                error = f"the job finished but did not commit declared output {absent[0]}"
        return error

    def _in_session(self, step: Step, config: dict[str, Any], run_date: str) -> str | None:
        from pipelines.job_runtime import JobContext

        parent = JobContext(f"{self.pipeline.name}:{step.name}", self.session(), {}, run_date)
        parent.tracking = self.tracked
        try:
            parent.run_step(step.job, config, step.input_paths(run_date), step.output_paths(run_date), step.name)
        except (UserError, FileNotFoundError) as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - any job failure stops the pipeline with its reason
            described = describe_failure(exc)
            if described is not None:
                return described
            traceback.print_exc(file=self.err)
            return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        return None

    def _in_subprocess(self, command: list[str], step: str) -> str | None:
        """Run a job process (its MLflow run a child of this date's), echo its output, and take the reason of a
        failure from its last lines."""
        if "--py-files" in command:
            ensure_pyfiles(pyfiles_zip())
        env = {
            **os.environ,
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
            **self.tracked.child_env(step),
        }
        tail: collections.deque[str] = collections.deque(maxlen=40)
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=os.getcwd(), bufsize=1
        ) as proc:
            for line in proc.stdout:
                self.err.write(f"    | {line}")
                tail.append(line.rstrip())
            code = proc.wait()
        if code == 0:
            return None
        errors = [t for t in tail if t.startswith("error:") or (t and not t.startswith(" ") and "Error" in t)]
        return (errors[-1] if errors else f"exit code {code}") + f" (exit code {code})"


def run_dates(runner: Runner, dates: list[str], retries: int = 0, retry_delay_s: float = 0.0) -> list[Manifest]:
    """Run each date in order (a backfill); a date is retried, resuming where it failed, ``retries`` times.

    Raises ``StepFailed`` for the first date that still fails; later dates are not started.
    """
    done = []
    for run_date in dates:
        for attempt in range(retries + 1):
            try:
                done.append(runner.run(run_date))
                break
            except StepFailed:
                if attempt == retries:
                    raise
                runner.log(run_date, f"retry {attempt + 1} of {retries} in {retry_delay_s:.0f}s")
                time.sleep(retry_delay_s)
    return done
