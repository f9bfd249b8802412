"""Run a conf/pipelines definition at test size with ``python -m pipelines run`` in the tests' SparkSession."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import yaml

from pipelines.orchestration.command import main

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "conf" / "pipelines"
# clicks_demo's GBDT+LR at its smallest: two shallow trees, one regularisation value.
TINY_TRAIN = {"trees.num_trees": 2, "trees.max_depth": 2, "trees.max_bins": 16, "lr.reg_grid": [0.1], "lr.max_iter": 10}


def tiny_definition(name: str, folder: Path, sets: dict[str, dict[str, Any]]) -> Path:
    """``conf/pipelines/<name>.yaml`` with the tests' Spark settings and ``sets`` merged into its steps' ``set``,
    written to ``folder``."""
    data = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text())
    data["spark"]["conf_file"] = "conf/spark/test.yaml"
    for step, values in sets.items():
        data["steps"][step].setdefault("set", {}).update(values)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_pipeline(spark: Any, definition: Path, root: Path, run_date: str) -> tuple[dict[str, Any], Path]:
    """Run one date in session mode through the command line entry; the manifest and the report's path."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            ["run", str(definition), "--root", str(root), "--run-date", run_date, "--mode", "session"], spark=spark
        )
    text = printed.getvalue()
    manifest = re.search(rf"^{run_date} \w+ manifest: (.+)$", text, re.M)
    report = re.search(rf"^{run_date} report: (.+)$", text, re.M)
    assert code == 0 and manifest and report, text
    return json.loads(Path(manifest.group(1)).read_text()), Path(report.group(1))
