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
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from pyspark.sql import DataFrame, SparkSession

from pipelines import __version__
from pipelines.config import ConfigError, dump_config, leaf_keys, load_config, merge, read_yaml
from pipelines.errors import UserError
from pipelines.output import CONFIG_FILE, METRICS_FILE, StagedOutput
from pipelines.session import get_spark

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "jobs"


class JobError(UserError):
    """A failure a job detects itself; printed as one line, without a traceback."""


def spark_summary(spark: SparkSession) -> dict[str, Any]:
    """Where the job ran: master, executors (driver excluded; 0 in local mode) and parallelism."""
    sc = spark.sparkContext
    executors = sc._jsc.sc().getExecutorMemoryStatus().size() - 1
    return {"version": spark.version, "master": sc.master, "app_id": sc.applicationId,
            "executors": executors, "default_parallelism": sc.defaultParallelism,
            "shuffle_partitions": int(spark.conf.get("spark.sql.shuffle.partitions"))}


class JobContext:
    """What a job function gets: session, resolved configuration, run date, outputs and metrics."""

    def __init__(self, name: str, spark: SparkSession, config: dict[str, Any], run_date: str | None,
                 conf_dir: Path = CONF_DIR):
        self.name = name
        self.conf_dir = conf_dir
        self.spark = spark
        self.config = config
        self.run_date = run_date
        self.metrics: dict[str, Any] = {}
        self.outputs: dict[str, StagedOutput] = {}
        self.committed: dict[str, StagedOutput] = {}
        self.started = time.time()

    def log(self, message: str) -> None:
        """Progress on the console (stderr, so stdout stays for results)."""
        print(f"[{self.name} {time.time() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)

    def stage(self, key: str, df: DataFrame, path: str, fmt: str = "parquet",
              partition_by: list[str] | None = None, options: dict[str, Any] | None = None,
              dated: bool = True) -> StagedOutput:
        """Write ``df`` to a staging directory for output ``key``; committed when the job succeeds."""
        out = StagedOutput(self.spark, path, self.run_date if dated else None)
        self.log(f"writing {key} -> {out.final_path}")
        out.write(df, fmt=fmt, partition_by=partition_by, options=options)
        self.outputs[key] = out
        return out

    def commit_now(self, key: str, df: DataFrame, path: str, **kwargs: Any) -> str:
        """Stage and commit at once, for outputs that must survive a later failure (quarantine)."""
        self.stage(key, df, path, **kwargs)
        return self.commit([key])[key]

    def stage_model(self, key: str, model: Any, path: str) -> StagedOutput:
        """Stage a Spark ML model directory (not dated: a model is replaced as a whole)."""
        out = StagedOutput(self.spark, path)
        self.log(f"saving model {key} -> {out.final_path}")
        out.write_model(model)
        self.outputs[key] = out
        return out

    def stage_files(self, key: str, path: str, files: dict[str, str | bytes], dated: bool = True) -> StagedOutput:
        """Stage a directory of small files (a report with plots); committed like any output."""
        out = StagedOutput(self.spark, path, self.run_date if dated else None)
        for name, text in files.items():
            out.put_text(name, text)
        self.outputs[key] = out
        return out

    def _seal(self, out: StagedOutput) -> None:
        out.put_json(METRICS_FILE, self.metrics_document())
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
        """Seal staged outputs (all, or ``keys``) with metrics and configuration, then commit each.

        Called by ``run_job`` at the end; a multi-step job calls it between steps as a checkpoint.
        """
        chosen = {k: self.outputs[k] for k in (keys if keys is not None else list(self.outputs))}
        for out in chosen.values():
            self._seal(out)
        done = {}
        for key, out in chosen.items():
            done[key] = out.commit()
            self.committed[key] = self.outputs.pop(key)
        return done

    def run_step(self, name: str, main: Callable[["JobContext"], Any], updates: dict[str, Any]) -> "JobContext":
        """Run job ``name``'s main in this session, its defaults merged with ``updates``; commit its outputs.

        For multi-step jobs (the demo): each step's outputs carry that step's own configuration and metrics.
        """
        config = merge(read_yaml(self.conf_dir / f"{name}.yaml"), updates)
        step = JobContext(name, self.spark, config, self.run_date, self.conf_dir)
        self.log(f"step {name}")
        try:
            main(step)
            step.commit()
        except BaseException:
            step.abort()
            raise
        self.committed.update({f"{name}.{key}": out for key, out in step.committed.items()})
        return step

    def abort(self) -> None:
        for out in self.outputs.values():
            out.abort()


def _run_date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        config = config[part]
    return config


def build_parser(name: str, description: str, defaults_path: Path, spark_conf: Path) -> argparse.ArgumentParser:
    """``--help`` shows the job's purpose and every configuration key with its default."""
    try:
        defaults = read_yaml(defaults_path)
        keys = "\n".join(f"  {k} = {json.dumps(_lookup(defaults, k), default=str)}" for k in leaf_keys(defaults))
    except ConfigError as exc:
        keys = f"  ({exc})"
    parser = argparse.ArgumentParser(
        prog=f"jobs/{name}.py", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"configuration keys (defaults from {defaults_path}):\n{keys}\n\n"
               f"Run with python or spark-submit, e.g.\n  spark-submit jobs/{name}.py --set KEY=VALUE")
    parser.add_argument("--conf", metavar="FILE", help=f"job configuration YAML, merged over {defaults_path.name}")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override one configuration key (dotted), e.g. --set model.vector_size=200; repeatable")
    parser.add_argument("--run-date", metavar="YYYY-MM-DD", type=_run_date,
                        help="write outputs into the ds=YYYY-MM-DD partition (a re-run replaces only it)")
    parser.add_argument("--spark-conf", metavar="FILE", default=str(spark_conf),
                        help="Spark settings YAML used when not under spark-submit (default: %(default)s)")
    return parser


def run_job(name: str, job_file: str, main: Callable[[JobContext], Any], description: str,
            argv: Sequence[str] | None = None) -> int:
    """Parse arguments, load configuration, build the session, run ``main``, commit outputs."""
    root = Path(job_file).resolve().parents[1]
    conf_dir = root / "conf" / "jobs"
    defaults_path = conf_dir / f"{name}.yaml"
    parser = build_parser(name, description, defaults_path, root / "conf" / "spark" / "local.yaml")
    args = parser.parse_args(argv)
    try:
        config = load_config(defaults_path, args.conf, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spark = get_spark(name, args.spark_conf)
    ctx = JobContext(name, spark, config, args.run_date, conf_dir)
    try:
        main(ctx)
        ctx.commit()
    except (UserError, FileNotFoundError) as exc:
        ctx.abort()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        ctx.abort()
        raise
    for key, out in ctx.committed.items():
        print(f"{key}: {out.final_path}")
    ctx.log(f"done in {time.time() - ctx.started:.1f}s")
    return 0
