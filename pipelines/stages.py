"""The one shape of the project's Spark ML stages: how they declare Params, are built, and are saved.

Params: a stage's Params class derives from ``StageParams`` and declares each Param once, in its class body, with
its default and its doc: ``vectorSize = param(100, "dimensions")``. The converter follows the default's type
(``converter=`` for lists and for Params without a default). Every Param, pyspark's shared ones (``HasInputCol``...)
too, gets ``getX``/``setX`` unless the class has its own; a shared Param keeps pyspark's default unless the class
declares it again with its own. Params classes compose: one that several stages take is declared once and mixed
into each (``values_of`` passes its values on from one stage to another). Stages are built pyspark's way, from
keyword arguments only (``Word2Vec(vectorSize=50)``, ``setParams(...)``), and ``value(name)`` reads a Param or its
default.

Saving: a model that holds more than Params mixes in ``SavedModel`` (its Params as Spark's JSON metadata in
``metadata/``, its state below the path as ``save_data`` writes it, through the session, so any file system Spark
writes to holds the model; the reader restores the uid and the Params as Spark's own readers do). A model whose
state is a few numpy arrays (or raw bytes, such as a booster) mixes in ``ArrayModel``: it names its arrays in
``arrays()`` and rebuilds itself from them in ``from_arrays``; they are saved as ``.npy`` blobs in one Parquet row
(``data/``). Estimators and models without state mix in pyspark's ``DefaultParamsReadable``/``Writable``.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Mapping

import numpy as np
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import SparkSession

from pipelines.errors import ModelError

# bool before int: a bool is an int to isinstance
_CONVERTERS: tuple[tuple[type, Callable], ...] = (
    (bool, TypeConverters.toBoolean),
    (int, TypeConverters.toInt),
    (float, TypeConverters.toFloat),
    (str, TypeConverters.toString),
)


class StageParam(Param):
    """A Param that carries its default; its name is the attribute it is assigned to (see ``param``)."""

    def __init__(self, default: Any, doc: str, converter: Callable) -> None:
        super().__init__(Params._dummy(), "", doc, typeConverter=converter)
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name


def param(default: Any, doc: str, converter: Callable | None = None) -> StageParam:
    """A Param declared once: its default (``None``: none), its doc and, unless the default's type says it
    (bool, int, float, str), its converter."""
    if converter is None:
        converter = next((conv for kind, conv in _CONVERTERS if isinstance(default, kind)), None)
        if converter is None:
            raise TypeError(f"param({default!r}, {doc!r}) needs a converter: its type does not name one")
    return StageParam(default, doc, converter)


def camel_case(key: str) -> str:
    """The Param name of a snake_case config key: ``max_iter`` -> ``maxIter``."""
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def snake_case(name: str) -> str:
    """The snake_case spelling of a Param name (configs', XGBoost's): ``maxDepth`` -> ``max_depth``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def config_params(section: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The values of a config section's ``keys`` by Param name (``camel_case``): a job builds a stage from the
    keys that name its Params without spelling each name twice."""
    return {camel_case(key): section[key] for key in keys}


def _accessors(name: str) -> dict[str, Callable]:
    suffix = name[0].upper() + name[1:]
    return {
        f"get{suffix}": lambda stage: stage.getOrDefault(name),
        f"set{suffix}": lambda stage, value: stage._set(**{name: value}),
    }


class StageParams(Params):
    """Base of a stage's Params: defaults from the ``param`` declarations, pyspark's keyword-only constructor and
    ``setParams`` (a ``None`` value leaves the Param as it was), a getter and a setter of every Param, ``value``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in dir(cls):
            if isinstance(getattr(cls, name, None), Param):
                for method, accessor in _accessors(name).items():
                    if not hasattr(cls, method):
                        setattr(cls, method, accessor)

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._setDefault(
            **{p.name: p.default for p in self.params if isinstance(p, StageParam) and p.default is not None}
        )
        self.setParams(**kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> Any:
        """Set any of the stage's Params by name, then ``_validate``."""
        unknown = [name for name in kwargs if not self.hasParam(name)]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no Param '{unknown[0]}'; its Params are "
                f"{', '.join(p.name for p in self.params)}."
            )
        self._set(**{name: value for name, value in kwargs.items() if value is not None})
        self._validate()
        return self

    def _validate(self) -> None:
        """Called once Params are set by the constructor or ``setParams``: stages that check values early do it
        here (nothing by default)."""

    def value(self, name: str) -> Any:
        """The value of the Param ``name``, or its default."""
        return self.getOrDefault(name)

    def values(self, *names: str) -> list[Any]:
        """The values of the Params ``names``, in that order: the positional arguments of a settings class."""
        return [self.getOrDefault(name) for name in names]

    def values_of(self, params: type) -> dict[str, Any]:
        """The values of the Params the Params class ``params`` declares (inherited ones too), by name: the
        arguments of another stage that declares them."""
        return {name: self.value(name) for name in dir(params) if isinstance(getattr(params, name), Param)}


class SavedModel(MLReadable, MLWritable):
    """A Spark ML model saved as its Params plus the state ``save_data`` writes (see the module's doc)."""

    def extra_metadata(self) -> dict[str, Any]:
        """Small JSON-able state saved beside the Params in ``metadata/`` (nothing by default)."""
        return {}

    def save_data(self, path: str, spark: SparkSession) -> None:
        """Write the model's state below ``path`` (``metadata/`` is taken)."""
        raise NotImplementedError

    @classmethod
    def load_data(cls, path: str, spark: SparkSession, metadata: Mapping[str, Any]) -> Any:
        """A model holding the state ``save_data`` wrote below ``path``; the reader then sets its uid and Params."""
        raise NotImplementedError

    def loaded(self, metadata: Mapping[str, Any]) -> None:
        """Called after the Params are restored: a place to read older metadata (nothing by default)."""

    def write(self) -> MLWriter:
        return _SavedModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _SavedModelReader(cls)


class _SavedModelWriter(MLWriter):
    def __init__(self, instance: SavedModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, self.instance.extra_metadata())
        self.instance.save_data(path, self.sparkSession)


class _SavedModelReader(MLReader):
    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Any:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        model = self.cls.load_data(path, self.sparkSession, metadata)
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        model.loaded(metadata)
        return model


def _to_bytes(array: np.ndarray | None) -> bytes | None:
    if array is None:
        return None
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_bytes(blob: bytes | bytearray | None) -> np.ndarray | None:
    return None if blob is None else np.load(io.BytesIO(bytes(blob)), allow_pickle=False)


class ArrayModel(SavedModel):
    """A Spark ML model whose state is a few named arrays (``None`` for an absent one)."""

    def arrays(self) -> dict[str, np.ndarray | None]:
        """The state to save, by name (scalars as 0-d arrays, bytes as ``uint8`` arrays)."""
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray | None]) -> Any:
        """A model holding ``arrays`` (as ``arrays()`` named them); the reader sets its uid and Params."""
        raise NotImplementedError

    def save_data(self, path: str, spark: SparkSession) -> None:
        arrays = self.arrays()
        schema = ", ".join(f"`{name}` BINARY" for name in arrays)
        row = tuple(_to_bytes(value) for value in arrays.values())
        spark.createDataFrame([row], schema).coalesce(1).write.parquet(f"{path}/data")

    @classmethod
    def load_data(cls, path: str, spark: SparkSession, metadata: Mapping[str, Any]) -> Any:
        row = spark.read.parquet(f"{path}/data").first()
        if row is None:
            raise ModelError(f"{path}: the model's data/ holds no row")
        return cls.from_arrays({name: _from_bytes(blob) for name, blob in row.asDict().items()})
