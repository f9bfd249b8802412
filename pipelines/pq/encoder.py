"""``PQEncoder``: a Spark ML Estimator that trains PQ codebooks; its Model adds a binary code column.

``fit`` samples the training vectors, trains M codebooks of 2^nbits centroids (plus an optional
OPQ rotation and IVF coarse centroids); ``transform`` encodes every row in an Arrow UDF
(``udfs.pq.encode_batch``: the batch's vectors as one matrix, one matmul per sub-space per
cache-sized block of rows); ``decode`` reconstructs vectors from codes. The model saves its Params
as Spark ML metadata and its arrays as one Parquet row under ``data/``.

IVF (``nlist`` > 0) is residual by default, as Faiss's ``IndexIVFPQ`` (``by_residual``): the codebooks are
trained on, and the codes quantise, each vector minus its list's coarse centroid, so a code stands for
``centroid + decode(code)`` and needs its list id to be decoded or scored. The residuals are much smaller
than the vectors, so the same code size quantises them far better. The coarse centroids are k-means in the
quantised space, spherical (unit length) for ``ip``/``cosine`` as Faiss trains an inner-product IVF, so
that the nearest list by L2 is the nearest by inner product. Residual codebooks train on the driver, where
the coarse k-means already holds the sample (the sample's size is bounded by ``sampleSize``).

Encode cost on MNIST-784 (60,000 vectors, M=8, two tasks on two cores): the numpy kernel is about
2x Faiss's ``compute_codes`` per core; the rest is Spark's. Spark writes ``array<float>`` vectors
into Arrow element by element in the JVM (about half the CPU of an ``array<float>`` encode), while
``binary`` vectors (packed float32) go as one buffer per batch and take about 30% less CPU in all;
each PySpark task also costs its worker about 0.1 CPU-second whatever its size.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from pyspark.ml import Estimator, Model
from pyspark.ml.param.shared import HasInputCol, HasMaxIter, HasOutputCol, HasSeed
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.pq.codebooks import INITS, kmeans, train_codebooks, train_codebooks_spark, train_opq
from pipelines.pq.validation import (
    PQError,
    check_layout,
    check_list_col,
    check_training_size,
    encoder_input,
    float_array,
    infer_dim,
    problem,
)
from pipelines.stages import ArrayModel, StageParams, param
from udfs.pq import (
    METRICS,
    Quantiser,
    code_size,
    decode_udf,
    encode_udf,
    prepare,
    reconstruct,
    residuals,
    stack_vectors,
)


class _PQParams(StageParams, HasInputCol, HasOutputCol, HasSeed, HasMaxIter):
    """Params shared by ``PQEncoder`` and ``PQEncoderModel``."""

    inputCol = param("vector", "column of vectors: numeric arrays, packed float32 (binary) or ML vectors")
    outputCol = param("code", "output: the packed PQ code (binary)")
    seed = param(42, "random seed of the sample and the k-means")
    maxIter = param(25, "k-means iterations")
    m = param(8, "number of sub-spaces (sub-quantisers); must divide the dimension")
    nbits = param(8, "bits per sub-space code, 4 to 8 (2^nbits centroids each)")
    metric = param("l2", "'l2', 'ip' (inner product) or 'cosine' (vectors normalised)")
    sampleSize = param(65536, "maximum number of training vectors sampled from the input")
    distributedMinRows = param(
        200000,
        "train the sub-space k-means as Spark tasks (one per sub-space) when the "
        "sample has at least this many rows; smaller samples train on the driver",
    )
    opq = param(False, "learn an OPQ rotation before quantising (driver-side training)")
    opqIter = param(20, "OPQ alternations (rotation / PQ re-training)")
    nlist = param(0, "IVF coarse centroids (0: no IVF); transform then fills listCol")
    listCol = param("list_id", "output column of the IVF list id")
    byResidual = param(
        True,
        "with IVF, quantise each vector minus its list's coarse centroid (Faiss's IndexIVFPQ "
        "by_residual); ignored when nlist is 0",
    )
    initMode = param(
        "random", "k-means initialisation: 'random' (distinct training points, Faiss's default and ours) or 'k-means++'"
    )

    @property
    def residual(self) -> bool:
        """Whether the codes quantise residuals: IVF with ``byResidual``."""
        return bool(self.getNlist()) and self.getByResidual()


def _normalised(vec: Column) -> Column:
    """Spark-side unit-length vectors (cosine), for training that never leaves Spark."""
    norm = F.sqrt(F.aggregate(vec, F.lit(0.0), lambda acc, x: acc + x * x))
    return F.transform(vec, lambda x: F.when(norm > 0, x / norm).otherwise(x).cast("float"))


class PQEncoder(Estimator, _PQParams, DefaultParamsWritable, DefaultParamsReadable):
    """Product quantiser trainer: ``fit`` learns M x 2^nbits centroids per sub-space (k-means as Faiss)."""

    def _fit(self, dataset: DataFrame) -> "PQEncoderModel":
        metric, m, nbits = self.getMetric(), self.getM(), self.getNbits()
        if metric not in METRICS:
            raise PQError(f"unknown metric '{metric}', expected one of {list(METRICS)}")
        init = self.getInitMode()
        if init not in INITS:
            raise PQError(f"unknown initMode '{init}', expected one of {list(INITS)}")
        vec = float_array(dataset, self.getInputCol())
        dim = infer_dim(dataset, self.getInputCol())
        check_layout(dim, m, nbits)
        k = 1 << nbits
        marked = dataset.select(vec.alias("_v")).withColumn("_problem", problem(F.col("_v"), dim))
        stats = marked.agg(F.count(F.lit(1)).alias("n"), F.count("_problem").alias("bad")).first()
        if stats["bad"]:
            raise PQError(
                f"{stats['bad']} of {stats['n']} training rows have a null, wrong-dimension "
                f"(expected {dim}) or NaN/inf vector; quarantine them first (validation.split_vectors)"
            )
        sample = self._sample(marked.select("_v"), stats["n"])
        n_train = sample.count()
        check_training_size(n_train, k)
        books, x, rotation, coarse = None, None, None, None
        if n_train >= self.getDistributedMinRows() and not self.getOpq() and not self.residual:
            train_vec = _normalised(F.col("_v")) if metric == "cosine" else F.col("_v")
            books = train_codebooks_spark(
                sample.select("_row", train_vec.alias("_v")),
                "_v",
                dim,
                m,
                k,
                self.getMaxIter(),
                self.getSeed(),
                init,
            )
        else:
            x = prepare(stack_vectors(sample.orderBy("_row").toPandas()["_v"], dim), metric, None)
            if self.getOpq():
                rotation = train_opq(x, m, k, self.getOpqIter(), 4, self.getSeed())
                x = x @ rotation
        if self.getNlist():
            check_training_size(n_train, self.getNlist(), "IVF coarse quantiser")
            if x is None:
                x = prepare(stack_vectors(sample.orderBy("_row").toPandas()["_v"], dim), metric, None)
            spherical = metric != "l2"
            coarse = kmeans(x, self.getNlist(), self.getMaxIter(), self.getSeed() - 1, init, spherical)
        if books is None:
            train = residuals(x, coarse)[1] if self.residual else x
            books = train_codebooks(train, m, k, self.getMaxIter(), self.getSeed(), init)
        model = PQEncoderModel(books, rotation, coarse)
        return self._copyValues(model)

    def _sample(self, vectors: DataFrame, n: int) -> DataFrame:
        """At most ``sampleSize`` rows (all for a smaller input), numbered by ``_row`` for a stable order."""
        size = self.getSampleSize()
        if n > size:
            vectors = vectors.sample(fraction=min(1.0, 1.1 * size / n), seed=self.getSeed())
        numbered = vectors.withColumn("_row", F.monotonically_increasing_id())
        if n > size:
            numbered = numbered.orderBy(F.rand(self.getSeed())).limit(size)
        return numbered.cache()


class PQEncoderModel(Model, _PQParams, ArrayModel):
    """Trained product quantiser: codebooks ``(M, K, dsub)``, optional OPQ rotation and IVF centroids."""

    def __init__(
        self,
        codebooks: np.ndarray | None = None,
        rotation: np.ndarray | None = None,
        coarse: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.codebooks = None if codebooks is None else np.ascontiguousarray(codebooks, np.float32)
        self.rotation = None if rotation is None else np.ascontiguousarray(rotation, np.float32)
        self.coarse = None if coarse is None else np.ascontiguousarray(coarse, np.float32)

    @property
    def dim(self) -> int:
        """Vector dimension d."""
        return int(self.codebooks.shape[0] * self.codebooks.shape[2])

    @property
    def code_size(self) -> int:
        """Bytes per encoded vector."""
        return code_size(self.getM(), self.getNbits())

    @property
    def quantiser(self) -> Quantiser:
        """The trained arrays and the Params the numpy kernels and UDFs read."""
        return Quantiser(self.codebooks, self.rotation, self.coarse, self.getMetric(), self.getNbits(), self.residual)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Raw vectors into the quantised space (normalised for cosine, OPQ-rotated)."""
        return prepare(x, self.getMetric(), self.rotation)

    def decode_array(self, packed: np.ndarray, lists: np.ndarray | None = None) -> np.ndarray:
        """Raw-space reconstructions of packed codes (numpy, driver side); residual codes need their ``lists``."""
        pq = self.quantiser
        if pq.residual_coarse is not None and lists is None:
            raise PQError("residual codes need their IVF list ids to be decoded")
        return reconstruct(packed, lists, pq)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        vec = encoder_input(dataset, self.getInputCol())  # wrong-length and NaN/inf rows get null codes in numpy
        codes = encode_udf(self.dim, self.quantiser)
        if self.coarse is None:
            return dataset.withColumn(self.getOutputCol(), codes(vec))
        return (
            dataset.withColumn("_pq", codes(vec))
            .withColumn(self.getOutputCol(), F.col("_pq.code"))
            .withColumn(self.getListCol(), F.col("_pq.list_id"))
            .drop("_pq")
        )

    def decode(self, dataset: DataFrame, output_col: str = "decoded") -> DataFrame:
        """Add ``output_col`` (``array<float>``): the vector each code stands for, in the raw space (residual
        codes: their list's centroid plus the decoded residual, so ``listCol`` must be present)."""
        pq = self.quantiser
        lists = F.col(check_list_col(dataset, self.getListCol())) if pq.residual_coarse is not None else F.lit(0)
        vectors = decode_udf(pq)
        return dataset.withColumn(output_col, vectors(F.col(self.getOutputCol()), lists))

    def arrays(self) -> dict[str, np.ndarray | None]:
        return {"codebooks": self.codebooks, "rotation": self.rotation, "coarse": self.coarse}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray | None]) -> "PQEncoderModel":
        if arrays.get("codebooks") is None:
            raise PQError("the saved PQ model has no codebooks")
        return cls(arrays["codebooks"], arrays.get("rotation"), arrays.get("coarse"))

    def loaded(self, metadata: Mapping[str, Any]) -> None:
        if "byResidual" not in {**metadata["paramMap"], **metadata.get("defaultParamMap", {})}:
            self._set(byResidual=False)  # saved before residual IVF existed: its lists hold raw-vector codes
