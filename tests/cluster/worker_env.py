"""Each standalone worker's own Python: a virtualenv holding copies of the package's runtime requirements.

Executors then run neither the driver's interpreter nor its site-packages (where the editable install would
put the working tree on ``sys.path``): ``pipelines`` reaches them only in the ``--py-files`` zip, and
``pyspark`` from ``SPARK_HOME``, as on a cluster node. Copying about 600 MB took 3-4 s a worker here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PROJECT = "spark-ml-pipelines"
FROM_SPARK_HOME = {"pyspark", "py4j"}


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions() -> list[metadata.Distribution]:
    """The project's ``install_requires`` and what they require in turn (no extras, no pyspark)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [_key(r.name) for r in map(Requirement, metadata.requires(PROJECT) or []) if not r.marker]
    while todo:
        name = todo.pop()
        if name in seen or name in FROM_SPARK_HOME:
            continue
        seen[name] = dist = metadata.distribution(name)
        todo += [
            _key(r.name)
            for r in map(Requirement, dist.requires or [])
            if not r.marker or r.marker.evaluate({"extra": ""})
        ]
    return list(seen.values())


def make_bare_python(dest: Path) -> Path:
    """A virtualenv at ``dest`` of the base interpreter with nothing installed, not even pip; returns its
    ``python``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    return dest / "bin" / "python"


def make_worker_python(dest: Path) -> Path:
    """A bare virtualenv at ``dest`` with its own copy of the runtime requirements; returns its ``python``."""
    python = make_bare_python(dest)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for dist in runtime_distributions():
        for file in dist.files or []:
            source = Path(dist.locate_file(file))
            if ".." in file.parts or not source.is_file():
                continue
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            if os.access(source, os.X_OK):
                target.chmod(0o755)
    return python
