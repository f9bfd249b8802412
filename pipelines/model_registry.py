"""The MLflow model registry: every model a tracked job commits is a model version, and ``models:/`` URIs name
a model wherever a job reads one.

**Registering** (``register_models``, when a tracked job succeeded): each output the job staged with
``JobContext.stage_model`` becomes a new version of the registered model its ``registry.name`` names (empty: the
job's name, or ``<experiment>.<step>`` for a pipeline step, e.g. ``demo.rank``). The version belongs to the job's
run (whose params and metrics are all there) and carries tags: the run date, job, step, the committed path, the
output's lineage token and the deciding metric with its value; its description says the same in one line.

**What the version points at** (``tracking.yaml`` ``registry.source``):

- ``snapshot`` (default): the committed model directory, copied into the run's artifacts (``models/<output>``)
  as hard links, file by file, when both are on this machine's file system: no byte is copied, and the version
  stays what it was when the job committed it. A committed model is never written again (the next run commits
  a new directory with new files in its place), so a linked file keeps its contents however often the job
  re-trains. A plain copy replaces a link only where linking fails (another file system); an artifact store
  elsewhere (a tracking server) gets an upload, the only way for the version to outlive the next training.
- ``reference``: the committed path itself. Nothing is copied, but an undated model's path holds only the
  latest training: resolving an older version then fails (its lineage token no longer matches) and a rollback
  to it cannot load. Fit for dated models (``build_pq``, ``build_tfidf``) on a file system that cannot link.

**The alias** (``registry.alias``, default ``champion``) moves to the new version when its ``registry.metric``
(a dotted number of the job's ``_metrics.json``) is at least the alias holder's (at most, with
``registry.greater_is_better: false``), when no version holds the alias yet, or when no metric is configured.
Rolling back is moving the alias back: ``set_alias`` (or ``spark-ml-pipelines models NAME --set VERSION``).

**Resolving** (``resolve_model``): ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` in a job's
configuration is replaced by the version's model directory before the job reads anything (``resolve_config``,
from ``JobContext``), so ``score``, ``search_pq``, ``predict_text``, ``evaluate_embeddings`` and the recommender's
``recall_candidates`` take one. The store is ``$MLFLOW_TRACKING_URI``, else ``tracking.uri``, else a job's own
default (``output/mlruns.db``); a pipeline step resolves in its pipeline's store.

mlflow is imported only to register (tracking on) or to resolve a ``models:/`` URI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pipelines.errors import ModelError
from pipelines.fs import FS, local_file
from pipelines.output import METRICS_FILE
from pipelines.tracking import (
    JOB_ROOT,
    Run,
    flat_numbers,
    mlflow_name,
    open_client,
    settings,
    store,
    warn_untracked,
)

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext

SCHEME = "models:/"
_URI = re.compile(r"^models:/(?P<name>[^/@:]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))/?$")
SOURCES = ("snapshot", "reference")


@dataclass(frozen=True)
class ResolvedModel:
    uri: str
    name: str
    version: str
    path: str


def is_model_uri(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith(SCHEME)


def registry_uri(uri: str | None = None) -> str:
    """The store to resolve in: ``uri``, else ``$MLFLOW_TRACKING_URI`` or ``tracking.uri``, else the default store
    of a job run on its own."""
    if uri:
        return uri
    conf = settings()
    return store(conf, conf["root"] or JOB_ROOT)[0]


def registry_client(uri: str | None = None) -> Any:
    return open_client(registry_uri(uri), settings())


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _version_path(source: str) -> str:
    """A version's source as a path Spark reads: ``file:`` URIs as local paths, others (hdfs:, s3a:) as they are."""
    return local_file(source) or source


