"""The crontab line that runs a pipeline with the plain runner on the definition's schedule.

The run date is yesterday (UTC), which is what Airflow's ``{{ ds }}`` is for a daily schedule: the run at
03:00 on the 21st processes the 20th. ``flock`` keeps one run at a time (Airflow's ``max_active_runs=1``),
``--retries`` repeats a failed date, resuming at the failed step, as Airflow's task retries would. Every
value in the command is shell-quoted and every ``%`` escaped (cron would end the command there), and the
schedule is checked field by field, so nothing from the definition can add a command or a crontab line.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from pipelines.orchestration.definition import Pipeline, PipelineError
from pipelines.resources import checkout

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?#-]+")


def cron_schedule(schedule: str | None) -> str:
    """A 5-field cron expression (presets such as ``@daily`` expanded)."""
    if schedule is None:
        raise PipelineError("the pipeline has no schedule (schedule: null); nothing to schedule")
    if schedule in PRESETS:
        return PRESETS[schedule]
    fields = str(schedule).split()
    if len(fields) == 5 and all(_CRON_FIELD.fullmatch(f) for f in fields):
        return " ".join(fields)
    raise PipelineError(f"schedule {schedule!r} is not a 5-field cron expression or one of {sorted(PRESETS)}")


def cron_line(pipeline: Pipeline, python: str | None = None, root_override: str | None = None) -> str:
    """A comment and the crontab entry: quoted for the shell, then ``%`` escaped as crontab requires."""
    python = python or sys.executable
    run = [python, "-m", "pipelines", "run", str(pipeline.source)]
    if root_override:
        run += ["--root", root_override]
    run += ["--retries", str(pipeline.retries), "--retry-delay", f"{pipeline.retry_delay_minutes * 60:g}"]
    lock = f"/tmp/pipelines-{pipeline.name}.lock"
    log = f"{pipeline.runs_dir}/cron.log"
    workdir = checkout() or Path.cwd()  # where relative roots and conf paths of the definition resolve
    command = (
        f"cd {shlex.quote(str(workdir))} && mkdir -p {shlex.quote(pipeline.runs_dir)} && "
        f'flock -n {shlex.quote(lock)} {shlex.join(run)} --run-date "$(date -u -d yesterday +%F)" '
        f">> {shlex.quote(log)} 2>&1"
    ).replace("%", "\\%")
    schedule = cron_schedule(pipeline.schedule)
    return (
        f"# {pipeline.name}: {schedule} in cron's time zone (Airflow's is UTC); run date = yesterday "
        f"(UTC), as Airflow's {{{{ ds }}}} (the data interval's start)\n"
        f"{schedule} {command}"
    )
