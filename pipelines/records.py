"""Result records: the frozen dataclasses a computation returns, which jobs write into ``_metrics.json``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any


class Record:
    """Mixed into a dataclass: ``as_dict()``, its fields as a JSON-able dict (nested dataclasses too)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
