"""scripts/check_env.sh: one line saying what to install when Java or Python is missing or too old."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_env.sh"
BASH = shutil.which("bash")


def _fake_java(tmp_path: Path, version_line: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return env


def _run(env, python=sys.executable):
    return subprocess.run([BASH, str(SCRIPT), python], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "line, ok",
    [
        ('openjdk version "17.0.15" 2025-04-15', True),
        ('openjdk version "21" 2023-09-19', True),
        ('openjdk version "11.0.2" 2019-01-15', False),
        ('java version "1.8.0_392"', False),
    ],
)
def test_java_version_gate(tmp_path, line, ok):
    done = _run(_fake_java(tmp_path, line))
    assert (done.returncode == 0) == ok
    if not ok:
        assert done.stderr.count("\n") == 1
        assert "needs Java 17 or newer: install Java 17+" in done.stderr


def test_missing_java_and_python(tmp_path):
    env = {"PATH": str(tmp_path)}  # nothing on it
    done = _run(env)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "install Java 17 or newer" in done.stderr
    done = _run(env, python="python-does-not-exist")
    assert done.returncode == 1 and "install Python 3.10 or newer" in done.stderr
