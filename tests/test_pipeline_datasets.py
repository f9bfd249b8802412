"""Named datasets and ``extends`` in pipeline definitions: paths stated once, inputs derived from references,
a definition that differs from another in a few keys."""

from pathlib import Path

import pytest
import yaml

from pipelines.orchestration.definition import PipelineError, load_pipeline

ROOT = Path(__file__).resolve().parents[1]
DATE = "2026-11-20"


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def base(tmp_path: Path) -> dict:
    return {
        "name": "named",
        "root": str(tmp_path / "out"),
        "datasets": {
            "raw": "{root}/raw/interactions",
            "clean": "{root}/clean/interactions",
            "history": "{root}/split/history",
            "targets": "{root}/split/targets",
            "model": {"path": "{root}/item2vec/model", "dated": False},
        },
        "steps": {
            "ingest": {
                "job": "ingest",
                "set": {
                    "input": {"path": "{raw}", "schema": "user_id BIGINT, item_id BIGINT"},
                    "output.path": "{root}/clean/interactions",
                },
                "outputs": ["clean"],
            },
            "split": {
                "job": "split_interactions",
                "set": {"input.path": "{clean}", "output.path": "{root}/split"},
                "inputs": ["{root}/extra"],
                "outputs": ["history", "targets"],
            },
            "item2vec": {
                "job": "train_word2vec",
                "set": {"input": {"kind": "sessions", "path": "{history}"}, "output.path": "{root}/item2vec"},
                "outputs": ["model"],
            },
        },
    }


def set_values(step) -> dict:
    args = step.job_args(DATE)
    return dict(args[i + 1].split("=", 1) for i in range(len(args) - 1) if args[i] == "--set")


def test_datasets_fill_set_values_inputs_outputs_and_dependencies(tmp_path):
    pipeline = load_pipeline(write(tmp_path / "p.yaml", base(tmp_path)))
    out = str(tmp_path / "out")
    split, item2vec = pipeline.steps["split"], pipeline.steps["item2vec"]
    assert set_values(split)["input.path"] == f"{out}/clean/interactions/ds={DATE}"
    assert split.input_paths(DATE) == [f"{out}/extra", f"{out}/clean/interactions/ds={DATE}"]
    assert split.output_paths(DATE) == [f"{out}/split/history/ds={DATE}", f"{out}/split/targets/ds={DATE}"]
    assert item2vec.output_paths(DATE) == [f"{out}/item2vec/model"]  # undated
    assert pipeline.steps["ingest"].input_paths(DATE) == [f"{out}/raw/interactions/ds={DATE}"]
    assert split.depends_on == ["ingest"] and item2vec.depends_on == ["split"]


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["steps"]["split"]["set"].update({"input.path": "{cleaned}"}),
            "step 'split': unknown placeholder '{cleaned}'",
        ),
        (lambda d: d["datasets"].update({"run_date": "x"}), "dataset 'run_date': a dataset name must be an identifier"),
        (lambda d: d["datasets"].update({"bad": "{root}/{nope}"}), "dataset 'bad': unknown placeholder '{nope}'"),
        (lambda d: d["datasets"].update({"bad": {"path": "x", "partitioned": True}}), "unknown key 'partitioned'"),
    ],
)
def test_dataset_errors_are_one_sentence(tmp_path, change, message):
    data = base(tmp_path)
    change(data)
    with pytest.raises(PipelineError) as info:
        load_pipeline(write(tmp_path / "p.yaml", data))
    assert message in str(info.value)


def test_extends_merges_over_the_base_and_removes_with_null(tmp_path):
    write(tmp_path / "base.yaml", base(tmp_path))
    child = write(
        tmp_path / "child.yaml",
        {
            "extends": "base.yaml",
            "datasets": {"clean": "{root}/clean/ratings"},
            "steps": {
                "item2vec": None,
                "split": {"set": {"output.path": "{root}/split2", "input": {"session_col": "session_id"}}},
            },
        },
    )
    pipeline = load_pipeline(child)
    assert pipeline.name == "child" and pipeline.root.endswith("output/pipelines/child")  # name and root its own
    assert list(pipeline.steps) == ["ingest", "split"]
    values = set_values(pipeline.steps["split"])
    assert values["output.path"].endswith("/split2") and values["input.session_col"] == "session_id"
    assert values["input.path"] == f"{pipeline.root}/clean/ratings/ds={DATE}"
    args = pipeline.steps["split"].job_args(DATE)
    assert sum(a.startswith("output.path=") for a in args) == 1  # the child's value replaces the base's


def test_extends_cycle_and_missing_base_are_errors(tmp_path):
    write(tmp_path / "a.yaml", {**base(tmp_path), "extends": "b.yaml"})
    write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(PipelineError, match="'extends' cycle"):
        load_pipeline(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {"extends": "nowhere.yaml"})
    with pytest.raises(PipelineError, match="'extends' names 'nowhere.yaml'"):
        load_pipeline(tmp_path / "c.yaml")


def test_movielens_extends_the_demo_with_its_own_data():
    demo = load_pipeline(ROOT / "conf" / "pipelines" / "recsys_demo.yaml")
    movielens = load_pipeline(ROOT / "conf" / "pipelines" / "recsys_movielens.yaml")
    assert set(movielens.steps) == set(demo.steps) - {"generate", "ingest_interactions", "ingest_items"} | {
        "unpack",
        "ingest_ratings",
        "ingest_movies",
    }
    features = set_values(movielens.steps["features"])
    assert features["input.items.path"] == f"{movielens.root}/clean/movies/ds={DATE}"
    assert features["input.items.category_col"] == "genres"
    assert set(movielens.steps["features"].depends_on) == {"split", "item2vec", "recall", "ingest_movies"}
    assert set_values(movielens.steps["build_pq"])["quantizer.m"] == "17"
    for step in [*demo.steps.values(), *movielens.steps.values()]:
        keys = [a.split("=", 1)[0] for a in step.job_args(DATE) if "=" in a]
        assert len(keys) == len(set(keys)), step.name
