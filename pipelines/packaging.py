"""Build the zip that ``spark-submit --py-files`` ships to executors: ``pipelines`` and ``udfs``.

Usage: ``python -m pipelines.packaging DEST_DIR`` prints the path of the zip it wrote.
"""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from pipelines import __version__

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "udfs")


def build_pyfiles(dest_dir: str | Path) -> Path:
    """Zip the importable packages (sources only) and return the archive's path."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"spark_ml_pipelines-{__version__}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in PACKAGES:
            for path in sorted((ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    zf.write(path, path.relative_to(ROOT).as_posix())
    return archive


if __name__ == "__main__":
    print(build_pyfiles(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist"))
