"""Configuration: defaults as schema, user files, dotted overrides and one-line errors."""

from pathlib import Path

import pytest
import yaml

from pipelines.config import ConfigError, dump_config, load_config, parse_override

DEFAULTS = {
    "seed": 42,
    "rate": 0.5,
    "verbose": False,
    "name": "demo",
    "columns": ["a", "b"],
    "model": {"vector_size": 100, "window": 5},
    "options": {},
    "limit": None,
}


@pytest.fixture()
def defaults_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(DEFAULTS, sort_keys=False))
    return path


def test_defaults_load_unchanged(defaults_file):
    assert load_config(defaults_file) == DEFAULTS


def test_overrides_parse_as_yaml_and_keep_strings(defaults_file):
    cfg = load_config(
        defaults_file,
        overrides=[
            "model.vector_size=200",
            "rate=1",
            "verbose=true",
            "name=2024",
            "columns=[x, y, z]",
            "options.sep=;",
            "limit=10",
        ],
    )
    assert cfg["model"] == {"vector_size": 200, "window": 5}
    assert cfg["rate"] == 1.0 and isinstance(cfg["rate"], float)
    assert cfg["verbose"] is True
    assert cfg["name"] == "2024"
    assert cfg["columns"] == ["x", "y", "z"]
    assert cfg["options"] == {"sep": ";"}
    assert cfg["limit"] == 10


def test_user_file_merges_over_defaults_and_overrides_win(defaults_file, tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("model:\n  window: 10\nseed: 7\n")
    cfg = load_config(defaults_file, user, ["seed=8"])
    assert cfg["model"] == {"vector_size": 100, "window": 10}
    assert cfg["seed"] == 8


def test_unknown_key_lists_valid_keys_in_one_line(defaults_file):
    with pytest.raises(ConfigError) as err:
        load_config(defaults_file, overrides=["model.vector_sise=200"])
    message = str(err.value)
    assert "\n" not in message
    assert "unknown key 'model.vector_sise'" in message
    assert "valid keys: model.vector_size, model.window" in message


def test_unknown_top_level_key_in_user_file_names_the_file(defaults_file, tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("sede: 1\n")
    with pytest.raises(
        ConfigError,
        match=r"user.yaml: unknown key 'sede'; valid keys: columns, limit, "
        r"model.vector_size, model.window, name, options, rate, seed, verbose",
    ):
        load_config(defaults_file, user)


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=abc", "seed: expected int, got string 'abc'"),
        ("seed=1.5", "seed: expected int, got float 1.5"),
        ("verbose=3", "verbose: expected bool, got int 3"),
        ("rate=yes", "rate: expected float, got bool True"),
        ("model=3", "model: expected mapping, got int 3"),
        ("columns=a", "columns: expected list, got string 'a'"),
    ],
)
def test_wrong_type_is_one_clear_error(defaults_file, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(defaults_file, overrides=[override])
    assert str(err.value) == message


def test_override_without_equals_sign(defaults_file):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("seed", DEFAULTS)


def test_missing_and_invalid_files(tmp_path, defaults_file):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(defaults_file, bad)


def test_dump_round_trips(defaults_file):
    cfg = load_config(defaults_file, overrides=["model.window=9"])
    assert yaml.safe_load(dump_config(cfg)) == cfg


def test_every_shipped_job_conf_loads():
    root = Path(__file__).resolve().parents[1]
    job_confs = sorted((root / "conf" / "jobs").glob("*.yaml"))
    assert job_confs, "no job configurations shipped"
    for path in job_confs:
        assert load_config(path) == yaml.safe_load(path.read_text())
        assert (root / "jobs" / f"{path.stem}.py").is_file(), f"{path.name} has no job script"
