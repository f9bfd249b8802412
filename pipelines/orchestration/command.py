"""``spark-ml-pipelines`` (or ``python -m pipelines``): run a pipeline or one job, print a pipeline's plan, its
Airflow DAG or its cron line, render a run's report. A pipeline is a YAML file or the name of a shipped one.

    spark-ml-pipelines run clicks_demo --run-date 2026-11-20 [--force] [--dry-run] [--root DIR]
    spark-ml-pipelines run my_pipeline.yaml --from 2026-11-01 --to 2026-11-07
    spark-ml-pipelines job ingest --set input.path=raw.csv --set output.path=clean [--help]
    spark-ml-pipelines airflow clicks_demo --deploy-root /opt/ml > dags/clicks_demo.py
    spark-ml-pipelines cron clicks_demo >> my.crontab
    spark-ml-pipelines report <root>/_runs/ds=2026-11-20/<run_id>/manifest.json
    spark-ml-pipelines models train_gbdt_lr [--set 3] [--alias champion] [--uri sqlite:///output/mlruns.db]

Exit codes: 0 done, 1 a step failed (re-run the same command to resume), 2 a bad definition or argument.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from pipelines.config import date_argument
from pipelines.errors import UserError
from pipelines.fs import local_file
from pipelines.job_runtime import run_job
from pipelines.model_registry import models_command
from pipelines.orchestration.airflow import Deployment, render_dag
from pipelines.orchestration.cron import cron_line
from pipelines.orchestration.definition import MODES, load_pipeline
from pipelines.orchestration.plan import date_range, render_plan
from pipelines.orchestration.report import write_report
from pipelines.orchestration.runner import Runner, StepFailed, run_dates
from pipelines.registry import JOBS
from pipelines.resources import shipped_pipelines

PROG = "spark-ml-pipelines"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline for a date or a date range (backfill)")
    run.add_argument("definition", help=f"a pipeline YAML, or a shipped pipeline: {', '.join(shipped_pipelines())}")
    run.add_argument("--run-date", type=date_argument, help="the date to run, YYYY-MM-DD")
    run.add_argument("--from", dest="date_from", type=date_argument, help="first date of a backfill")
    run.add_argument("--to", dest="date_to", type=date_argument, help="last date of a backfill (inclusive)")
    run.add_argument("--force", action="store_true", help="redo steps whose outputs are already committed")
    run.add_argument("--dry-run", action="store_true", help="print the plan of each date and run nothing")
    run.add_argument("--mode", choices=MODES, help="override the definition's mode")
    run.add_argument("--retries", type=int, default=0, help="retry a failed date this many times (resumes)")
    run.add_argument("--retry-delay", type=float, default=0.0, metavar="SECONDS")
    run.add_argument("--no-report", action="store_true", help="do not write the HTML report of each run")
    for name in ("airflow", "cron"):
        p = sub.add_parser(name, help=f"print the {'Airflow DAG' if name == 'airflow' else 'crontab line'}")
        p.add_argument("definition")
    sub.choices["airflow"].add_argument("--conn-id", default="spark_default", help="Airflow Spark connection")
    airflow = sub.choices["airflow"]
    airflow.add_argument("--deploy-root", help="where the tasks find jobs/ and dist/ (default: this checkout)")
    airflow.add_argument("--py-files", help="the --py-files zip (default: <deploy root>/dist/<zip>)")
    airflow.add_argument(
        "--env-archive",
        help="a packed executor environment (make dist), shipped as spark.archives; executors run its bin/python",
    )
    airflow.add_argument(
        "--python",
        help="PYSPARK_DRIVER_PYTHON (and PYSPARK_PYTHON without --env-archive) of the "
        "jobs (default: this interpreter when no --deploy-root or archive is given, "
        "else the cluster's own)",
    )
    job = sub.add_parser(
        "job",
        help="run one job; `job JOB --help` lists its configuration",
        description="jobs:\n" + "\n".join(f"  {j.name:<20} {j.description}" for j in JOBS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    job.add_argument("job", choices=list(JOBS), metavar="JOB")
    job.add_argument("args", nargs=argparse.REMAINDER, help="the job's arguments (--conf, --set, --run-date, ...)")
    models = sub.add_parser("models", help="list a registered model's versions; --set moves its alias (rollback)")
    models.add_argument("name", help="the registered model, e.g. train_gbdt_lr or demo.rank")
    models.add_argument("--set", dest="version", metavar="VERSION", help="point the alias at this version first")
    models.add_argument("--alias", default="champion", help="the alias to show or move (default: champion)")
    models.add_argument("--uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI, else output/mlruns.db)")
    report = sub.add_parser("report", help="(re)write the HTML report of a run from its manifest")
    report.add_argument("manifest")
    for p in (run, sub.choices["airflow"], sub.choices["cron"]):
        p.add_argument("--root", help="replace the definition's root directory ({root})")
    return parser


def _dates(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    if args.run_date and (args.date_from or args.date_to):
        parser.error("give --run-date or --from/--to, not both")
    if args.run_date:
        return [args.run_date]
    if args.date_from and args.date_to:
        return date_range(args.date_from, args.date_to)
    parser.error("give --run-date YYYY-MM-DD, or --from and --to for a backfill")
    return []


def run_command(args: argparse.Namespace, dates: list[str], spark: Any = None, argv: list[str] | None = None) -> int:
    pipeline = load_pipeline(args.definition, args.root)
    runner = Runner(pipeline, args.mode, args.force, spark, argv)
    if args.dry_run:
        for run_date in dates:
            print(render_plan(pipeline, run_date, runner.plan(run_date), runner.mode))
        return 0
    code = 0
    try:
        run_dates(runner, dates, args.retries, args.retry_delay)
    except StepFailed as exc:
        print(f"error: {pipeline.name}: {exc}; re-run the same command to resume at step '{exc.step}'", file=sys.stderr)
        code = 1
    for manifest in runner.manifests:
        print(f"{manifest.data['run_date']} {manifest.data['status']} manifest: {manifest.path}")
        local = local_file(manifest.path)
        if not args.no_report and local is not None:
            print(f"{manifest.data['run_date']} report: {write_report(local)}")
        elif not args.no_report:
            print(
                f"{manifest.data['run_date']} report: not written (the root is not on this machine's file "
                f"system; render it with `python -m pipelines report` on a local copy of the manifest)"
            )
    return code


def main(argv: Sequence[str] | None = None, spark: Any = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if args.command == "job":
            return run_job(args.job, args.args, prog=f"{PROG} job {args.job}")
        if args.command == "run":
            return run_command(args, _dates(parser, args), spark, argv)
        if args.command == "models":
            return models_command(args.name, args.version, args.alias, args.uri)
        if args.command == "report":
            print(write_report(args.manifest))
            return 0
        pipeline = load_pipeline(args.definition, args.root)
        if args.command == "airflow":
            deployment = Deployment.make(args.deploy_root, args.py_files, args.env_archive, args.python)
            print(render_dag(pipeline, args.conn_id, deployment, f"{PROG} " + " ".join(argv)))
        else:
            print(cron_line(pipeline, root_override=args.root))
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
