"""Pipeline definitions, plans and the runner (issue 8) on conf/pipelines/clicks_demo.yaml at the smallest sizes.

Definition, plan, dry-run, cron and DAG text need no Spark. The runs use the session's SparkSession, except
the interrupted run, which is a real ``python -m pipelines run --mode subprocess`` killed while it trains.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality

from pipelines.fs import HadoopFS
from pipelines.orchestration.command import main
from pipelines.orchestration.cron import cron_line
from pipelines.orchestration.definition import PipelineError, build_pipeline, load_pipeline
from pipelines.orchestration.manifest import manifests
from pipelines.orchestration.plan import make_plan
from pipelines.orchestration.runner import Runner, StepFailed, run_dates

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "conf" / "pipelines" / "clicks_demo.yaml"
D1, D2 = "2026-11-20", "2026-11-21"
TINY_TRAIN = {"trees.num_trees": 2, "trees.max_depth": 2, "trees.max_bins": 16, "lr.reg_grid": [0.1], "lr.max_iter": 10}


def demo_definition(steps: tuple[str, ...] | None = None, **step_sets) -> dict:
    """clicks_demo.yaml at test sizes and the tests' Spark settings, optionally cut to some steps."""
    data = yaml.safe_load(DEMO.read_text())
    data["spark"]["conf_file"] = "conf/spark/test.yaml"
    data["steps"]["generate"]["set"]["size"] = 0.02
    data["steps"]["train"]["set"].update(TINY_TRAIN)
    for name, sets in step_sets.items():
        data["steps"][name]["set"].update(sets)
    if steps:
        data["steps"] = {k: v for k, v in data["steps"].items() if k in steps}
    return data


def write_definition(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def pipeline_of(data: dict, root: Path):
    return build_pipeline(copy.deepcopy(data), DEMO, str(root))


def last_manifest(pipeline, run_date: str) -> dict:
    return json.loads(Path(manifests(pipeline, run_date)[-1]).read_text())


def statuses(manifest: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in manifest["steps"]}


def success_mtimes(pipeline, run_date: str, steps: list[str]) -> dict[str, float]:
    return {p: os.stat(f"{p}/_SUCCESS").st_mtime_ns for s in steps for p in pipeline.steps[s].output_paths(run_date)}


# --- definitions and plans (no Spark) -------------------------------------------------------------------------


def test_demo_definition_order_dependencies_and_paths(tmp_path):
    pipeline = load_pipeline(DEMO, str(tmp_path))
    assert list(pipeline.steps) == ["generate", "ingest_clicks", "train", "evaluate"]
    assert {n: s.depends_on for n, s in pipeline.steps.items()} == {
        "generate": [],
        "ingest_clicks": ["generate"],
        "train": ["ingest_clicks"],
        "evaluate": ["train"],
    }
    train = pipeline.steps["train"]
    assert train.output_paths(D1) == [
        f"{tmp_path}/gbdt_lr/model",
        f"{tmp_path}/gbdt_lr/test_scores/ds={D1}",
        f"{tmp_path}/gbdt_lr/report/ds={D1}",
    ]
    assert train.resolved_config(D1)["input"]["path"] == f"{tmp_path}/clean/clicks/ds={D1}"
    assert train.resolved_config(D1)["lr"]["reg_grid"] == [0.01, 0.1]


def test_after_and_declaration_order(tmp_path):
    data = demo_definition(("generate", "ingest_clicks"))
    data["steps"] = {
        "ingest_clicks": data["steps"]["ingest_clicks"],
        "generate": data["steps"]["generate"],
        "again": {**data["steps"]["generate"], "outputs": [], "after": "ingest_clicks"},
    }
    pipeline = pipeline_of(data, tmp_path)
    assert list(pipeline.steps) == ["generate", "ingest_clicks", "again"]
    assert pipeline.steps["again"].depends_on == ["ingest_clicks"]


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["steps"]["train"].update(job="trian_gbdt_lr"),
            "step 'train': unknown job 'trian_gbdt_lr'; jobs: ",
        ),
        (
            lambda d: d["steps"]["generate"].update(inputs=["{root}/evaluation/ds={run_date}"]),
            "step 'generate': dependency cycle generate -> evaluate -> train -> ingest_clicks -> generate",
        ),
        (
            lambda d: d["steps"]["ingest_clicks"].update(after=["nope"]),
            "step 'ingest_clicks': 'after' names unknown step",
        ),
        (
            lambda d: d["steps"]["train"]["set"].update({"trees.num_treez": 3}),
            "step 'train': unknown key 'trees.num_treez'",
        ),
        (
            lambda d: d["steps"]["train"]["set"].update({"trees.num_trees": "many"}),
            "step 'train': trees.num_trees: expected int, got string 'many'",
        ),
        (lambda d: d["steps"]["evaluate"].update(inputs=["{root}/{rundate}"]), "step 'evaluate': unknown placeholder"),
        (lambda d: d["steps"]["evaluate"].update(outptus=[]), "step 'evaluate': unknown key 'outptus'"),
    ],
)
def test_validation_errors_name_the_step(tmp_path, change, message):
    data = demo_definition()
    change(data)
    with pytest.raises(PipelineError) as err:
        pipeline_of(data, tmp_path)
    assert message in str(err.value)


