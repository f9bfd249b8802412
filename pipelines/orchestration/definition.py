"""A pipeline definition (``conf/pipelines/<name>.yaml``): named steps, each a job with overrides, inputs, outputs.

Paths may hold ``{root}`` (the pipeline's root directory) and ``{run_date}`` (YYYY-MM-DD). An output is the
path a job is configured to write; a dated output (the default) is committed to its ``ds=<run_date>``
partition, an undated one (``{path: ..., dated: false}``, e.g. a model) to the path itself. A step depends on
every step whose output path overlaps one of its inputs (same path, or one inside the other), and on the
steps named in ``after``.

Named datasets (``datasets: {history: "{root}/split/history", model: {path: ..., dated: false}}``) state each
path once: a step lists the datasets it writes by name in ``outputs``, and ``{history}`` in a ``set`` value or
an input stands for the committed path of the run date (``{root}/split/history/ds={run_date}``). A dataset a
step's ``set`` refers to and does not write is one of its inputs, so ``inputs`` lists only other paths.
``extends: <definition>`` starts from another definition (a path relative to this file, or a shipped name) and
merges this one over it: mappings key by key, anything else replaced, ``null`` removing a key (a step, say).

Loading validates everything that does not depend on a run date: pipeline and step names (Airflow ids), the
start date, unknown keys, unknown jobs and placeholders, configuration overrides against the job's defaults,
``after`` names and cycles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from pipelines.config import ConfigError, check_date, load_config, read_yaml
from pipelines.errors import UserError
from pipelines.output import overlaps, partition_path, qualify
from pipelines.registry import JOBS
from pipelines.resources import Resource, job_defaults, locate, pipeline_file
from pipelines.tracking import settings as tracking_settings

MODES = ("session", "subprocess")
SUBMITTERS = ("python", "spark-submit")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_AIRFLOW_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")  # Airflow's KEY_REGEX ^[\w.-]+$ in ASCII, at most 250 long
_PIPELINE_KEYS = {
    "name",
    "description",
    "root",
    "mode",
    "schedule",
    "start_date",
    "retries",
    "retry_delay_minutes",
    "spark",
    "datasets",
    "steps",
    "extends",
    "tracking",
}
_BUILT_IN = ("root", "run_date")
_SPARK_KEYS = {"conf_file", "submit", "master", "args", "conf"}
_STEP_KEYS = {"job", "conf", "set", "inputs", "outputs", "after"}
SAMPLE_DATE = "1970-01-01"


class PipelineError(UserError):
    """A pipeline definition or run that cannot go on; the message is one line naming the step."""


def expand(text: str, run_date: str | None = None, root: str | None = None) -> str:
    """Fill ``{root}`` and ``{run_date}``; a placeholder left unfilled stays as it is."""
    values = {"root": root, "run_date": run_date}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)] if values.get(m.group(1)) is not None else m.group(0), text)


def yaml_value(value: Any) -> str:
    """A configuration value as ``--set`` parses it back (strings verbatim, the rest as flow YAML)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()


@dataclass(frozen=True)
class Output:
    path: str  # the path the job writes ({run_date} may remain)
    dated: bool = True  # committed to <path>/ds=<run_date>

    def committed(self, run_date: str) -> str:
        return partition_path(expand(self.path, run_date), run_date if self.dated else None)

    def template(self) -> str:
        """The committed path with ``{run_date}`` left in, for matching inputs to outputs."""
        return f"{self.path.rstrip('/')}/ds={{run_date}}" if self.dated else self.path


