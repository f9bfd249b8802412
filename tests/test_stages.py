"""The one writer/reader of models that carry arrays (``pipelines.stages.ArrayModel``): arrays, absent arrays,
scalars and bytes come back as saved, with the uid and the Params."""
import numpy as np
from pyspark.ml import Model
from pyspark.ml.param.shared import HasOutputCol

from pipelines.gbdt_lr.xgboost_leaves import XGBoostLeafEncoderModel
from pipelines.pq.encoder import PQEncoderModel
from pipelines.stages import ArrayModel
from pipelines.text.tfidf import SklearnIdfModel


class Toy(Model, HasOutputCol, ArrayModel):
    def __init__(self, weights=None, rotation=None, count=0, blob=b""):
        super().__init__()
        self._setDefault(outputCol="out")
        self.weights, self.rotation, self.count, self.blob = weights, rotation, count, blob

    def _transform(self, dataset):
        return dataset

    def arrays(self):
        return {"weights": self.weights, "rotation": self.rotation, "count": np.int64(self.count),
                "blob": np.frombuffer(self.blob, np.uint8)}

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
    models = [PQEncoderModel(np.zeros((2, 4, 3), np.float32)),
              SklearnIdfModel(idf=np.array([1.0, 2.5]), docFreq=np.array([3, 1]), numDocs=4)]
    for i, model in enumerate(models):
        model.write().overwrite().save(str(tmp_path / str(i)))
        back = type(model).load(str(tmp_path / str(i)))
        assert back.uid == model.uid
        for name, value in model.arrays().items():
            np.testing.assert_array_equal(back.arrays()[name], value)
    assert XGBoostLeafEncoderModel.from_arrays({"booster": np.frombuffer(b"ubj", np.uint8)}).booster_raw == b"ubj"
