"""Members of a zip archive (a downloaded data set) as files of staged outputs, one directory each."""

from __future__ import annotations

import zipfile
from typing import Mapping

from pipelines.recsys.tables import RecsysError


def read_members(path: str, members: Mapping[str, str]) -> dict[str, tuple[str, bytes]]:
    """``{output name: (file name, bytes)}`` for each ``member -> output name`` of the zip at ``path``.

    A member may be named with or without the archive's top folder (``ml-latest-small/ratings.csv`` or
    ``ratings.csv``).
    """
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise RecsysError(f"archive not found: {path}") from None
    except zipfile.BadZipFile:
        raise RecsysError(f"{path}: not a zip archive") from None
    with archive:
        names = archive.namelist()
        found = {}
        for member, name in members.items():
            match = [n for n in names if n == member or n.endswith("/" + member)]
            if not match:
                raise RecsysError(f"{path}: member '{member}' not found; members: {', '.join(names)}")
            found[name] = (match[0].rsplit("/", 1)[-1], archive.read(match[0]))
    return found
