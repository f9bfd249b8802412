"""Every job: --help, one-line configuration errors, and spark-submit honouring --master."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.session import load_spark_yaml
from tests.conftest import JAVA_OPTIONS, ROOT

# run_pipeline.py runs a pipeline definition (conf/pipelines/), not a job with conf/jobs/<job>.yaml.
RUNNER = ROOT / "jobs" / "run_pipeline.py"
JOBS = sorted(p for p in (ROOT / "jobs").glob("*.py") if p.name != "__init__.py" and p != RUNNER)


def _env():
    return {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def spark_submit() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def _run_as_main(job: Path, argv: list[str], monkeypatch) -> int:
    """Run a job file as ``python jobs/<job>.py <argv>`` does, but in this interpreter; its exit code."""
    monkeypatch.setattr(sys, "argv", [str(job), *argv])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(job), run_name="__main__")
    return exited.value.code


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.stem)
def test_help_lists_usage_and_configuration_keys(job, monkeypatch, capsys):
    """The job file's own ``__main__`` in this interpreter (each one also starts a fresh interpreter in
    test_bad_conf_key_is_one_line_listing_valid_keys, and run_pipeline.py in test_pipeline_runner_help)."""
    assert _run_as_main(job, ["--help"], monkeypatch) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"usage: jobs/{job.name}")
    assert "--conf FILE" in stdout and "--set KEY=VALUE" in stdout and "--run-date" in stdout
    assert f"configuration keys (defaults from conf/jobs/{job.stem}.yaml, shipped in the package)" in stdout


def test_pipeline_runner_help():
    done = subprocess.run(
        [sys.executable, str(RUNNER), "--help"], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: spark-ml-pipelines run") and "--run-date" in done.stdout


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.stem)
def test_bad_conf_key_is_one_line_listing_valid_keys(job):
    done = subprocess.run(
        [sys.executable, str(job), "--set", "no_such_key=1"], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: unknown key 'no_such_key'; valid keys: ")


def test_help_through_spark_submit():
    done = subprocess.run(
        [spark_submit(), "--driver-java-options", JAVA_OPTIONS, str(ROOT / "jobs" / "ingest.py"), "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: jobs/ingest.py" in done.stdout


def _submit_generate(out: Path, *spark_args: str, job_args: tuple[str, ...] = ()) -> dict:
    """``spark-submit <spark_args> jobs/generate_demo_data.py`` (500 clicks); its clicks output's metrics."""
    done = subprocess.run(
        [
            spark_submit(),
            *spark_args,
            "--driver-java-options",
            JAVA_OPTIONS,
            str(ROOT / "jobs" / "generate_demo_data.py"),
            "--set",
            "size=0.01",
            "--set",
            f"output.path={out}",
            *job_args,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "clicks" / "_metrics.json").read_text())
    assert metrics["rows_out"]["clicks"] == 500
    return metrics["spark"]


def test_spark_submit_master_and_conf_win_over_an_explicit_spark_conf(tmp_path):
    spark = _submit_generate(
        tmp_path / "raw",
        "--master",
        "local[1]",
        "--conf",
        "spark.sql.shuffle.partitions=3",
        job_args=("--spark-conf", str(ROOT / "conf" / "spark" / "local.yaml")),
    )
    assert spark["master"] == "local[1]"  # conf/spark/local.yaml says local[*]
    assert spark["shuffle_partitions"] == 3  # --conf beats the YAML's 8
    assert spark["default_parallelism"] == 4  # unset by spark-submit: filled from the YAML
    assert spark["settings"]["spark.sql.shuffle.partitions"] == "3"


def test_spark_submit_without_settings_adds_none(tmp_path):
    """Under spark-submit a job adds no Spark setting of its own: Spark's defaults stay, as on a cluster whose
    spark-defaults.conf does not set them, and the metrics record what was in effect."""
    spark = _submit_generate(tmp_path / "raw", "--master", "local[1]", "--conf", "spark.ui.enabled=false")
    assert spark["shuffle_partitions"] == 200  # Spark's own default, not local.yaml's 8
    local = load_spark_yaml(ROOT / "conf" / "spark" / "local.yaml")["conf"]
    assert not set(local) & set(spark["settings"]), spark["settings"]
    assert spark["settings"]["spark.master"] == "local[1]" and spark["settings"]["spark.ui.enabled"] == "false"
