"""Build the zip that ``spark-submit --py-files`` ships to executors: ``pipelines`` (with its package data) and
``udfs``.

Usage: ``python -m pipelines.packaging DEST_DIR`` prints the path of the zip it wrote.
"""
from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

from pipelines import __version__

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "udfs")


def _sources() -> list[Path]:
    """Source and data files of the packages; links are followed, since ``pipelines/conf`` links to ``conf/``
    in a checkout (its YAML files are package data)."""
    found = [Path(top) / name for package in PACKAGES
             for top, _, names in os.walk(ROOT / package, followlinks=True) for name in names]
    return sorted(p for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc")


def build_pyfiles(dest_dir: str | Path) -> Path:
    """Zip the importable packages (sources only) and return the archive's path; the zip is written
    beside its final name and renamed, so a reader never sees half an archive."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"spark_ml_pipelines-{__version__}.zip"
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _sources():
            zf.write(path, path.relative_to(ROOT).as_posix())
    os.replace(partial, archive)
    return archive


def ensure_pyfiles(archive: Path) -> Path:
    """``archive``, rebuilt first when it is missing or older than any source file (a stale zip would ship
    yesterday's code to the executors)."""
    if not archive.is_file() or max(p.stat().st_mtime for p in _sources()) > archive.stat().st_mtime:
        return build_pyfiles(archive.parent)
    return archive


if __name__ == "__main__":
    print(build_pyfiles(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist"))
