"""The one stage shape (``pipelines.stages``): Params declared once with their defaults, keyword-only constructors,
and the one writer/reader of models that carry arrays (``ArrayModel``): arrays, absent arrays, scalars and bytes
come back as saved, with the uid and the Params."""

import numpy as np
import pytest
from pyspark.ml import Estimator, Model
from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

from pipelines.gbdt_lr.xgboost_leaves import XGBoostLeafEncoderModel
from pipelines.pq.encoder import PQEncoderModel
from pipelines.stages import ArrayModel, StageParams, param
from pipelines.text.tfidf import SklearnIdfModel


class Toy(Model, HasOutputCol, ArrayModel):
    def __init__(self, weights=None, rotation=None, count=0, blob=b""):
        super().__init__()
        self._setDefault(outputCol="out")
        self.weights, self.rotation, self.count, self.blob = weights, rotation, count, blob

    def _transform(self, dataset):
        return dataset

    def arrays(self):
        return {
            "weights": self.weights,
            "rotation": self.rotation,
            "count": np.int64(self.count),
            "blob": np.frombuffer(self.blob, np.uint8),
        }

    @classmethod
    def from_arrays(cls, arrays):
        return cls(arrays["weights"], arrays["rotation"], int(arrays["count"]), arrays["blob"].tobytes())


def test_arrays_scalars_bytes_uid_and_params_round_trip(spark, tmp_path):
    toy = Toy(np.arange(12, dtype=np.float32).reshape(3, 4), None, 7, b"\x00\xffbooster")
    toy._set(outputCol="scores")
    toy.write().overwrite().save(str(tmp_path / "toy"))
    back = Toy.load(str(tmp_path / "toy"))
    assert back.uid == toy.uid and back.getOutputCol() == "scores"
    np.testing.assert_array_equal(back.weights, toy.weights)
    assert back.weights.dtype == np.float32 and back.rotation is None
    assert back.count == 7 and back.blob == b"\x00\xffbooster"


def test_project_models_keep_their_uid(spark, tmp_path):
    models = [
        PQEncoderModel(np.zeros((2, 4, 3), np.float32)),
        SklearnIdfModel(idf=np.array([1.0, 2.5]), docFreq=np.array([3, 1]), numDocs=4),
    ]
    for i, model in enumerate(models):
        model.write().overwrite().save(str(tmp_path / str(i)))
        back = type(model).load(str(tmp_path / str(i)))
        assert back.uid == model.uid
        for name, value in model.arrays().items():
            np.testing.assert_array_equal(back.arrays()[name], value)
    assert XGBoostLeafEncoderModel.from_arrays({"booster": np.frombuffer(b"ubj", np.uint8)}).booster_raw == b"ubj"


class _Base(StageParams, HasOutputCol):
    size = param(3, "a size")
    names = param([], "some names", TypeConverters.toListString)


class _Shared(StageParams):
    rate = param(0.5, "a rate")


class Fitter(Estimator, _Base, _Shared, DefaultParamsReadable, DefaultParamsWritable):
    outputCol = param("out", "output column")
    flag = param(None, "no default", TypeConverters.toBoolean)

    def _validate(self):
        if self.value("size") < 0:
            raise ValueError("size must be >= 0")

    def _fit(self, dataset):
        raise NotImplementedError


def test_params_declared_once_with_defaults_converters_and_accessors():
    fitter = Fitter(size=5)
    assert (fitter.getSize(), fitter.getRate(), fitter.getNames(), fitter.getOutputCol()) == (5, 0.5, [], "out")
    assert not fitter.isDefined(fitter.flag) and fitter.getParam("size").doc == "a size"
    assert fitter.setRate(1).getRate() == 1.0 and isinstance(fitter.getRate(), float)  # the default's type
    assert fitter.setParams(size=7, rate=None).value("size") == 7 and fitter.getRate() == 1.0  # None: left as it was
    assert fitter.values_of(_Shared) == {"rate": 1.0}
    with pytest.raises(TypeError, match="Fitter has no Param 'sise'; its Params are "):
        Fitter(sise=5)
    with pytest.raises(ValueError, match="size must be >= 0"):
        Fitter(size=-1)
    with pytest.raises(TypeError, match="forces keyword arguments"):
        Fitter(4)  # keyword arguments only, as pyspark's stages
    with pytest.raises(TypeError, match="needs a converter"):
        param([], "a list without a converter")


def test_stage_params_save_and_load_with_their_defaults(spark, tmp_path):
    fitter = Fitter(names=["a", "b"])
    fitter.write().overwrite().save(str(tmp_path / "fitter"))
    back = Fitter.load(str(tmp_path / "fitter"))
    assert (back.uid, back.getNames(), back.getSize(), back.isSet(back.size)) == (fitter.uid, ["a", "b"], 3, False)
