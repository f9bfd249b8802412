"""The installable package: the job registry, package data in the wheel and the --py-files zip, the console
command, and (slow tier) the wheel installed into a fresh virtualenv running clicks_demo from another directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.packaging import build_pyfiles
from pipelines.registry import JOBS, get_job
from pipelines.resources import job_defaults, shipped_pipelines

ROOT = Path(__file__).resolve().parents[1]
ENTRY_ONLY = {"run_pipeline"}  # jobs/run_pipeline.py runs pipeline definitions, not one job


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built as `pip wheel .` builds it (an isolated build, from a copy of the tree)."""
    dest = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dest), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and "No matching distribution" in done.stderr:
        pytest.skip(f"the build backend could not be installed (no package index?): {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    return next(dest.glob("spark_ml_pipelines-*.whl"))


def test_registry_jobs_defaults_and_entry_files_are_the_same_set():
    entry_files = {p.stem for p in (ROOT / "jobs").glob("*.py")} - ENTRY_ONLY
    defaults = {p.stem for p in (ROOT / "conf" / "jobs").glob("*.yaml")}
    assert set(JOBS) == entry_files == defaults
    for name, job in JOBS.items():
        assert callable(job.main), name
        assert load_config(job_defaults(name)), name
        assert f'run_job("{name}")' in (ROOT / "jobs" / f"{name}.py").read_text(), name


def test_unknown_job_is_one_line_naming_the_jobs(capsys):
    from pipelines.job_runtime import run_job

    assert run_job("no_such_job", []) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: unknown job 'no_such_job'; jobs: {', '.join(JOBS)}"]
    with pytest.raises(ValueError, match="unknown job 'x'"):
        get_job("x")


def test_wheel_holds_conf_definitions_stop_words_and_the_console_command(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    assert {f"pipelines/conf/jobs/{job}.yaml" for job in JOBS} <= names
    assert {f"pipelines/conf/pipelines/{p}.yaml" for p in shipped_pipelines()} <= names
    assert {"pipelines/conf/spark/local.yaml", "pipelines/conf/spark/cluster.yaml"} <= names
    assert "pipelines/conf/tracking.yaml" in names
    assert {"pipelines/text/stopwords/english.txt", "pipelines/text/stopwords/chinese.txt"} <= names
    assert not any(n.startswith(("tests/", "jobs/", "benchmarks/")) for n in names)
    assert "spark-ml-pipelines = pipelines.orchestration.command:main" in entry_points
    requires = metadata.get_all("Requires-Dist")
    runtime = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("pyspark") and ">=4.1" in r and "<5" in r for r in runtime), runtime
    assert not any("==" in r for r in runtime), runtime  # ranges; exact pins live in constraints.txt
    assert metadata["Version"] == __import__("pipelines").__version__


def test_pyfiles_zip_carries_the_job_defaults_a_driver_reads_from_it(tmp_path):
    """A driver whose only copy of the package is the zip (spark-submit from a machine without the checkout)
    still finds every job's defaults and the shipped definitions."""
    archive = build_pyfiles(tmp_path)
    probe = (
        "import pipelines, json; from pipelines.resources import job_defaults, shipped_pipelines; "
        "from pipelines.config import read_yaml; from pipelines.tracking import settings; "
        "print(json.dumps([pipelines.__file__, read_yaml(job_defaults('ingest'))['output']['path'] is not None "
        "and settings()['enabled'], shipped_pipelines()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(archive)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    location, has_defaults, pipelines = json.loads(done.stdout)
    assert location.startswith(str(archive)) and has_defaults
    assert pipelines == shipped_pipelines()


@pytest.mark.slow
def test_wheel_in_a_fresh_virtualenv_runs_clicks_demo_from_another_directory(wheel, tmp_path):
    """`pip install <wheel>` into a new virtualenv outside the checkout; its console command runs the shipped
    clicks_demo pipeline end to end with the working directory elsewhere. The virtualenv takes the third-party
    libraries from this environment's site-packages (a path in a .pth file, so this environment's own .pth files,
    the editable install's among them, are not read) instead of downloading them again."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, timeout=300)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update(PYSPARK_PYTHON=str(python), PYSPARK_DRIVER_PYTHON=str(python), SPARK_LOCAL_IP="127.0.0.1")
    where = subprocess.run(
        [str(python), "-c", "import pipelines; print(pipelines.__file__)"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    out = tmp_path / "out"
    done = subprocess.run(
        [
            str(venv / "bin" / "spark-ml-pipelines"),
            "run",
            "clicks_demo",
            "--run-date",
            "2026-11-20",
            "--root",
            str(out),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    manifest = json.loads(next((out / "_runs" / "ds=2026-11-20").glob("*/manifest.json")).read_text())
    assert manifest["status"] == "succeeded"
    assert [s["status"] for s in manifest["steps"]] == ["ran"] * 4
    assert manifest["steps"][-1]["metrics"]["evaluation"]["roc_auc"] > 0.5
    assert not list(workdir.iterdir())  # nothing written into the working directory