def resolve_model(uri: str, tracking_uri: str | None = None, fs: FS | None = None) -> ResolvedModel:
    """The model directory of ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; with ``fs``, also checks
    that it still holds the registered run's model (its lineage token)."""
    found = _URI.match(uri.strip())
    if not found:
        raise ModelError(f"{uri}: not a model URI; expected models:/<name>@<alias> or models:/<name>/<version>")
    name, alias, number = found.group("name", "alias", "version")
    where = registry_uri(tracking_uri)
    try:
        client = open_client(where, settings())
        version = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, number)
    except ImportError:
        raise ModelError(
            f"{uri}: resolving a models:/ URI needs mlflow (pip install the package's tracking extra)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - mlflow's errors (missing model, alias, store) told in one line
        raise ModelError(f"{uri}: not found in the model registry at {where} ({one_line(exc)})") from None
    path = _version_path(version.source)
    token = version.tags.get("lineage_token")
    if fs is not None and token:
        try:
            held = json.loads(fs.read_text(f"{path}/{METRICS_FILE}"))["lineage"]["token"]
        except (OSError, ValueError, KeyError):
            held = None
        if held != token:
            raise ModelError(
                f"{uri}: version {version.version} refers to {path}, which no longer holds the model "
                f"that version registered (re-committed or removed since); register with "
                f"tracking registry.source snapshot to keep every version loadable"
            )
    return ResolvedModel(uri.strip(), name, str(version.version), path)


def resolve_config(
    config: dict[str, Any], tracking_uri: str | None = None, fs: FS | None = None
) -> dict[str, dict[str, str]]:
    """Replace every ``models:/`` value of ``config`` (in place) by its model directory; what was resolved, by
    dotted key (for the job's metrics)."""
    resolved: dict[str, dict[str, str]] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        # the tree itself, not dotted names: keys may hold dots (unpack_archive's members: {ratings.csv: ...})
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif is_model_uri(value):
                found = resolve_model(value, tracking_uri, fs)
                node[key] = found.path
                resolved[f"{prefix}{key}"] = {
                    "uri": found.uri,
                    "name": found.name,
                    "version": found.version,
                    "path": found.path,
                }

    walk(config, "")
    return resolved


def link_tree(source: Path, target: Path) -> None:
    """``target`` as a copy of the directory ``source`` made of hard links, file by file (a copy where linking
    fails: another file system). A file already at ``target`` is an error: writing over it would change the
    files it is a link of."""
    for folder, _, files in os.walk(source):
        into = target / Path(folder).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(folder) / name, into / name)
            except FileExistsError:
                raise
            except OSError:  # another file system, or one without links
                shutil.copy2(Path(folder) / name, into / name)


def _snapshot(client: Any, run_id: str, key: str, committed: str) -> str:
    """The committed model directory as the run's artifact ``models/<key>``; its URI."""
    local = local_file(committed)
    artifacts = client.get_run(run_id).info.artifact_uri
    if local is None:  # a model on HDFS or S3: the reference, as nothing on this machine can link or upload it
        return committed
    target = local_file(artifacts) if artifacts.startswith("file:") else None
    if target is None:
        client.log_artifacts(run_id, local, f"models/{key}")
    else:
        link_tree(Path(local), Path(target) / "models" / key)
    return f"{artifacts}/models/{key}"


def _metric_value(document: Mapping[str, Any], metric: str) -> float | None:
    return flat_numbers(document).get(mlflow_name(metric)) if metric else None


def should_move(value: float | None, held: float | None, greater_is_better: bool) -> bool:
    """Whether a new version with metric ``value`` takes the alias from a holder with ``held`` (None: no holder,
    or the holder has no value): ties move it, to the newer model."""
    if held is None:
        return True
    if value is None:
        return False
    return value >= held if greater_is_better else value <= held


