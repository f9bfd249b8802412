"""The common shell of every job: arguments, configuration, session, outputs and metrics.

A job script is a few lines: it names itself and hands ``run_job`` a function of a ``JobContext``.
That function reads inputs, calls the library and stages outputs with ``ctx.stage``; ``run_job``
then writes ``_metrics.json`` and ``_config.yaml`` into every staged output and commits them all.
If the function fails, staged data is dropped and committed outputs stay as they were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from typing import Any, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession

from pipelines import __version__
from pipelines.config import ConfigError, date_argument, dump_config, leaves, load_config, merge, read_yaml
from pipelines.connect import default_parallelism, is_connect
from pipelines.errors import UserError, describe_failure, spark_error_logs
from pipelines.fs import file_system, qualify
from pipelines.lease import LeaseKeeper
from pipelines.lineage import fingerprint, half_committed, make_lineage, new_token, read_metrics
from pipelines.model_registry import resolve_config
from pipelines.output import CONFIG_FILE, METRICS_FILE, OutputError, StagedOutput, overlaps
from pipelines.registry import get_job
from pipelines.resources import job_defaults
from pipelines.session import get_spark
from pipelines.tracking import Run, tracked_job


class JobError(UserError):
    """A failure a job detects itself; printed as one line, without a traceback."""


def spark_summary(spark: SparkSession) -> dict[str, Any]:
    """Where and how the job ran: master, executors (driver excluded; 0 in local mode; None over Spark Connect,
    whose client cannot ask), parallelism, and the effective Spark settings (explicitly set ones, values of keys
    matching ``spark.redaction.regex`` hidden)."""
    executors = None if is_connect(spark) else spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
    return {
        "version": spark.version,
        "master": spark.conf.get("spark.master", None),
        "app_id": spark.conf.get("spark.app.id", None),
        "executors": executors,
        "default_parallelism": default_parallelism(spark),
        "shuffle_partitions": int(spark.conf.get("spark.sql.shuffle.partitions")),
        "settings": effective_settings(spark),
    }


def effective_settings(spark: SparkSession) -> dict[str, str]:
    """The session's explicitly set ``spark.*`` settings (launcher, spark-defaults, YAML, runtime), sorted, with
    the values of secret-looking keys replaced as Spark's UI does."""
    secret = re.compile(spark.conf.get("spark.redaction.regex", r"(?i)secret|password|token|access[.]?key"))
    launched = {} if is_connect(spark) else dict(spark.sparkContext.getConf().getAll())
    found = {**launched, **spark.conf.getAll}
    return {
        k: "*********(redacted)" if secret.search(k) else v for k, v in sorted(found.items()) if k.startswith("spark.")
    }


def config_inputs(config: Mapping[str, Any]) -> list[str]:
    """Paths a job reads, from its configuration: non-empty ``*path`` keys outside the ``output`` section."""
    paths = []
    for dotted, value in leaves(config):
        if dotted.split(".")[0] == "output" or not dotted.rsplit(".", 1)[-1].endswith("path"):
            continue
        if isinstance(value, str) and value.strip():
            paths.append(qualify(value.strip()))
    return paths


