"""Quality of a PQ index: recall against exact neighbours, reconstruction error, code size.

R@k is the share of queries whose true nearest neighbour is among the first k results (the
definition of the Faiss benchmarks). The reconstruction MSE is the mean over vectors of
``||x - decode(encode(x))||^2``, summed over dimensions as Faiss reports it; it is computed per
Arrow batch and summed in Spark, so nothing that grows with the item table reaches the driver.
"""

from __future__ import annotations

import functools
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.pq.encoder import PQEncoderModel
from pipelines.pq.validation import check_list_col, float_array
from udfs.pq import Quantiser, decode, prepare, series_to_codes, stack_vectors, unpack_codes

RECALL_KS = (1, 10, 100)


def recall_at(found: DataFrame, truth: DataFrame, ks: Iterable[int] = RECALL_KS) -> dict[str, float]:
    """``{"r1": ..., "r10": ...}``: share of queries whose rank-1 true neighbour is in the first k found."""
    nearest = truth.filter("rank = 1").select(F.col("query_id").alias("_q"), F.col("item_id").alias("_true"))
    hits = found.join(nearest, (F.col("query_id") == F.col("_q")) & (F.col("item_id") == F.col("_true")))
    first_hit = hits.groupBy("query_id").agg(F.min("rank").alias("hit_rank"))
    row = nearest.agg(F.count(F.lit(1)).alias("n")).first()
    n = row["n"]
    counts = first_hit.agg(*[F.sum((F.col("hit_rank") <= k).cast("int")).alias(f"r{k}") for k in ks]).first()
    return {f"r{k}": (counts[f"r{k}"] or 0) / n if n else 0.0 for k in ks}


def _squared_errors(batches: Iterator[pd.DataFrame], pq: Quantiser) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: per batch, the sum of squared reconstruction errors and the row count
    (residual codes are reconstructed as their list's centroid plus the decoded residual)."""
    m, _, dsub = pq.codebooks.shape
    for frame in batches:
        x = prepare(stack_vectors(frame["_v"], m * dsub), pq.metric, pq.rotation)
        recon = decode(unpack_codes(series_to_codes(frame["_c"], pq.code_size), m, pq.nbits), pq.codebooks)
        if pq.residual_coarse is not None:
            recon += pq.residual_coarse[frame["_l"].to_numpy(np.int64)]
        err = np.einsum("nd,nd->n", x - recon, x - recon).astype(np.float64)
        yield pd.DataFrame({"sse": [float(err.sum())], "n": [len(frame)]})


def reconstruction_mse(model: PQEncoderModel, coded: DataFrame, vector_col: str = "vector") -> float:
    """Mean squared reconstruction error per vector of ``coded`` (raw vectors and the model's codes).

    For cosine the error is measured on the normalised vectors (what is quantised); residual codes are read
    with the model's list column.
    """
    body = functools.partial(_squared_errors, pq=model.quantiser)
    lists = F.col(check_list_col(coded, model.getListCol())) if model.residual else F.lit(0)
    parts = coded.select(
        float_array(coded, vector_col).alias("_v"), F.col(model.getOutputCol()).alias("_c"), lists.alias("_l")
    )
    row = parts.mapInPandas(body, "sse double, n long").agg(F.sum("sse").alias("sse"), F.sum("n").alias("n")).first()
    return float(row["sse"] / row["n"]) if row["n"] else float("nan")


def index_summary(model: PQEncoderModel) -> dict[str, object]:
    """Layout facts for ``_metrics.json``: M, nbits, metric, d, bytes per vector and compression ratio."""
    return {
        "m": model.getM(),
        "nbits": model.getNbits(),
        "metric": model.getMetric(),
        "dim": model.dim,
        "bytes_per_vector": model.code_size,
        "compression_vs_float32": round(4 * model.dim / model.code_size, 2),
        "opq": model.rotation is not None,
        "nlist": 0 if model.coarse is None else len(model.coarse),
        "by_residual": model.residual,
    }
