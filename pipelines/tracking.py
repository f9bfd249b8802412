"""MLflow tracking of job and pipeline runs, on the driver only (executors never import it).

Every job run (``job_runtime.run_job``, ``JobContext.run_step``) is one MLflow run: its resolved configuration as
parameters (dotted keys, values cut to MLflow's limit; the whole of it as ``config.yaml``), the numbers of its
``_metrics.json`` as metrics (``@`` in a name becomes ``_at_``: ``ndcg@10`` is ``ndcg_at_10``), the PNGs of its
committed outputs as artifacts under ``plots/<output>/``, and tags for the run date, the git revision (in a git
checkout) and the package version. A pipeline run is a parent run (its manifest and, once written, its report as
artifacts) with one child run per step that ran: a session-mode step's run is created under it in this process, a
subprocess step (``python`` or ``spark-submit``) finds the parent's id and store in ``MLFLOW_PARENT_RUN_ID`` and
``MLFLOW_TRACKING_URI``.

Settings are ``conf/tracking.yaml`` (a pipeline definition's ``tracking:`` block over it). The default store is
SQLite under the output root, so nothing needs a server; ``PIPELINES_TRACKING=off`` turns tracking off. Tracking
never fails a job: the first error of a run (store unreachable, mlflow not installed) prints one warning line and
the rest of that run goes untracked. mlflow is imported only when a run starts, so jobs with tracking off do not
pay for its import.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from pipelines import __version__
from pipelines.config import dump_config, leaves, merge, read_yaml
from pipelines.fs import local_file, qualify
from pipelines.resources import CONF

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext
    from pipelines.orchestration.definition import Pipeline
    from pipelines.output import StagedOutput

SETTINGS = CONF / "tracking.yaml"
SWITCH_ENV = "PIPELINES_TRACKING"  # off, 0, false or no: no run is tracked
URI_ENV = "MLFLOW_TRACKING_URI"
PARENT_ENV = "MLFLOW_PARENT_RUN_ID"  # set by the runner for a subprocess step: its run is a child of this one
STEP_ENV = "PIPELINES_STEP_NAME"  # the step's name, the child run's name
JOB_ROOT = "output"  # where the jobs' default outputs live (conf/jobs/*.yaml)
STORE_FILE, ARTIFACTS_DIR = "mlruns.db", "mlartifacts"
_OFF = {"off", "0", "false", "no"}
_NOT_METRICS = {"spark", "lineage"}  # settings and fingerprints: recorded in _metrics.json, not figures
_BAD_NAME = re.compile(r"[^/\w.\- :]")  # what MLflow refuses in a param or metric name
_QUIET = ("alembic", "mlflow.store.db.utils", "urllib3.connectionpool")  # set-up and retry chatter
MAX_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH


def settings(block: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``conf/tracking.yaml`` with ``block`` (a pipeline definition's ``tracking:``) over it, checked key by key."""
    return merge(read_yaml(SETTINGS), block or {}, prefix="tracking.")


def switched_off() -> bool:
    return os.environ.get(SWITCH_ENV, "").strip().lower() in _OFF


def mlflow_name(name: str) -> str:
    """A param or metric name MLflow accepts: ``@`` as ``_at_``, other refused characters as ``_``."""
    return _BAD_NAME.sub("_", name.replace("@", "_at_"))[:MAX_KEY]


