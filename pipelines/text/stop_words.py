"""Shipped stop-word lists, read with ``pkgutil`` so they load from a ``--py-files`` zip as well as from disk."""

from __future__ import annotations

import pkgutil
from typing import Iterable

SHIPPED = {"english": "stopwords/english.txt", "chinese": "stopwords/chinese.txt"}


def load_stop_words(name: str) -> list[str]:
    """The shipped list ``name`` (``english``, ``chinese``) or ``none`` for an empty list; sorted, unique."""
    if name == "none":
        return []
    if name not in SHIPPED:
        raise ValueError(f"unknown stop-word list '{name}', expected one of {sorted(SHIPPED) + ['none']}")
    data = pkgutil.get_data(__package__, SHIPPED[name])
    if data is None:
        raise FileNotFoundError(f"stop-word list {SHIPPED[name]} missing from package {__package__}")
    lines = (line.strip() for line in data.decode("utf-8").splitlines())
    return sorted({line for line in lines if line and not line.startswith("#")})


def stop_words(names: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The union of shipped lists ``names`` and ``extra`` words, sorted."""
    words = set(extra)
    for name in names:
        words.update(load_stop_words(name))
    return sorted(words)
