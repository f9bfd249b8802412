"""What the package ships beside its code: job defaults, pipeline definitions and Spark settings.

In a checkout they are ``conf/`` (``pipelines/conf`` links to it); in a wheel, an installed package or the
``--py-files`` zip they are package data inside ``pipelines``. Files are read through ``importlib.resources``,
so they are found wherever the package was imported from, a zip included.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Union

try:
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

Resource = Union[Path, Traversable]
CONF = files("pipelines") / "conf"
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


def job_defaults(job: str) -> Resource:
    """``conf/jobs/<job>.yaml``: every configuration key of a job with its default."""
    return CONF / "jobs" / f"{job}.yaml"


def spark_settings(name: str = "local") -> Resource:
    """``conf/spark/<name>.yaml``: a master and ``spark.*`` settings (``local`` for laptops and tests)."""
    return CONF / "spark" / f"{name}.yaml"


def shipped_pipelines() -> list[str]:
    """Names of the pipeline definitions in ``conf/pipelines``."""
    return sorted(p.name[:-5] for p in (CONF / "pipelines").iterdir() if p.name.endswith(".yaml"))


def locate(path: str | Path) -> Resource:
    """A configuration file named by the user: absolute, or relative to the working directory, else the file
    the package ships under that name (``conf/spark/local.yaml``); the path as given when neither exists."""
    given = Path(path)
    if given.is_absolute() or given.is_file():
        return given.resolve()
    parts = given.parts
    if len(parts) > 1 and parts[0] == "conf" and ".." not in parts:
        shipped = files("pipelines").joinpath(*parts)
        if shipped.is_file():
            return shipped
    return given


def pipeline_file(name_or_path: str | Path) -> Resource:
    """A pipeline definition: a YAML file, or the name of one the package ships (``clicks_demo``)."""
    given = Path(name_or_path)
    if not given.is_file() and given.suffix == "" and len(given.parts) == 1:
        shipped = CONF / "pipelines" / f"{given.name}.yaml"
        if shipped.is_file():
            return shipped
    return locate(given)


def checkout() -> Path | None:
    """The source checkout the package runs from (it has ``jobs/`` and ``setup.cfg``), or None when installed."""
    if (PACKAGE_PARENT / "jobs").is_dir() and (PACKAGE_PARENT / "setup.cfg").is_file():
        return PACKAGE_PARENT
    return None