@dataclass
class Step:
    name: str
    job: str
    conf: str | None  # a job configuration YAML merged over conf/jobs/<job>.yaml
    overrides: list[tuple[str, Any]]  # dotted key -> value, in order; strings may hold {run_date}
    inputs: list[str]
    outputs: list[Output]
    after: list[str]
    depends_on: list[str] = field(default_factory=list)

    @property
    def defaults_path(self) -> Resource:
        return job_defaults(self.job)

    def set_args(self, run_date: str) -> list[str]:
        """The ``--set KEY=VALUE`` strings of this step for ``run_date`` (``{{ ds }}`` for Airflow)."""
        return [f"{key}={expand(yaml_value(value), run_date)}" for key, value in self.overrides]

    def job_args(self, run_date: str) -> list[str]:
        """Arguments of ``jobs/<job>.py`` for one run date: the same in every mode and in Airflow. The declared
        inputs and outputs go along, for the outputs' lineage and their leases."""
        args = ["--conf", self.conf] if self.conf else []
        for text in self.set_args(run_date):
            args += ["--set", text]
        for flag, paths in (("--input", self.input_paths(run_date)), ("--output", self.output_paths(run_date))):
            for path in paths:
                args += [flag, path]
        return args + ["--run-date", run_date]

    def resolved_config(self, run_date: str) -> dict[str, Any]:
        """The job's configuration as ``jobs/<job>.py`` would resolve it from ``job_args``."""
        try:
            return load_config(self.defaults_path, self.conf, self.set_args(run_date))
        except ConfigError as exc:
            raise PipelineError(f"step '{self.name}': {exc}") from None

    def input_paths(self, run_date: str) -> list[str]:
        return [expand(p, run_date) for p in self.inputs]

    def output_paths(self, run_date: str) -> list[str]:
        return [o.committed(run_date) for o in self.outputs]


@dataclass
class Pipeline:
    name: str
    source: Resource
    root: str
    steps: dict[str, Step]  # in dependency order
    description: str = ""
    mode: str = "session"
    schedule: str | None = "@daily"
    start_date: str = "2026-01-01"
    retries: int = 0
    retry_delay_minutes: float = 5.0
    spark: dict[str, Any] = field(default_factory=dict)
    tracking: dict[str, Any] = field(default_factory=tracking_settings)  # conf/tracking.yaml + `tracking:`

    @property
    def runs_dir(self) -> str:
        """Manifests and HTML reports, one subdirectory per run date (hidden from Spark readers by ``_``)."""
        return f"{self.root}/_runs"

    def producers(self, path_template: str) -> list[str]:
        return [s.name for s in self.steps.values() if any(overlaps(path_template, o.template()) for o in s.outputs)]

    def downstream(self, name: str) -> list[str]:
        return [s.name for s in self.steps.values() if name in s.depends_on]


def _check_id(what: str, value: Any, source: Path) -> str:
    """A pipeline or step name as Airflow takes a DAG or task id, since it becomes one (and a file name)."""
    if not _AIRFLOW_ID.fullmatch(str(value)):
        raise PipelineError(
            f"The {what} in {source} must contain only letters, digits, '_', '-' and '.' "
            f"(at most 250). Got {value!r} instead."
        )
    return str(value)


def _check_keys(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PipelineError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(sorted(allowed))}")


def _flatten(step: str, values: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = "") -> list[tuple]:
    """Nested ``set`` mappings to dotted keys, down to the defaults' leaves (an empty default mapping is a leaf)."""
    if not isinstance(values, Mapping):
        raise PipelineError(f"step '{step}': 'set' must be a mapping of KEY: VALUE, got {values!r}")
    flat: list[tuple[str, Any]] = []
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        node: Any = defaults
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(value, Mapping) and isinstance(node, Mapping) and node:
            flat += _flatten(step, value, defaults, f"{dotted}.")
        else:
            flat.append((dotted, value))
    return flat


def _check_placeholders(step: str, text: str, datasets: Mapping[str, Output]) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in _BUILT_IN and name not in datasets:
            known = ", ".join(f"{{{n}}}" for n in [*_BUILT_IN, *datasets])
            raise PipelineError(f"step '{step}': unknown placeholder '{{{name}}}' in {text!r}; use one of {known}")


