"""Staleness, not existence, decides a skip (issue 15, items 1 and 4), on clicks_demo's ingest followed by an
evaluation of its clean clicks (score i2: cheaper than training, the same planning), with the raw clicks as an
external input (plain CSV files, not written by us); and on the generator's four outputs, committed together.

One scenario, in order, sharing its runs: everything runs; nothing changed skips everything; configuration,
package version and declared inputs changes; the external input changes; ingest re-runs alone (the issue's
case: the next step failed after it), so the next step's committed outputs are stale although they exist; a
commit cut short between two outputs is refused by a reader and repaired by the next run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import lineage
from pipelines.fs import HadoopFS
from pipelines.job_runtime import run_job
from pipelines.orchestration.definition import build_pipeline
from pipelines.orchestration.plan import make_plan, render_plan
from pipelines.orchestration.runner import Runner
from tests.pipeline_runs import PIPELINES, ROOT

D = "2026-11-20"
DEMO = PIPELINES / "clicks_demo.yaml"


def definition(root: Path, steps=("ingest_clicks", "evaluate")) -> dict:
    data = yaml.safe_load(DEMO.read_text())
    data["spark"]["conf_file"] = "conf/spark/test.yaml"
    external = f"{root}/external/clicks/ds={{run_date}}"
    data["steps"]["ingest_clicks"]["set"]["input"]["path"] = external
    data["steps"]["ingest_clicks"]["inputs"] = [external]
    clean = "{root}/clean/clicks/ds={run_date}"
    data["steps"]["evaluate"]["set"].update({"input.path": clean, "columns.score": "i2", "curve_points": 20})
    data["steps"]["evaluate"]["inputs"] = [clean]
    data["steps"]["generate"]["set"]["size"] = 0.02
    data["steps"] = {k: v for k, v in data["steps"].items() if k in steps}
    return data


def pipeline_of(data: dict, root: Path):
    return build_pipeline(copy.deepcopy(data), DEMO, str(root))


def plan_of(spark, pipeline) -> dict[str, tuple[str, str]]:
    return {p.step.name: (p.action, p.reason) for p in make_plan(pipeline, D, HadoopFS(spark))}


def run(spark, pipeline) -> dict[str, str]:
    manifest = Runner(pipeline, "session", spark=spark).run(D).data
    return {s["name"]: s["status"] for s in manifest["steps"]}


def write_external_clicks(spark, root: Path, seed: int) -> None:
    """Plain CSV files (no _SUCCESS, no _metrics.json) made by the generator with ``seed``, replacing any."""
    gen = build_pipeline(
        {
            "name": "gen",
            "spark": {"conf_file": "conf/spark/test.yaml"},
            "steps": {
                "generate": {
                    "job": "generate_demo_data",
                    "set": {"size": 0.02, "seed": seed, "output.path": "{root}/raw"},
                    "outputs": ["{root}/raw/clicks"],
                }
            },
        },
        DEMO,
        str(root / f"gen{seed}"),
    )
    Runner(gen, "session", spark=spark).run(D)
    target = root / "external" / "clicks" / f"ds={D}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for csv in (root / f"gen{seed}" / "raw" / "clicks" / f"ds={D}").glob("*.csv"):
        shutil.copy(csv, target / csv.name)


@pytest.fixture(scope="module")
def scene(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("stale")
    write_external_clicks(spark, root, seed=1)
    data = definition(root)
    pipeline = pipeline_of(data, root)
    assert run(spark, pipeline) == dict.fromkeys(pipeline.steps, "ran")
    return root, data, pipeline


def test_nothing_changed_skips_everything(spark, scene):
    _, _, pipeline = scene
    plan = plan_of(spark, pipeline)
    assert {n: a for n, (a, _) in plan.items()} == dict.fromkeys(pipeline.steps, "skip")
    assert plan["evaluate"][1].startswith("outputs current (committed 20")


def test_config_and_version_changes_rerun(spark, scene, monkeypatch):
    root, data, _ = scene
    changed = copy.deepcopy(data)
    changed["steps"]["evaluate"]["set"]["threshold"] = 0.3
    plan = plan_of(spark, pipeline_of(changed, root))
    assert plan["evaluate"][0] == "run" and plan["evaluate"][1].startswith("configuration changed since 20")
    assert plan["ingest_clicks"][0] == "skip"

    monkeypatch.setattr(lineage, "__version__", "9.9.9")
    plan = plan_of(spark, pipeline_of(data, root))
    assert plan["ingest_clicks"] == ("run", "package version changed (0.1.0 -> 9.9.9)")


def test_declared_inputs_change_reruns(spark, scene):
    root, data, _ = scene
    changed = copy.deepcopy(data)
    changed["steps"]["evaluate"]["inputs"].append("{root}/external/clicks/ds={run_date}")
    plan = plan_of(spark, pipeline_of(changed, root))
    assert plan["evaluate"][0] == "run" and plan["evaluate"][1].startswith("declared inputs differ")


def test_changed_external_input_then_a_rerun_of_ingest_alone_leaves_the_next_step_stale(spark, scene):
    root, data, pipeline = scene
    result = f"{root}/evaluation/ds={D}/evaluation.json"
    auc_before = json.loads(Path(result).read_text())["roc_auc"]
    write_external_clicks(spark, root, seed=2)
    plan = plan_of(spark, pipeline)
    assert plan["ingest_clicks"][0] == "run"
    assert plan["ingest_clicks"][1].startswith(f"input external/clicks/ds={D} changed since 20")
    assert plan["evaluate"] == ("run", "upstream 'ingest_clicks' runs")

    # Only ingest re-runs (as when the next step then failed): evaluate's outputs still exist.
    assert run(spark, pipeline_of(definition(root, ("ingest_clicks",)), root)) == {"ingest_clicks": "ran"}
    plan = make_plan(pipeline, D, HadoopFS(spark))
    reasons = {p.step.name: (p.action, p.reason) for p in plan}
    assert reasons["ingest_clicks"][0] == "skip"
    assert reasons["evaluate"][0] == "run"
    assert reasons["evaluate"][1].startswith(f"input clean/clicks/ds={D} changed since 20")
    assert f"evaluate       RUN   input clean/clicks/ds={D} changed since 20" in render_plan(pipeline, D, plan, "x")

    assert run(spark, pipeline) == {"ingest_clicks": "skipped", "evaluate": "ran"}
    assert json.loads(Path(result).read_text())["roc_auc"] != auc_before  # the new data's figure


KILL_AFTER_FIRST_COMMIT = """
import os, runpy, signal, sys
from pipelines.output import StagedOutput
real_commit, done = StagedOutput.commit, []