def flat_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Every leaf of a resolved configuration by dotted key; non-strings as JSON."""
    return {
        mlflow_name(dotted): value if isinstance(value, str) else json.dumps(value, default=str)
        for dotted, value in leaves(config)
    }


def flat_numbers(document: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers (not booleans) of a metrics document by dotted key; lists and Spark details are left out."""
    numbers: dict[str, float] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in _NOT_METRICS:
            numbers.update(flat_numbers(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[mlflow_name(name)] = float(value)
    return numbers


@functools.lru_cache(maxsize=1)
def run_tags() -> dict[str, str]:
    """Package version and, in a git checkout, the revision (also as MLflow's own source tag)."""
    from pipelines.orchestration.manifest import git_revision

    tags = {"package_version": __version__}
    git = git_revision()
    if git:
        tags.update(
            {
                "git_revision": git["revision"],
                "git_dirty": str(git["dirty"]).lower(),
                "mlflow.source.git.commit": git["revision"],
            }
        )
    return tags


def warn_untracked(what: str, exc: BaseException) -> None:
    cause = " ".join(str(exc).split())[:300] or type(exc).__name__
    print(
        f"warning: MLflow tracking of {what} stopped ({type(exc).__name__}: {cause}); the run goes on untracked",
        file=sys.stderr,
        flush=True,
    )


def open_client(uri: str, conf: Mapping[str, Any]) -> Any:
    """An MlflowClient of ``uri`` (imports mlflow); a server that is down costs ``http_retries`` retries."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(conf["http_retries"]))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(conf["http_timeout_s"]))
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def store(conf: Mapping[str, Any], root: str) -> tuple[str, str | None]:
    """The tracking URI (``tracking.uri``, ``$MLFLOW_TRACKING_URI``, else SQLite under ``root``) and, for a SQLite
    store, the artifact location beside its file (MLflow's default, ``./mlruns``, depends on the working directory)."""
    uri = conf["uri"] or os.environ.get(URI_ENV)
    if not uri:
        local = local_file(qualify(root))
        if local is None:
            raise ValueError(
                f"tracking.root {root} is not on this machine's file system and SQLite needs a local "
                f"file; set tracking.uri or {URI_ENV} to a tracking server"
            )
        os.makedirs(local, exist_ok=True)
        uri = f"sqlite:///{local}/{STORE_FILE}"
    if not uri.startswith("sqlite:///"):
        return uri, None
    return uri, Path(uri[len("sqlite:///") :]).resolve().parent.joinpath(ARTIFACTS_DIR).as_uri()


class Run:
    """One MLflow run, or none (``Run()``, falsy): every method does nothing on none, and the first failing
    call prints one warning and makes the run none, so tracking never stops the job."""

    def __init__(self, client: Any = None, run_id: str | None = None, uri: str | None = None, what: str = "run"):
        self.client, self.run_id, self.uri, self.what = client, run_id, uri, what

    def __bool__(self) -> bool:
        return self.run_id is not None

    def _call(self, action: Callable[[], Any]) -> Any:
        if not self:
            return None
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - no tracking failure may fail the job
            warn_untracked(self.what, exc)
            self.client = self.run_id = None
            return None

    @classmethod
    def start(
        cls,
        conf: Mapping[str, Any],
        root: str,
        experiment: str,
        name: str,
        tags: Mapping[str, str],
        parent: Run | None = None,
    ) -> Run:
        """A new run in ``experiment`` of the configured store (made if need be), or under ``parent`` (which
        decides: a child of none is none)."""
        if parent is not None:
            return parent.child(name, tags)
        if not conf["enabled"] or switched_off():
            return cls()

        def create() -> Run:
            uri, artifacts = store(conf, root)
            client = open_client(uri, conf)
            found = client.get_experiment_by_name(experiment)
            experiment_id = (
                found.experiment_id if found else client.create_experiment(experiment, artifact_location=artifacts)
            )
            info = client.create_run(experiment_id, run_name=name, tags={**run_tags(), **tags}).info
            return cls(client, info.run_id, uri, name)

        return _new(name, create)

    @classmethod
    def attach(cls, uri: str, run_id: str, what: str = "run") -> Run:
        """The existing run ``run_id`` of the store at ``uri``."""
        return _new(what, lambda: cls(open_client(uri, settings()), run_id, uri, what))

    def child(self, name: str, tags: Mapping[str, str]) -> Run:
        """A run nested under this one, in its experiment and store."""

        def create() -> Run:
            experiment_id = self.client.get_run(self.run_id).info.experiment_id
            info = self.client.create_run(
                experiment_id, run_name=name, tags={**run_tags(), **tags, "mlflow.parentRunId": self.run_id}
            ).info
            return Run(self.client, info.run_id, self.uri, name)

        return _new(name, create) if self else Run()

    def child_env(self, step: str) -> dict[str, str]:
        """The environment of a step run as a subprocess: this run's store and id, or tracking off."""
        return {URI_ENV: self.uri, PARENT_ENV: self.run_id, STEP_ENV: step} if self else {SWITCH_ENV: "off"}

    def describe(self) -> dict[str, str] | None:
        return {"uri": self.uri, "run_id": self.run_id} if self else None

    def log_params(self, params: Mapping[str, str]) -> None:
        def log() -> None:
            from mlflow.entities import Param
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

            items = [Param(k, str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_TAGS_PER_BATCH])

        self._call(log)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The resolved configuration: flattened as params, whole as ``config.yaml``."""
        self.log_params(flat_params(config))
        self._call(lambda: self.client.log_text(self.run_id, dump_config(config), "config.yaml"))

    def log_numbers(self, document: Mapping[str, Any]) -> None:
        def log() -> None:
            from mlflow.entities import Metric
            from mlflow.utils.time import get_current_time_millis
            from mlflow.utils.validation import MAX_METRICS_PER_BATCH

            now = get_current_time_millis()
            items = [Metric(k, v, now, 0) for k, v in flat_numbers(document).items()]
            for i in range(0, len(items), MAX_METRICS_PER_BATCH):
                self.client.log_batch(self.run_id, metrics=items[i : i + MAX_METRICS_PER_BATCH])

        self._call(log)

    def log_file(self, path: str | os.PathLike, directory: str | None = None) -> None:
        self._call(lambda: self.client.log_artifact(self.run_id, os.fspath(path), directory))

    def log_plots(self, outputs: Mapping[str, StagedOutput]) -> None:
        """The PNGs at the top of each committed output on this machine, under ``plots/<output key>``."""
        for key, out in outputs.items():
            local = local_file(out.final_path)
            for png in sorted(Path(local).glob("*.png")) if local and os.path.isdir(local) else []:
                self.log_file(png, f"plots/{key}")

    def finish(self, ok: bool) -> None:
        self._call(lambda: self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED"))


def _new(what: str, create: Callable[[], Run]) -> Run:
    """The run ``create`` makes, or none (after one warning) when it fails."""
    try:
        return create()
    except Exception as exc:  # noqa: BLE001 - no tracking failure may fail the job
        warn_untracked(what, exc)
        return Run()


def start_job(ctx: JobContext, parent: Run | None = None, step: str | None = None) -> Run:
    """The run of a job: under ``parent`` (a session-mode pipeline step), under ``$MLFLOW_PARENT_RUN_ID`` (a
    subprocess step), else a run of its own in experiment ``tracking.experiment`` or the job's name."""
    conf = settings()
    tags = {"job": ctx.name, "run_date": ctx.run_date or ""}
    if parent is None and os.environ.get(PARENT_ENV) and not switched_off():
        parent = Run.attach(os.environ.get(URI_ENV, ""), os.environ[PARENT_ENV], ctx.name)
        step = step or os.environ.get(STEP_ENV)
    if step:
        tags["step"] = step
    run = Run.start(conf, conf["root"] or JOB_ROOT, conf["experiment"] or ctx.name, step or ctx.name, tags, parent)
    run.log_config(ctx.config)
    return run


@contextlib.contextmanager
def tracked_job(ctx: JobContext, parent: Run | None = None, step: str | None = None) -> Iterator[Run]:
    """Track the job run inside the block: FINISHED with its metrics and plots when the block ends, else FAILED;
    the models it committed registered (``pipelines.model_registry``).
    The run is ``ctx.tracking`` meanwhile, the parent of pipelines the job runs (the demo)."""
    run = start_job(ctx, parent, step)
    ctx.tracking = run
    ok = False
    try:
        yield run
        ok = True
    finally:
        run._call(lambda: run.log_numbers(ctx.metrics_document()))
        run.log_plots(ctx.committed)
        if ok and run:
            from pipelines.model_registry import register_models

            register_models(ctx, run)
        run.finish(ok)


def start_pipeline(pipeline: Pipeline, run_date: str, mode: str, force: bool, parent: Run | None = None) -> Run:
    """The parent run of a pipeline's run of one date, in the pipeline's store (or under ``parent``: a job
    running the pipeline, the demo)."""
    conf = pipeline.tracking
    run = Run.start(
        conf,
        conf["root"] or pipeline.root,
        conf["experiment"] or pipeline.name,
        f"{pipeline.name} {run_date}",
        {"pipeline": pipeline.name, "run_date": run_date},
        parent,
    )
    run.log_params(
        {
            "definition": str(pipeline.source),
            "root": pipeline.root,
            "mode": mode,
            "force": json.dumps(force),
            "run_date": run_date,
        }
    )
    return run


def finish_pipeline(run: Run, manifest: Any, ok: bool) -> None:
    """Close a pipeline's run: counts of steps, its duration and the manifest (a local root's) as an artifact."""
    steps = manifest.data["steps"]
    run.log_numbers(
        {
            "duration_s": manifest.data["duration_s"],
            "steps_ran": sum(s["status"] == "ran" for s in steps),
            "steps_skipped": sum(s["status"] == "skipped" for s in steps),
        }
    )
    local = local_file(manifest.path)
    if local and os.path.isfile(local):
        run.log_file(local)
    run.finish(ok)


def log_report(manifest: Mapping[str, Any], report: str | os.PathLike) -> None:
    """Add a written report to the pipeline run its manifest names (when tracked)."""
    found = manifest.get("tracking")
    if found and not switched_off():
        Run.attach(found["uri"], found["run_id"], f"{manifest['pipeline']} report").log_file(report)