class JobContext:
    """What a job function gets: session, resolved configuration, run date, outputs and metrics.

    It also keeps the run's guarantees: every input is fingerprinted before the job reads it (the lineage
    each output carries), no output may be empty or overlap an input, a directory this package did not
    write is never replaced, and each output is leased to this run from staging to commit
    (``pipelines.lease``). ``inputs`` / ``outputs`` are the paths a pipeline step declares (``--input`` /
    ``--output``): declared outputs are leased at once, so a second writer stops before any work.
    Without declared inputs, the configuration's input paths are used (``config_inputs``).
    A ``models:/`` URI in the configuration is first replaced by its model directory, found in the model
    registry at ``registry_uri`` (``pipelines.model_registry``; None: the default store).
    """

    def __init__(
        self,
        name: str,
        spark: SparkSession,
        config: dict[str, Any],
        run_date: str | None,
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        registry_uri: str | None = None,
    ):
        self.name = name
        self.spark = spark
        self.config = config
        self.run_date = run_date
        self.metrics: dict[str, Any] = {}
        self.outputs: dict[str, StagedOutput] = {}
        self.committed: dict[str, StagedOutput] = {}
        self.started = time.time()
        self.tracking: Run | None = None  # this run's MLflow run while it runs (``tracking.tracked_job``)
        self.token = new_token()
        self.fs = file_system(spark)
        self.models: list[str] = []  # the outputs staged with stage_model, registered by a tracked run
        resolved = resolve_config(config, registry_uri, self.fs)
        if resolved:
            self.metrics["resolved_models"] = resolved
        self.declared_inputs = bool(inputs)
        self.inputs = [qualify(p) for p in inputs] if inputs else config_inputs(config)
        self.fingerprints = {p: fingerprint(self.fs, p) for p in dict.fromkeys(self.inputs)}
        self._check_complete_inputs()
        self.leases = LeaseKeeper(self.fs, self.token, name)
        try:
            for path in outputs or []:
                self._claim("declared", qualify(path))
        except BaseException:
            self.close()
            raise

    def log(self, message: str) -> None:
        """Progress on the console (stderr, so stdout stays for results)."""
        print(f"[{self.name} {time.time() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)

    def _check_complete_inputs(self) -> None:
        """Refuse an input committed together with other outputs that a cut-short commit left from another run."""
        for path, found in self.fingerprints.items():
            doc = read_metrics(self.fs, path) if found["id"].startswith("token:") else None
            broken = half_committed(self.fs, doc) if doc else None
            if broken:
                raise JobError(
                    f"input {path} was committed by job {doc['job']} together with {broken}, which now "
                    f"holds another run's output (a commit cut short): re-run {doc['job']} first"
                )

    def _claim(self, key: str, final_path: str) -> None:
        """Refuse an output that overlaps an input; lease it to this run."""
        for source in self.inputs:
            if overlaps(final_path, source):
                raise OutputError(
                    f"output '{key}' ({final_path}) overlaps input {source}; writing it would "
                    f"replace what this job reads"
                )
        self.leases.hold(final_path)

    def _open(self, key: str, path: str, dated: bool) -> StagedOutput:
        if path is None or not str(path).strip():
            raise OutputError(
                f"output '{key}' of job {self.name}: the path is empty (it would mean the working "
                f"directory); set it in the configuration"
            )
        out = StagedOutput(self.spark, path, self.run_date if dated else None, self.fs)
        self._claim(key, out.final_path)
        return out

    def stage(
        self,
        key: str,
        df: DataFrame,
        path: str,
        fmt: str = "parquet",
        partition_by: list[str] | None = None,
        options: dict[str, Any] | None = None,
        dated: bool = True,
    ) -> StagedOutput:
        """Write ``df`` to a staging directory for output ``key``; committed when the job succeeds."""
        out = self._open(key, path, dated)
        self.log(f"writing {key} -> {out.final_path}")
        out.write(df, fmt=fmt, partition_by=partition_by, options=options)
        self.outputs[key] = out
        return out

    def commit_now(self, key: str, df: DataFrame, path: str, **kwargs: Any) -> str:
        """Stage and commit at once, for outputs that must survive a later failure (quarantine)."""
        self.stage(key, df, path, **kwargs)
        return self.commit([key])[key]

    def stage_model(self, key: str, model: Any, path: str, dated: bool = False) -> StagedOutput:
        """Stage a Spark ML model directory (undated by default: a model is replaced as a whole)."""
        out = self._open(key, path, dated)
        self.log(f"saving model {key} -> {out.final_path}")
        out.write_model(model)
        self.outputs[key] = out
        self.models.append(key)
        return out

    def stage_files(self, key: str, path: str, files: dict[str, str | bytes], dated: bool = True) -> StagedOutput:
        """Stage a directory of small files (a report with plots); committed like any output."""
        out = self._open(key, path, dated)
        for name, text in files.items():
            out.put_text(name, text)
        self.outputs[key] = out
        return out

    def _seal(self, out: StagedOutput, together: dict[str, str]) -> None:
        document = self.metrics_document()
        document["lineage"] = make_lineage(self.token, self.config, self.fingerprints, self.declared_inputs, together)
        out.put_json(METRICS_FILE, document)
        out.put_text(CONFIG_FILE, dump_config(self.config))

    def metrics_document(self) -> dict[str, Any]:
        return {
            "job": self.name,
            "version": __version__,
            "run_date": self.run_date,
            "started_at": dt.datetime.fromtimestamp(self.started, dt.timezone.utc).isoformat(),
            "duration_s": round(time.time() - self.started, 3),
            "spark": spark_summary(self.spark),
            "rows_out": {k: o.rows for k, o in {**self.committed, **self.outputs}.items() if o.rows is not None},
            "outputs": {k: o.final_path for k, o in {**self.committed, **self.outputs}.items()},
            **self.metrics,
        }

    def commit(self, keys: list[str] | None = None) -> dict[str, str]:
        """Seal staged outputs (all, or ``keys``) with metrics, lineage and configuration, then commit each.

        Called by ``run_job`` at the end; a multi-step job calls it between steps as a checkpoint. Outputs
        committed together record each other, so a reader can tell a set the driver died inside.
        """
        chosen = {k: self.outputs[k] for k in (keys if keys is not None else list(self.outputs))}
        together = {k: o.final_path for k, o in chosen.items()}
        for out in chosen.values():
            self._seal(out, together)
        done = {}
        for key, out in chosen.items():
            done[key] = out.commit()
            self.committed[key] = self.outputs.pop(key)
        return done

    def run_step(
        self,
        name: str,
        updates: dict[str, Any],
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        step_name: str | None = None,
    ) -> "JobContext":
        """Run the registered job ``name`` in this session, its defaults merged with ``updates``; commit its outputs.

        For multi-step jobs (the demo, the pipeline runner): each step's outputs carry that step's own
        configuration, metrics and lineage, and its MLflow run (named ``step_name``) is a child of this one's.
        """
        main = get_job(name).main
        config = merge(read_yaml(job_defaults(name)), updates)
        self.log(f"step {name}")
        step = JobContext(
            name, self.spark, config, self.run_date, inputs, outputs, self.tracking.uri if self.tracking else None
        )
        try:
            with tracked_job(step, self.tracking, step_name):
                main(step)
                step.commit()
        except BaseException:
            step.abort()
            raise
        finally:
            step.close()
            # A step's cached DataFrames are keyed by their plans, not by the files read: left in place, a
            # later step or run reading the same path in this session would get the old data back.
            self.spark.catalog.clearCache()
        self.committed.update({f"{name}.{key}": out for key, out in step.committed.items()})
        return step

    def abort(self) -> None:
        for out in self.outputs.values():
            out.abort()

    def close(self) -> None:
        """Give up this run's leases (after its commit or abort)."""
        self.leases.release_all()


def build_parser(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    """``--help`` shows the job's purpose and every configuration key with its default."""
    defaults_path = job_defaults(name)
    try:
        defaults = read_yaml(defaults_path)
        keys = "\n".join(f"  {k} = {json.dumps(v, default=str)}" for k, v in leaves(defaults))
    except ConfigError as exc:
        keys = f"  ({exc})"
    parser = argparse.ArgumentParser(
        prog=prog or f"jobs/{name}.py",
        description=get_job(name).description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"configuration keys (defaults from conf/jobs/{name}.yaml, shipped in the package):\n{keys}\n\n"
        f"Run with python, spark-submit or the console command, e.g.\n  spark-submit jobs/{name}.py "
        f"--set KEY=VALUE\n  spark-ml-pipelines job {name} --set KEY=VALUE",
    )
    parser.add_argument("--conf", metavar="FILE", help=f"job configuration YAML, merged over conf/jobs/{name}.yaml")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override one configuration key (dotted), e.g. --set model.vector_size=200; repeatable",
    )
    parser.add_argument(
        "--run-date",
        metavar="YYYY-MM-DD",
        type=date_argument,
        help="write outputs into the ds=YYYY-MM-DD partition (a re-run replaces only it)",
    )
    parser.add_argument(
        "--spark-conf",
        metavar="FILE",
        help="Spark settings YAML; under plain python the default is conf/spark/local.yaml; under "
        "spark-submit nothing is added unless this is given, and then its values fill "
        "only what spark-submit left unset",
    )
    parser.add_argument(
        "--input",
        metavar="PATH",
        action="append",
        default=[],
        dest="inputs",
        help="an input this run reads (as a pipeline step declares it): fingerprinted into the "
        "outputs' lineage; default: the configuration's input paths; repeatable",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        action="append",
        default=[],
        dest="outputs",
        help="an output this run commits (as a pipeline step declares it): leased at start, so "
        "a second writer stops at once; repeatable",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="on failure, show the full traceback (and PySpark's error log) instead of one line",
    )
    return parser


def run_job(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the registered job ``name`` from its command line: parse arguments, load configuration, build the
    session, run the job's function, commit outputs. Exit codes: 0 done, 1 the job failed, 2 bad arguments."""
    try:
        main = get_job(name).main
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(name, prog).parse_args(argv)
    try:
        config = load_config(job_defaults(name), args.conf, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spark = get_spark(name, args.spark_conf)
    ctx: JobContext | None = None
    try:
        spark_error_logs(args.verbose)
        ctx = JobContext(name, spark, config, args.run_date, args.inputs, args.outputs)
        with tracked_job(ctx):
            main(ctx)
            ctx.commit()
    except (UserError, FileNotFoundError) as exc:
        if ctx is not None:
            ctx.abort()
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:
        if ctx is not None:
            ctx.abort()
        cause = None if args.verbose else describe_failure(exc)
        if cause is None:
            raise
        print(f"error: {name}: {cause}", file=sys.stderr)
        return 1
    finally:
        if ctx is not None:
            ctx.close()
    for key, out in ctx.committed.items():
        print(f"{key}: {out.final_path}")
    ctx.log(f"done in {time.time() - ctx.started:.1f}s")
    return 0