def commit(self):
    if done:
        os.kill(os.getpid(), signal.SIGKILL)   # the driver dies between two outputs' renames
    done.append(real_commit(self))
    print("committed", done[-1], flush=True)
    return done[-1]

StagedOutput.commit = commit
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_driver_killed_between_two_outputs_is_refused_by_readers_and_repaired(spark, tmp_path, capsys):
    """SIGKILL of the driver between the renames of the generator's outputs: the first is the new run's, the
    others the old run's. All stay readable, a reader refuses the broken set, the next run repairs it (taking
    over the dead driver's leases at once: its process is gone from this host)."""
    data = definition(tmp_path, ("generate",))
    pipeline = pipeline_of(data, tmp_path)
    assert run(spark, pipeline) == {"generate": "ran"}
    changed = copy.deepcopy(data)
    changed["steps"]["generate"]["set"]["seed"] = 7
    step = pipeline_of(changed, tmp_path).steps["generate"]
    wrapper = tmp_path / "kill_after_first_commit.py"
    wrapper.write_text(KILL_AFTER_FIRST_COMMIT)
    done = subprocess.run(
        [
            sys.executable,
            str(wrapper),
            str(ROOT / "jobs" / f"{step.job}.py"),
            *step.job_args(D),
            "--spark-conf",
            str(ROOT / "conf" / "spark" / "test.yaml"),
        ],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    committed = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("committed ")]
    outputs = pipeline.steps["generate"].output_paths(D)
    assert len(committed) == 1 and committed[0] in outputs
    assert list((tmp_path / "raw").glob("*/_leases/*.lease"))  # the dead driver's leases remain
    for path in outputs:  # every output is still readable
        assert (Path(path) / "_SUCCESS").is_file()
        assert spark.read.format("text").load(path).count() > 0

    assert plan_of(spark, pipeline)["generate"] == ("run", "outputs committed by different runs (a commit cut short)")
    old = next(p for p in outputs if p != committed[0])
    code = run_job("evaluate", ["--set", f"input.path={old}", "--set", f"output.path={tmp_path}/reader_check"])
    err = capsys.readouterr().err
    assert code == 1 and f"input {old} was committed by job generate_demo_data together with " in err
    assert "(a commit cut short): re-run generate_demo_data first" in err
    assert not (tmp_path / "reader_check").exists()

    assert run(spark, pipeline) == {"generate": "ran"}
    tokens = {json.loads((Path(p) / "_metrics.json").read_text())["lineage"]["token"] for p in outputs}
    assert len(tokens) == 1 and not list((tmp_path / "raw").glob("*/_leases"))
    assert plan_of(spark, pipeline)["generate"][0] == "skip"


def test_a_file_uri_root_goes_through_hadoop_all_the_way(spark, tmp_path):
    """A root with a scheme (as hdfs:// or s3a:// would be) is committed, leased, fingerprinted and planned
    through the Hadoop FileSystem API, not Python's: the same skip and re-run decisions as a local root."""
    data = definition(tmp_path, ("generate",))
    pipeline = build_pipeline(copy.deepcopy(data), DEMO, f"file://{tmp_path}/uri")
    assert pipeline.steps["generate"].output_paths(D)[0] == f"file://{tmp_path}/uri/raw/clicks/ds={D}"
    assert plan_of(spark, pipeline)["generate"] == ("run", f"not committed: raw/clicks/ds={D}")
    assert run(spark, pipeline) == {"generate": "ran"}
    assert (tmp_path / "uri" / "raw" / "clicks" / f"ds={D}" / "_SUCCESS").is_file()
    assert not list((tmp_path / "uri").rglob("_leases")) and not list((tmp_path / "uri").rglob("_staging"))
    assert plan_of(spark, pipeline)["generate"][0] == "skip"
    changed = copy.deepcopy(data)
    changed["steps"]["generate"]["set"]["seed"] = 3
    reason = plan_of(spark, build_pipeline(changed, DEMO, f"file://{tmp_path}/uri"))["generate"]
    assert reason[0] == "run" and reason[1].startswith("configuration changed since 20")
