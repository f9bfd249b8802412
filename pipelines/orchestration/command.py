"""``python -m pipelines``: run a pipeline, print its plan, its Airflow DAG or its cron line, render a report.

    python -m pipelines run conf/pipelines/clicks_demo.yaml --run-date 2026-11-20 [--force] [--dry-run]
    python -m pipelines run conf/pipelines/clicks_demo.yaml --from 2026-11-01 --to 2026-11-07
    python -m pipelines airflow conf/pipelines/clicks_demo.yaml > dags/clicks_demo.py
    python -m pipelines cron conf/pipelines/clicks_demo.yaml >> my.crontab
    python -m pipelines report <root>/_runs/ds=2026-11-20/<run_id>/manifest.json

Exit codes: 0 done, 1 a step failed (re-run the same command to resume), 2 a bad definition or argument.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from pipelines.config import date_argument
from pipelines.errors import UserError
from pipelines.fs import local_file
from pipelines.orchestration.airflow import render_dag
from pipelines.orchestration.cron import cron_line
from pipelines.orchestration.definition import MODES, load_pipeline
from pipelines.orchestration.plan import date_range, render_plan
from pipelines.orchestration.report import write_report
from pipelines.orchestration.runner import Runner, StepFailed, run_dates


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline for a date or a date range (backfill)")
    run.add_argument("definition", help="conf/pipelines/<name>.yaml")
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
    sub.choices["airflow"].add_argument("--py-files", help="the zip for --py-files (default: dist/<zip>)")
    sub.choices["airflow"].add_argument("--python", help="PYSPARK_PYTHON of the jobs (default: this interpreter)")
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
        print(f"error: {pipeline.name}: {exc}; re-run the same command to resume at step '{exc.step}'",
              file=sys.stderr)
        code = 1
    for manifest in runner.manifests:
        print(f"{manifest.data['run_date']} {manifest.data['status']} manifest: {manifest.path}")
        local = local_file(manifest.path)
        if not args.no_report and local is not None:
            print(f"{manifest.data['run_date']} report: {write_report(local)}")
        elif not args.no_report:
            print(f"{manifest.data['run_date']} report: not written (the root is not on this machine's file "
                  f"system; render it with `python -m pipelines report` on a local copy of the manifest)")
    return code


def main(argv: Sequence[str] | None = None, spark: Any = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run_command(args, _dates(parser, args), spark, argv)
        if args.command == "report":
            print(write_report(args.manifest))
            return 0
        pipeline = load_pipeline(args.definition, args.root)
        if args.command == "airflow":
            print(render_dag(pipeline, args.conn_id, args.py_files, "python -m pipelines " + " ".join(argv),
                             args.python))
        else:
            print(cron_line(pipeline, root_override=args.root))
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