def register_model(
    client: Any,
    run_id: str,
    name: str,
    key: str,
    committed: str,
    document: Mapping[str, Any],
    policy: Mapping[str, Any],
    source: str = "snapshot",
    step: str | None = None,
) -> Any:
    """Register the model committed at ``committed`` (output ``key`` of a run whose ``_metrics.json`` is
    ``document``) as a new version of ``name``; move ``policy['alias']`` to it if it is at least as good."""
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    model = (
        found[0]
        if found
        else client.create_registered_model(name, description=f"Models of job {document['job']} (spark-ml-pipelines)")
    )
    metric, alias, greater = policy["metric"], policy["alias"], policy["greater_is_better"]
    value = _metric_value(document, metric)
    tags = {
        "run_date": document.get("run_date") or "",
        "job": document["job"],
        "output": key,
        "committed_path": committed,
        "lineage_token": document.get("lineage", {}).get("token", ""),
        **({"step": step} if step else {}),
        **(
            {"metric": metric, "metric_value": repr(value), "greater_is_better": str(greater).lower()} if metric else {}
        ),
    }
    uri = _snapshot(client, run_id, key, committed) if source == "snapshot" else committed
    holder = client.get_model_version(name, model.aliases[alias]) if alias in (model.aliases or {}) else None
    held = holder.tags.get("metric_value") if holder is not None else None
    move = holder is None or not metric or should_move(value, _number(held), greater)
    measured = f"{metric} {value:.6g}" if value is not None else (f"{metric} missing" if metric else "no metric")
    verdict = (
        f"took alias '{alias}'" + (f" from version {holder.version} ({held})" if holder is not None else "")
        if move
        else f"left alias '{alias}' on version {holder.version} ({held})"
    )
    version = client.create_model_version(
        name, uri, run_id=run_id, tags=tags, description=f"{document['job']} {tags['run_date']}: {measured}; {verdict}"
    )
    if move:
        client.set_registered_model_alias(name, alias, version.version)
    return version


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "None") else None
    except ValueError:
        return None


def register_models(ctx: JobContext, run: Run) -> None:
    """Register every model ``ctx`` committed (a tracked job that succeeded); a failure warns and the job goes on."""
    conf = settings()["registry"]
    if not ctx.models or not conf["enabled"] or not run:
        return
    try:
        if conf["source"] not in SOURCES:
            raise ValueError(f"tracking registry.source must be one of {', '.join(SOURCES)}; got {conf['source']!r}")
        policy = ctx.config["registry"]
        tracked = run.client.get_run(run.run_id)
        experiment = run.client.get_experiment(tracked.info.experiment_id).name
        step = tracked.data.tags.get("step")
        base = policy["name"] or (f"{experiment}.{step}" if step else ctx.name)
        for key in ctx.models:
            out = ctx.committed[key]
            document = json.loads(ctx.fs.read_text(f"{out.final_path}/{METRICS_FILE}"))
            name = base if key == "model" else f"{base}.{key}"
            version = register_model(
                run.client, run.run_id, name, key, out.final_path, document, policy, conf["source"], step
            )
            ctx.log(f"registered {key} as models:/{name}/{version.version}")
    except Exception as exc:  # noqa: BLE001 - registering never fails the job
        warn_untracked(f"the models of {ctx.name}", exc)


def set_alias(name: str, version: str | int, alias: str = "champion", tracking_uri: str | None = None) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (a rollback: back to an older version)."""
    registry_client(tracking_uri).set_registered_model_alias(name, alias, str(version))


def list_versions(name: str, tracking_uri: str | None = None) -> list[str]:
    """One line per version of ``name``, newest first: number, aliases, run date, metric, source."""
    client = registry_client(tracking_uri)
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    holders = found[0].aliases if found else {}
    lines = []
    for v in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: -int(v.version)):
        aliases = ",".join(sorted(a for a, held in holders.items() if str(held) == str(v.version))) or "-"
        metric = f"{v.tags.get('metric')}={v.tags.get('metric_value')}" if v.tags.get("metric") else "-"
        lines.append(f"{v.version}\t{aliases}\t{v.tags.get('run_date', '')}\t{metric}\t{v.source}")
    return lines


def models_command(name: str, version: str | None, alias: str, tracking_uri: str | None) -> int:
    """``spark-ml-pipelines models NAME [--set VERSION]``: list the versions, or move the alias first."""
    try:
        if version is not None:
            set_alias(name, version, alias, tracking_uri)
            print(f"models:/{name}@{alias} -> version {version}", file=sys.stderr)
        lines = list_versions(name, tracking_uri)
    except Exception as exc:  # noqa: BLE001 - mlflow's errors (no such model or version) told in one line
        raise ModelError(f"model {name}: {one_line(exc)}") from None
    if not lines:
        raise ModelError(f"model {name}: no version registered in {registry_uri(tracking_uri)}")
    print("version\taliases\trun_date\tmetric\tsource")
    for line in lines:
        print(line)
    return 0