def test_missing_input_is_an_error_naming_the_step(spark, tmp_path):
    pipeline = pipeline_of(demo_definition(("ingest_clicks", "train")), tmp_path)
    with pytest.raises(
        PipelineError,
        match=rf"step 'ingest_clicks': input {tmp_path}/raw/clicks/ds={D1} is not "
        r"produced by any step and does not exist",
    ):
        make_plan(pipeline, D1, HadoopFS(spark))
    (tmp_path / "raw" / "clicks" / f"ds={D1}").mkdir(parents=True)
    assert [p.action for p in make_plan(pipeline, D1, HadoopFS(spark))] == ["run", "run"]


def test_dry_run_prints_the_plan_and_runs_nothing(spark, tmp_path, capsys):
    definition = write_definition(tmp_path / "p.yaml", demo_definition())
    assert (
        main(
            [
                "run",
                str(definition),
                "--root",
                str(tmp_path / "out"),
                "--from",
                D1,
                "--to",
                D2,
                "--dry-run",
                "--mode",
                "subprocess",
            ],
            spark=spark,
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.count("4 of 4 steps would run") == 2 and f"run date {D2}, mode subprocess" in printed
    assert "  3. train          RUN   not committed: " in printed
    assert "[job train_gbdt_lr after ingest_clicks]" in printed
    assert f"-m pipelines job ingest --set input.path={tmp_path}/out/raw/clicks/ds={D1} " in printed
    assert f"--run-date {D2} --spark-conf {ROOT}/conf/spark/test.yaml" in printed
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as stop:
        main(["run", str(definition), "--dry-run"])
    assert stop.value.code == 2 and "give --run-date" in capsys.readouterr().err


def test_cron_line_and_dag_text(tmp_path):
    pipeline = load_pipeline(DEMO, str(tmp_path))
    comment, line = cron_line(pipeline, python="/venv/bin/python").splitlines()
    assert comment.startswith("# clicks_demo: 0 3 * * *")
    assert line.startswith(f"0 3 * * * cd {ROOT} && ")
    assert (
        f"/venv/bin/python -m pipelines run {DEMO} --retries 1 --retry-delay 300 "
        '--run-date "$(date -u -d yesterday +\\%F)"' in line
    )
    assert "flock -n /tmp/pipelines-clicks_demo.lock" in line


# --- runs -------------------------------------------------------------------------------------------------------


def test_failure_names_the_step_and_a_rerun_resumes_there(spark, tmp_path, capsys):
    """ingest made to fail by an override (no malformed rows allowed); the fixed re-run skips generate."""
    failing = pipeline_of(
        demo_definition(("generate", "ingest_clicks"), ingest_clicks={"max_malformed_fraction": 0.0}), tmp_path
    )
    with pytest.raises(StepFailed) as err:
        Runner(failing, "session", spark=spark).run(D1)
    assert err.value.step == "ingest_clicks" and "are malformed, above max_malformed_fraction" in err.value.reason
    failed = last_manifest(failing, D1)
    assert failed["status"] == "failed" and statuses(failed) == {"generate": "ran", "ingest_clicks": "failed"}
    assert "malformed" in failed["steps"][1]["error"]
    assert "re-run the same command to resume at step 'ingest_clicks'" in capsys.readouterr().err
    generated = success_mtimes(failing, D1, ["generate"])

    fixed = pipeline_of(demo_definition(("generate", "ingest_clicks")), tmp_path)
    resumed = Runner(fixed, "session", spark=spark).run(D1).data
    assert statuses(resumed) == {"generate": "skipped", "ingest_clicks": "ran"}
    assert success_mtimes(fixed, D1, ["generate"]) == generated


def test_backfill_then_skip_then_force(spark, tmp_path, capsys):
    data = demo_definition(("generate", "ingest_clicks"))
    definition = write_definition(tmp_path / "p.yaml", data)
    out = tmp_path / "out"
    args = ["run", str(definition), "--root", str(out), "--mode", "session"]
    assert main([*args, "--from", D1, "--to", D2], spark=spark) == 0
    printed = capsys.readouterr().out
    pipeline = pipeline_of(data, out)
    for day in (D1, D2):
        assert statuses(last_manifest(pipeline, day)) == {"generate": "ran", "ingest_clicks": "ran"}
        assert spark.read.parquet(str(out / "clean" / "clicks" / f"ds={day}")).count() > 900
        assert f"{day} succeeded manifest: " in printed and f"{day} report: " in printed
    # the whole table holds both dates as partitions
    assert sorted(
        r.ds.isoformat() for r in spark.read.parquet(str(out / "clean" / "clicks")).select("ds").distinct().collect()
    ) == [D1, D2]
    before = success_mtimes(pipeline, D1, ["generate", "ingest_clicks"])
    assert main([*args, "--run-date", D1], spark=spark) == 0
    assert statuses(last_manifest(pipeline, D1)) == {"generate": "skipped", "ingest_clicks": "skipped"}
    assert success_mtimes(pipeline, D1, ["generate", "ingest_clicks"]) == before
    assert main([*args, "--run-date", D1, "--force"], spark=spark) == 0
    forced = last_manifest(pipeline, D1)
    assert statuses(forced) == {"generate": "ran", "ingest_clicks": "ran"} and forced["force"] is True
    after = success_mtimes(pipeline, D1, ["generate", "ingest_clicks"])
    assert all(after[p] > before[p] for p in before)
    assert len(manifests(pipeline, D1)) == 3 and len(manifests(pipeline, D2)) == 1


def _kill_while_training(definition: Path, root: Path) -> dict:
    """Start the whole pipeline in subprocess mode and kill its process group once the train job runs."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines",
            "run",
            str(definition),
            "--run-date",
            D1,
            "--root",
            str(root),
            "--mode",
            "subprocess",
        ],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "3/4 train (train_gbdt_lr): running" in line:
                break
        for line in proc.stderr:  # wait until the train job's own JVM is at work
            seen.append(line)
            if "[train_gbdt_lr " in line:
                break
        time.sleep(1.0)
        assert proc.poll() is None, "".join(seen[-30:])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return {"log": "".join(seen)}


@pytest.mark.slow  # a whole pipeline twice plus a killed subprocess run: about 70 s; resumption after a failure
def test_killed_run_resumes_with_identical_outputs(spark, tmp_path):  # stays in the default tier (below)
    data = demo_definition()
    reference = pipeline_of(data, tmp_path / "reference")
    done = Runner(reference, "session", spark=spark).run(D1).data
    assert statuses(done) == dict.fromkeys(reference.steps, "ran")

    killed_root = tmp_path / "killed"
    killed = pipeline_of(data, killed_root)
    info = _kill_while_training(write_definition(tmp_path / "p.yaml", data), killed_root)
    dead = last_manifest(killed, D1)
    assert dead["status"] == "running", info["log"][-3000:]
    assert statuses(dead) == {"generate": "ran", "ingest_clicks": "ran", "train": "running", "evaluate": "pending"}
    assert dead["steps"][2]["command"][1:5] == ["-m", "pipelines", "job", "train_gbdt_lr"]
    assert not (killed_root / "gbdt_lr" / "test_scores" / f"ds={D1}").exists()
    finished = success_mtimes(killed, D1, ["generate", "ingest_clicks"])

    resumed = Runner(killed, "session", spark=spark).run(D1).data
    assert statuses(resumed) == {"generate": "skipped", "ingest_clicks": "skipped", "train": "ran", "evaluate": "ran"}
    assert success_mtimes(killed, D1, ["generate", "ingest_clicks"]) == finished
    assert not list(killed_root.rglob("_staging"))

    def table(root: Path, rel: str, drop: tuple[str, ...] = ()):
        df = spark.read.parquet(str(root / rel / f"ds={D1}")).drop(*drop)
        return df.orderBy(*df.columns)

    assert_df_equality(table(killed_root, "clean/clicks"), table(tmp_path / "reference", "clean/clicks"))
    # the model version names the Spark application and start time; everything else must match
    assert_df_equality(
        table(killed_root, "gbdt_lr/test_scores", ("model_version",)),
        table(tmp_path / "reference", "gbdt_lr/test_scores", ("model_version",)),
    )
    evaluations = [
        json.loads((r / "evaluation" / f"ds={D1}" / "evaluation.json").read_text())
        for r in (killed_root, tmp_path / "reference")
    ]
    assert evaluations[0]["roc_auc"] == evaluations[1]["roc_auc"] and evaluations[0]["rows"] == evaluations[1]["rows"]


def test_manifest_content(spark, tmp_path):
    pipeline = pipeline_of(demo_definition(("generate", "ingest_clicks")), tmp_path)
    [manifest] = run_dates(Runner(pipeline, "session", spark=spark, argv=["run", "x"]), [D1])
    m = json.loads(Path(manifest.path).read_text())
    assert manifest.path.startswith(f"{tmp_path}/_runs/ds={D1}/")
    assert {k: m[k] for k in ("pipeline", "run_date", "mode", "status", "version", "command")} == {
        "pipeline": "clicks_demo",
        "run_date": D1,
        "mode": "session",
        "status": "succeeded",
        "version": "0.1.0",
        "command": ["run", "x"],
    }
    assert len(m["git"]["revision"]) == 40 and m["duration_s"] > 0
    generate, ingest = m["steps"]
    assert generate["status"] == ingest["status"] == "ran" and ingest["depends_on"] == ["generate"]
    assert {o["key"]: o["rows"] for o in generate["outputs"]}["clicks"] == 1000
    assert generate["config"]["size"] == 0.02 and generate["metrics"]["datagen"]["size"] == 0.02
    [source] = ingest["inputs"]
    assert source["path"] == f"{tmp_path}/raw/clicks/ds={D1}"
    assert source["id"] == f"token:{generate['outputs'][0]['token']}"  # the producing run's commit token
    [clean] = ingest["outputs"]
    counted = ingest["metrics"]["ingest"]["output"]
    assert clean["rows"] == counted["rows_good"] == spark.read.parquet(clean["path"]).count()
    assert counted["rows_good"] + counted["rows_quarantined"] == 1000
    assert ingest["config"]["input"]["options"] == {"header": "true"} and ingest["duration_s"] > 0
