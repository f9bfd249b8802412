"""The MLflow model registry (pipelines/model_registry.py) without Spark: versions of committed model directories
(made by hand here: a file and a ``_metrics.json``) in a temporary SQLite store, the alias moved by the validation
metric, a rollback, ``models:/`` URIs resolved, and what happens to a version when its path is re-committed.
Training through a job and scoring with ``models:/...@champion`` is in tests/test_gbdt_lr.py."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.errors import ModelError
from pipelines.model_registry import register_model, resolve_config, resolve_model, set_alias, should_move
from pipelines.orchestration.command import main
from pipelines.tracking import Run, settings

mlflow_tracking = pytest.importorskip("mlflow.tracking")

LOCAL_FS = SimpleNamespace(read_text=lambda path: Path(path).read_text())
AUC = {"metric": "test.gbdt_lr.roc_auc", "greater_is_better": True, "alias": "champion"}
MSE = {"metric": "pq.reconstruction_mse", "greater_is_better": False, "alias": "champion"}


@pytest.fixture
def tracking(tracked):
    with tracked():
        yield


def register(name: str, path: str, policy: dict, source: str = "snapshot"):
    """A version of the model committed at ``path``, registered by a new run (one training)."""
    run = Run.start(settings(), path, "registry", "train", {"run_date": "2026-11-20"})
    assert run
    document = json.loads(Path(path, "_metrics.json").read_text())
    return run, register_model(run.client, run.run_id, name, "model", path, document, policy, source, "train")


def commit(folder: Path, token: str, weights: str, **metrics: dict) -> str:
    """A committed model directory as the job shell leaves it: data, and metrics with the lineage token. Replaced
    as a whole, as a commit does (new files, the old directory deleted)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "part-0").write_text(weights)
    (folder / "_metrics.json").write_text(
        json.dumps({"job": "train", "run_date": "2026-11-20", "lineage": {"token": token}, **metrics})
    )
    return str(folder)


def client():
    return mlflow_tracking.MlflowClient()


def test_the_alias_follows_the_metric_and_rolls_back(tracking, tmp_path):
    committed = tmp_path / "model"
    versions = [
        register("clicks", commit(committed, f"t{i}", f"weights {i}", test={"gbdt_lr": {"roc_auc": auc}}), AUC)
        for i, auc in enumerate([0.70, 0.65, 0.70])
    ]
    assert [str(v.version) for _, v in versions] == ["1", "2", "3"]
    assert str(client().get_registered_model("clicks").aliases["champion"]) == "3"  # 0.65 kept v1, the tie moved
    second = client().get_model_version("clicks", "2")
    assert second.tags["metric_value"] == "0.65" and second.tags["run_date"] == "2026-11-20"
    assert second.tags["lineage_token"] == "t1" and second.tags["step"] == "train"
    assert second.description == (
        "train 2026-11-20: test.gbdt_lr.roc_auc 0.65; left alias 'champion' on version 1 (0.7)"
    )
    assert second.run_id == versions[1][0].run_id and second.source.endswith("/models/model")
    # Each version is a snapshot: the directory was replaced twice since version 1, which still holds its files.
    first = resolve_model("models:/clicks/1", fs=LOCAL_FS)
    assert Path(first.path, "data", "part-0").read_text() == "weights 0"
    assert Path(resolve_model("models:/clicks@champion").path, "data", "part-0").read_text() == "weights 2"
    set_alias("clicks", 1)  # the rollback
    rolled = resolve_model("models:/clicks@champion", fs=LOCAL_FS)
    assert (rolled.version, Path(rolled.path, "data", "part-0").read_text()) == ("1", "weights 0")


def test_lower_is_better_and_snapshots_are_hard_links(tracking, tmp_path):
    for i, mse in enumerate([0.2, 0.25, 0.19]):
        path = commit(tmp_path / "pq", f"t{i}", f"codebooks {i}", pq={"reconstruction_mse": mse})
        register("pq", path, MSE)
        snapshot = Path(resolve_model("models:/pq@champion").path)
        assert snapshot.joinpath("data", "part-0").read_text() == f"codebooks {0 if i == 1 else i}"
    assert (snapshot / "data" / "part-0").stat().st_ino == Path(path, "data", "part-0").stat().st_ino


@pytest.mark.parametrize(
    "value, held, greater, moves",
    [
        (0.7, None, True, True),
        (0.71, 0.7, True, True),
        (0.7, 0.7, True, True),
        (0.69, 0.7, True, False),
        (0.19, 0.2, False, True),
        (0.21, 0.2, False, False),
        (None, 0.7, True, False),
    ],
)
def test_should_move(value, held, greater, moves):
    assert should_move(value, held, greater) is moves


def test_a_reference_version_refuses_a_recommitted_path(tracking, tmp_path):
    committed = tmp_path / "ref"
    path = commit(committed, "first", "w1", test={"gbdt_lr": {"roc_auc": 0.6}})
    register("referenced", path, AUC, source="reference")
    assert resolve_model("models:/referenced/1", fs=LOCAL_FS).path == path
    commit(committed, "second", "w2")
    with pytest.raises(ModelError, match=r"models:/referenced/1: version 1 refers to .* no longer holds the model"):
        resolve_model("models:/referenced/1", fs=LOCAL_FS)


def test_model_uris_in_a_configuration(tracking, tmp_path):
    register("configured", commit(tmp_path / "m", "t", "w", test={"gbdt_lr": {"roc_auc": 0.6}}), AUC)
    members = {"ratings.csv": "ratings", "m.bin": "models:/configured@champion"}  # keys with dots (unpack_archive)
    config = {"model_path": "models:/configured@champion", "input": {"path": "in", "n": 3}, "members": members}
    resolved = resolve_config(config)
    assert config["model_path"] == resolved["model_path"]["path"] and config["input"] == {"path": "in", "n": 3}
    assert config["members"] == {"ratings.csv": "ratings", "m.bin": resolved["model_path"]["path"]}
    assert set(resolved) == {"model_path", "members.m.bin"}
    assert resolved["model_path"]["version"] == "1"
    with pytest.raises(ModelError, match=r"^models:/configured@nope: not found in the model registry at sqlite:"):
        resolve_config({"model_path": "models:/configured@nope"})
    with pytest.raises(ModelError, match="not a model URI; expected models:/<name>@<alias> or models:/<name>/<ver"):
        resolve_model("models:/a/b/c")


def test_models_command_lists_and_moves_the_alias(tracking, tmp_path, capsys):
    for i, auc in enumerate([0.8, 0.9]):
        register("listed", commit(tmp_path / "c", f"t{i}", f"w{i}", test={"gbdt_lr": {"roc_auc": auc}}), AUC)
    assert main(["models", "listed", "--set", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "version\taliases\trun_date\tmetric\tsource"
    assert [line.split("\t")[:4] for line in lines[1:]] == [
        ["2", "-", "2026-11-20", "test.gbdt_lr.roc_auc=0.9"],
        ["1", "champion", "2026-11-20", "test.gbdt_lr.roc_auc=0.8"],
    ]
    assert main(["models", "absent"]) == 2
    assert capsys.readouterr().err.startswith("error: model absent: no version registered in sqlite:")


def test_without_mlflow_a_model_uri_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # what an environment without it raises
    with pytest.raises(ModelError, match=r"^models:/x@champion: resolving a models:/ URI needs mlflow"):
        resolve_model("models:/x@champion")
