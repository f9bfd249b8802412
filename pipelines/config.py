"""Job configuration: defaults from ``conf/jobs/<job>.yaml``, a user file and dotted overrides.

The defaults file is also the schema. Every key a user sets must exist in it, and its value must
have the default's type (an int is accepted where a float is expected). Two kinds of default are
open: ``null`` accepts any value, and an empty mapping ``{}`` accepts any keys (free-form options,
e.g. reader options).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from pipelines.errors import UserError
from pipelines.resources import Resource


class ConfigError(UserError):
    """A configuration value or key that the job does not accept. The message is one line."""


def read_yaml(path: str | os.PathLike | Resource) -> dict[str, Any]:
    """Read a YAML mapping (a file, or a file the package ships), with a clear error for a missing file or a
    non-mapping document."""
    p = Path(path) if isinstance(path, (str, os.PathLike)) else path
    if not p.is_file():
        raise ConfigError(f"configuration file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


def _check_value(key: str, default: Any, value: Any) -> Any:
    """Return ``value`` converted to the default's type, or raise ConfigError."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{key}: expected {_type_name(default)}, got {_type_name(value)} {value!r}")
    return value


def check_date(key: str, value: Any) -> str:
    """A run or start date from a configuration, as YYYY-MM-DD; anything that is not a date is refused here,
    before it becomes part of a path, a partition or a generated file."""
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(f"{key}: expected a date YYYY-MM-DD, got {value!r}") from None


def date_argument(text: str) -> str:
    """``argparse`` type of a ``--run-date``/``--from``/``--to`` option: YYYY-MM-DD or a usage error."""
    try:
        return check_date("date", text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def leaves(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every settable key by dotted name, with its value (an empty mapping is settable as a whole).

    Walks the tree rather than splitting names later: keys may hold dots (``members: {movies.csv: movies}``).
    """
    found: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            found.extend(leaves(value, f"{prefix}{key}."))
        else:
            found.append((f"{prefix}{key}", value))
    return found


def leaf_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of every settable key."""
    return [dotted for dotted, _ in leaves(config, prefix)]


def merge(defaults: Mapping[str, Any], updates: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Merge ``updates`` into a copy of ``defaults``, validating keys and types against the defaults."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            valid = ", ".join(sorted(leaf_keys(defaults, prefix)))
            raise ConfigError(f"unknown key '{dotted}'; valid keys: {valid}")
        default = defaults[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected mapping, got {_type_name(value)} {value!r}")
            merged[key] = merge(default, value, prefix=f"{dotted}.")
        else:
            merged[key] = _check_value(dotted, default, value)
    return merged


def parse_override(text: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}``.

    The value is parsed as YAML (``200`` is an int, ``[a, b]`` a list, ``null`` None), except where
    the default is a string, so ``--set input.path=2024`` stays a path.
    """
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected KEY=VALUE, e.g. model.vector_size=200")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    node: Any = defaults
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, str):
        value: Any = raw
    else:
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def load_config(
    defaults_path: str | os.PathLike | Resource,
    conf_file: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Defaults, then the user's file, then each ``KEY=VALUE`` override, all validated."""
    defaults = read_yaml(defaults_path)
    resolved = copy.deepcopy(defaults)
    if conf_file is not None and Path(conf_file).resolve() != Path(str(defaults_path)).resolve():
        try:
            resolved = merge(defaults, read_yaml(conf_file))
        except ConfigError as exc:
            raise ConfigError(f"{conf_file}: {exc}") from None
    for text in overrides:
        resolved = merge(defaults, _deep_update(resolved, parse_override(text, defaults)))
    return resolved


def _deep_update(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out


def dump_config(config: Mapping[str, Any]) -> str:
    """The resolved configuration as YAML, in the defaults' key order."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
