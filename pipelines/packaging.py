"""Build what ``spark-submit`` ships to executors: the ``--py-files`` zip of ``pipelines`` (with its package
data) and ``udfs``, and a packed environment of the runtime requirements for ``--archives <env>#environment``
with ``spark.pyspark.python=./environment/bin/python``.

Usage: ``python -m pipelines.packaging [DEST_DIR] [--env]`` prints the path of each archive it wrote.

The environment is packed with venv-pack, one of the three ways PySpark's "Python Package Management" page
describes: the project makes virtualenvs, not conda environments (conda-pack), and a venv-pack tarball is
unpacked by Spark itself into each executor's working directory, where a PEX (one more build tool) unpacks itself
into the home directory of whoever runs the executor. venv-pack does not pack the interpreter: the packed
``bin/python`` links to the base Python that built it, which every node must have at the same path (conda-pack
would ship the interpreter too, at the price of a conda installation).

What goes in: ``install_requires`` of setup.cfg pinned by constraints.txt, without PySpark (executors' Python
workers import the cluster's own, from ``SPARK_HOME``, which must be the driver's version anyway) and without the
project (the zip carries it, so a code change rebuilds a small zip, not the environment). The environment is
rebuilt only when those requirements, the pins or the Python change (a stamp beside the archive).
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from pipelines import __version__
from pipelines.resources import PACKAGE_PARENT

PACKAGES = ("pipelines", "udfs")
CONSTRAINTS = PACKAGE_PARENT / "constraints.txt"
FROM_SPARK_HOME = {"pyspark"}


class PackagingError(Exception):
    """An archive could not be built (the message says why)."""


def _sources() -> list[Path]:
    """Source and data files of the packages; links are followed, since ``pipelines/conf`` links to ``conf/``
    in a checkout (its YAML files are package data)."""
    found = [
        Path(top) / name
        for package in PACKAGES
        for top, _, names in os.walk(PACKAGE_PARENT / package, followlinks=True)
        for name in names
    ]
    return sorted(p for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc")


def _partial(archive: Path) -> Path:
    """Where ``archive`` is written before it is renamed into place (same directory, same suffixes)."""
    return archive.with_name(f".{os.getpid()}.{archive.name}")


def build_pyfiles(dest_dir: str | Path) -> Path:
    """Zip the importable packages (sources only) and return the archive's path; the zip is written
    beside its final name and renamed, so a reader never sees half an archive."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"spark_ml_pipelines-{__version__}.zip"
    partial = _partial(archive)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _sources():
            zf.write(path, path.relative_to(PACKAGE_PARENT).as_posix())
    os.replace(partial, archive)
    return archive


def ensure_pyfiles(archive: Path) -> Path:
    """``archive``, rebuilt first when it is missing or older than any source file (a stale zip would ship
    yesterday's code to the executors)."""
    if not archive.is_file() or max(p.stat().st_mtime for p in _sources()) > archive.stat().st_mtime:
        return build_pyfiles(archive.parent)
    return archive


def env_requirements() -> list[str]:
    """setup.cfg's ``install_requires`` less what executors take from ``SPARK_HOME``."""
    config = configparser.ConfigParser()
    config.read(PACKAGE_PARENT / "setup.cfg")
    lines = [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]
    return [line for line in lines if re.match(r"[\w.-]+", line).group().lower() not in FROM_SPARK_HOME]


def env_archive(dest_dir: str | Path) -> Path:
    return Path(dest_dir) / f"spark_ml_pipelines-{__version__}-env.tar.gz"


def _stamp(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".tar.gz") + ".stamp")


def _env_inputs() -> str:
    """Everything the environment is made from: the base Python, the requirements and their pins."""
    return "\n".join(
        [f"python {sys.version.split()[0]} at {sys.base_prefix}", *env_requirements(), CONSTRAINTS.read_text()]
    )


def _say(message: str) -> None:
    print(f"packaging: {message}", file=sys.stderr, flush=True)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def build_env(dest_dir: str | Path, build_dir: str | Path = PACKAGE_PARENT / "build") -> Path:
    """Make a virtualenv of the requirements under ``build_dir``, pack it with venv-pack into ``dest_dir`` (written
    beside its final name and renamed) and return the archive's path; the virtualenv is removed afterwards."""
    try:
        import venv_pack
    except ImportError:
        raise PackagingError("venv-pack is not installed: pip install -c constraints.txt '.[dist]'") from None
    archive = env_archive(dest_dir)
    archive.parent.mkdir(parents=True, exist_ok=True)
    Path(build_dir).mkdir(parents=True, exist_ok=True)
    inputs, requirements, started = _env_inputs(), env_requirements(), time.time()
    venv = Path(tempfile.mkdtemp(prefix="env-", dir=build_dir))
    try:
        _say(f"making a virtualenv in {venv}")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        _say(f"installing {' '.join(requirements)} (pinned by {CONSTRAINTS.name})")
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(venv / "bin" / "python"),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-c",
                    str(CONSTRAINTS),
                    *requirements,
                ],
                check=True,
            )
        except subprocess.CalledProcessError:
            raise PackagingError(f"pip could not install the requirements into {venv}") from None
        unpacked = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
        _say(f"packing {_megabytes(unpacked)} with venv-pack")
        partial = _partial(archive)
        venv_pack.pack(prefix=str(venv), output=str(partial), format="tar.gz", force=True)
        partial.chmod(0o644)  # venv-pack writes it private; the zip is not
        os.replace(partial, archive)
        _stamp(archive).write_text(inputs)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
    _say(
        f"wrote {archive} ({_megabytes(archive.stat().st_size)}, {_megabytes(unpacked)} unpacked) "
        f"in {time.time() - started:.0f} s"
    )
    return archive


def ensure_env(dest_dir: str | Path) -> Path:
    """The packed environment in ``dest_dir``, built first when it is missing or its requirements, their pins or
    the Python changed since it was built."""
    archive = env_archive(dest_dir)
    stamp = _stamp(archive)
    if archive.is_file() and stamp.is_file() and stamp.read_text() == _env_inputs():
        _say(f"{archive} is current")
        return archive
    return build_env(dest_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.packaging", description=__doc__.split("\n\n")[0])
    parser.add_argument("dest_dir", nargs="?", type=Path, default=PACKAGE_PARENT / "dist", help="default: dist/")
    parser.add_argument("--env", action="store_true", help="also the packed environment, when out of date")
    args = parser.parse_args(argv)
    try:
        print(build_pyfiles(args.dest_dir))
        if args.env:
            print(ensure_env(args.dest_dir))
    except (PackagingError, OSError) as error:
        sys.exit(f"packaging: {error}")


if __name__ == "__main__":
    main()
