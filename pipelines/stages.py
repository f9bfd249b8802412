"""One way to save the project's Spark ML models that carry numpy arrays (or raw bytes, such as a booster).

A model mixes in ``ArrayModel``, names its arrays in ``arrays()`` and rebuilds itself from them in ``from_arrays``.
``write``/``read`` then store the Params as Spark's JSON metadata (``metadata/``) and every array as an ``.npy``
blob in one Parquet row (``data/``), through the session, so any file system Spark writes to holds the model; the
reader restores the uid and the Params as Spark's own readers do.
"""
from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter

from pipelines.errors import ModelError


def _to_bytes(array: np.ndarray | None) -> bytes | None:
    if array is None:
        return None
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_bytes(blob: bytes | bytearray | None) -> np.ndarray | None:
    return None if blob is None else np.load(io.BytesIO(bytes(blob)), allow_pickle=False)


class ArrayModel(MLReadable, MLWritable):
    """A Spark ML model whose state is a few named arrays (``None`` for an absent one)."""

    def arrays(self) -> dict[str, np.ndarray | None]:
        """The state to save, by name (scalars as 0-d arrays, bytes as ``uint8`` arrays)."""
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray | None]) -> Any:
        """A model holding ``arrays`` (as ``arrays()`` named them); the reader sets its uid and Params."""
        raise NotImplementedError

    def loaded(self, metadata: Mapping[str, Any]) -> None:
        """Called after the Params are restored: a place to read older metadata (nothing by default)."""

    def write(self) -> MLWriter:
        return _ArrayModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ArrayModelReader(cls)


class _ArrayModelWriter(MLWriter):
    def __init__(self, instance: ArrayModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession)
        arrays = self.instance.arrays()
        schema = ", ".join(f"`{name}` BINARY" for name in arrays)
        row = tuple(_to_bytes(value) for value in arrays.values())
        self.sparkSession.createDataFrame([row], schema).coalesce(1).write.parquet(f"{path}/data")


class _ArrayModelReader(MLReader):
    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Any:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        row = self.sparkSession.read.parquet(f"{path}/data").first()
        if row is None:
            raise ModelError(f"{path}: the model's data/ holds no row")
        model = self.cls.from_arrays({name: _from_bytes(blob) for name, blob in row.asDict().items()})
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        model.loaded(metadata)
        return model