def _refer(text: str, datasets: Mapping[str, Output], found: list[str] | None = None) -> str:
    """``text`` with each ``{dataset}`` replaced by the dataset's committed path (``{run_date}`` left in); the
    names replaced are appended to ``found``."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in datasets:
            return match.group(0)
        if found is not None and name not in found:
            found.append(name)
        return datasets[name].template()

    return _PLACEHOLDER.sub(replace, text)


def _datasets(data: Any, root: str, source: Resource) -> dict[str, Output]:
    """The ``datasets`` block: name -> path template, or -> ``{path, dated}``."""
    if not isinstance(data, Mapping):
        raise PipelineError(f"{source}: 'datasets' must be a mapping of name to path, got {data!r}")
    datasets = {}
    for name, item in data.items():
        where = f"{source}: dataset '{name}'"
        if not re.fullmatch(r"[A-Za-z_]\w*", str(name)) or name in _BUILT_IN:
            raise PipelineError(f"{where}: a dataset name must be an identifier other than root and run_date")
        if isinstance(item, Mapping):
            _check_keys(where, item, {"path", "dated"})
            path, dated = item.get("path"), bool(item.get("dated", True))
        else:
            path, dated = item, True
        if not isinstance(path, str) or not path:
            raise PipelineError(f"{where}: expected a path or {{path, dated}}, got {item!r}")
        for placeholder in _PLACEHOLDER.findall(path):
            if placeholder not in _BUILT_IN:
                raise PipelineError(
                    f"{where}: unknown placeholder '{{{placeholder}}}' in {path!r}; use {{root}} or {{run_date}}"
                )
        datasets[str(name)] = Output(qualify(expand(path, root=root)), dated)
    return datasets


def _step(name: str, data: Any, root: str, jobs: list[str], datasets: Mapping[str, Output]) -> Step:
    where = f"step '{name}'"
    if not isinstance(data, Mapping):
        raise PipelineError(f"{where}: expected a mapping with at least 'job', got {data!r}")
    _check_keys(where, data, _STEP_KEYS)
    job = data.get("job")
    if job not in jobs:
        raise PipelineError(f"{where}: unknown job '{job}'; jobs: {', '.join(jobs)}")
    conf = data.get("conf")
    if conf is not None:
        conf = expand(str(conf), root=root)
        found = locate(conf)
        conf = str(found) if isinstance(found, Path) and found.is_file() else qualify(conf)
        if not Path(conf).is_file():
            raise PipelineError(f"{where}: conf file not found: {conf}")

    def path(text: Any) -> str:
        _check_placeholders(name, str(text), datasets)
        return qualify(expand(_refer(str(text), datasets), root=root))

    outputs = []
    for item in data.get("outputs") or []:
        if isinstance(item, str) and item in datasets:
            outputs.append(datasets[item])
        elif isinstance(item, Mapping):
            _check_keys(f"{where} output", item, {"path", "dated"})
            outputs.append(Output(path(item["path"]), bool(item.get("dated", True))))
        else:
            outputs.append(Output(path(item)))
    referred: list[str] = []
    overrides: dict[str, Any] = {}  # a key set twice (by an extended definition, then this one) keeps the last
    for key, value in _flatten(name, data.get("set") or {}, read_yaml(job_defaults(job))):
        _check_placeholders(name, yaml_value(value), datasets)
        overrides[key] = expand(_refer(value, datasets, referred), root=root) if isinstance(value, str) else value
    inputs = [path(p) for p in data.get("inputs") or []]
    written = {o.template() for o in outputs}
    inputs += [t for t in (datasets[n].template() for n in referred) if t not in written and t not in inputs]
    after = data.get("after") or []
    step = Step(
        name, job, conf, list(overrides.items()), inputs, outputs, [after] if isinstance(after, str) else list(after)
    )
    step.resolved_config(SAMPLE_DATE)  # unknown keys and wrong types fail now, naming the step
    return step


def _order(steps: dict[str, Step]) -> list[str]:
    """Dependency order (declaration order among independent steps); a cycle is an error naming a step in it."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = trail[trail.index(name) :] + [name]
            raise PipelineError(f"step '{name}': dependency cycle {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dep in steps[name].depends_on:
            visit(dep, trail + [name])
        state[name] = "done"
        order.append(name)

    for name in steps:
        visit(name, [])
    return order


def build_pipeline(data: Mapping[str, Any], source: Resource, root: str | None = None) -> Pipeline:
    """Validate a parsed definition and infer dependencies; ``root`` replaces the definition's root."""
    _check_keys(str(source), data, _PIPELINE_KEYS)
    name = _check_id("pipeline 'name'", data.get("name") or source.name.removesuffix(".yaml"), source)
    root = qualify(root or expand(str(data.get("root") or f"output/pipelines/{name}"))).rstrip("/")
    spark = dict(data.get("spark") or {})
    _check_keys(f"{source}: spark", spark, _SPARK_KEYS)
    mode = data.get("mode", "session")
    if mode not in MODES:
        raise PipelineError(f"{source}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if spark.get("submit", "python") not in SUBMITTERS:
        raise PipelineError(f"{source}: spark.submit must be one of {', '.join(SUBMITTERS)}, got {spark['submit']!r}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, Mapping) or not raw_steps:
        raise PipelineError(f"{source}: 'steps' must be a non-empty mapping of step name to step")
    try:
        start_date = check_date("start_date", data.get("start_date", "2026-01-01"))
        tracking = tracking_settings(data.get("tracking"))
    except ConfigError as exc:
        raise PipelineError(f"{source}: {exc}") from None
    jobs = list(JOBS)
    datasets = _datasets(data.get("datasets") or {}, root, source)
    names = [_check_id("step name", n, source) for n in raw_steps]
    steps = {n: _step(n, s, root, jobs, datasets) for n, s in zip(names, raw_steps.values())}
    pipeline = Pipeline(
        name=name,
        source=source,
        root=root,
        steps=steps,
        description=data.get("description", ""),
        mode=mode,
        schedule=data.get("schedule", "@daily"),
        start_date=start_date,
        retries=int(data.get("retries", 0)),
        retry_delay_minutes=float(data.get("retry_delay_minutes", 5)),
        spark=spark,
        tracking=tracking,
    )
    for step in steps.values():
        for dep in step.after:
            if dep not in steps:
                raise PipelineError(
                    f"step '{step.name}': 'after' names unknown step '{dep}'; steps: {', '.join(steps)}"
                )
        inferred = {p for i in step.inputs for p in pipeline.producers(i)} - {step.name}
        step.depends_on = [n for n in steps if n in inferred or n in step.after]
    pipeline.steps = {n: steps[n] for n in _order(steps)}
    return pipeline


def merge_definitions(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``: mappings key by key, other values replaced, a ``None`` value removing the
    key."""
    merged = dict(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_definitions(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_definition(source: Resource, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A definition's mapping with its ``extends`` chain merged in (each name and root its own: an extending
    definition without them gets its file name and the default root)."""
    if str(source) in chain:
        raise PipelineError(f"{source}: 'extends' cycle {' -> '.join([*chain, str(source)])}")
    try:
        data = read_yaml(source)
    except ConfigError as exc:
        raise PipelineError(str(exc)) from None
    if not isinstance(data, Mapping):
        raise PipelineError(f"{source}: expected a mapping of pipeline keys, got {type(data).__name__}")
    parent = data.get("extends")
    if parent is None:
        return dict(data)
    beside = source.parent / str(parent) if isinstance(source, Path) else None
    base_source = (
        beside.resolve()
        if beside is not None and beside.is_file()
        else pipeline_file(Path(str(parent)).name.removesuffix(".yaml"))
    )
    if isinstance(base_source, Path) and not base_source.is_file():
        raise PipelineError(
            f"{source}: 'extends' names {parent!r}, which is neither a file beside it nor a shipped definition"
        )
    base = {k: v for k, v in read_definition(base_source, (*chain, str(source))).items() if k not in ("name", "root")}
    return merge_definitions(base, {k: v for k, v in data.items() if k != "extends"})


def load_pipeline(path: str | Path, root: str | None = None) -> Pipeline:
    """Read and validate a pipeline definition: a YAML file, or the name of one the package ships."""
    source = pipeline_file(path)
    source = source.resolve() if isinstance(source, Path) else source
    return build_pipeline(read_definition(source), source, root)
