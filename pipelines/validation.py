"""One helper to validate a Spark ML stage's Params, one sentence per problem (scikit-learn's wording)."""

from __future__ import annotations

from typing import Any, Callable

from pipelines.errors import UserError


class ParamError(UserError):
    """A stage's Param holds a value the stage cannot use."""


def check_param(owner: str, name: str, value: Any, expected: str, ok: Callable[[Any], bool]) -> None:
    """Raise ``ParamError`` unless ``ok(value)``: "The 'name' parameter of Owner must be expected. Got value
    instead."."""
    if not ok(value):
        raise ParamError(f"The '{name}' parameter of {owner} must be {expected}. Got {value!r} instead.")
