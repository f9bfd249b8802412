"""Batch k-nearest-neighbour search over a PQ-coded item table, in Spark.

The query vectors (small) are collected once and broadcast with the codebooks (over Spark Connect, shipped with
the UDF: ``pipelines.connect.share``); every item
partition is scanned by ``mapInPandas``, which builds the ADC lookup tables per block of queries
and keeps a per-partition top-k; a window over ``query_id`` then merges the partitions' top-k.
With IVF, each query only scans the items of its ``nprobe`` nearest lists. With re-ranking, the
best ``rerank_k`` ADC candidates are re-scored with exact distances on the kept raw vectors.
The same scan, with exact distances on raw vectors, gives the brute-force ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.connect import share
from pipelines.pq.encoder import PQEncoderModel
from pipelines.pq.validation import PQError, float_array
from udfs.pq import (
    adc_distances,
    concat_batches,
    exact_distances,
    ivf_groups,
    lookup_tables,
    metric_offset,
    prepare,
    scan_topk,
    series_to_codes,
    stack_vectors,
    unpack_codes,
)

RESULT_COLUMNS = ("query_id", "item_id", "distance", "rank")


@dataclass
class Queries:
    """Query ids and raw vectors, collected on the driver (the query table is the small side)."""

    ids: np.ndarray
    vectors: np.ndarray
    id_type: T.DataType

    @classmethod
    def collect(cls, df: DataFrame, id_col: str = "query_id", vector_col: str = "vector") -> "Queries":
        """Collect ``(id_col, vector_col)`` of a validated query table."""
        pdf = df.select(F.col(id_col).alias("id"), float_array(df, vector_col).alias("v")).toPandas()
        if pdf.empty:
            raise PQError("no query vectors")
        if pdf["id"].duplicated().any():
            raise PQError(
                f"{int(pdf['id'].duplicated().sum())} duplicate {id_col} value(s) among the queries"
            )
        vectors = stack_vectors(pdf["v"], len(pdf["v"].iloc[0]))
        return cls(pdf["id"].to_numpy(), vectors, df.schema[id_col].dataType)

    def sample(self, n: int, seed: int) -> "Queries":
        """A seeded random subset of ``n`` queries (all of them when there are fewer)."""
        if n >= len(self.ids):
            return self
        rows = np.sort(np.random.default_rng(seed).choice(len(self.ids), n, replace=False))
        return Queries(self.ids[rows], self.vectors[rows], self.id_type)


def _result_schema(query_type: T.DataType, item_type: T.DataType) -> T.StructType:
    return T.StructType(
        [
            T.StructField("query_id", query_type),
            T.StructField("item_id", item_type),
            T.StructField("distance", T.DoubleType()),
        ]
    )


def _rank(candidates: DataFrame, k: int) -> DataFrame:
    """Global merge: the ``k`` nearest per query over all partitions' candidates, ranked 1..k."""
    order = Window.partitionBy("query_id").orderBy("distance", "item_id")
    return (
        candidates.withColumn("rank", F.row_number().over(order))
        .filter(F.col("rank") <= k)
        .select(*RESULT_COLUMNS)
    )


def _scan(
    items: DataFrame,
    columns: list[str],
    queries: Queries,
    k: int,
    body: Callable[[pd.DataFrame, np.ndarray], tuple[object, object, object]],
    block: int,
    offset: float,
) -> DataFrame:
    """Partition top-k via ``mapInPandas``; ``body(frame, query_ids)`` gives (groups, tables, distances)."""
    query_ids = share(items.sparkSession, queries.ids, "the query ids")
    item_type = items.schema["item_id"].dataType

    def scan(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = concat_batches(batches)
        if frame is None:
            return
        ids = query_ids.value
        groups, tables, distances = body(frame, ids)
        top = scan_topk(len(frame), groups, k, len(ids), block, tables, distances)
        yield top.frame(ids, frame["item_id"].to_numpy(), offset)

    return items.select(*columns).mapInPandas(scan, _result_schema(queries.id_type, item_type))


def adc_search(
    model: PQEncoderModel, items: DataFrame, queries: Queries, k: int, nprobe: int = 0, block: int = 256
) -> DataFrame:
    """Candidates ``(query_id, item_id, distance)``: the ``k`` smallest ADC distances per query and partition.

    ``items`` has ``item_id`` and the model's code column (and list column when ``nprobe`` > 0).
    """
    spark = items.sparkSession
    q = share(spark, model.prepare(queries.vectors), "the query vectors")
    books = share(spark, model.codebooks, "the codebooks")
    use_ivf = nprobe > 0
    if use_ivf and model.coarse is None:
        raise PQError("nprobe > 0 needs an IVF model (train with nlist > 0)")
    probes = share(spark, model.probes(queries.vectors, nprobe) if use_ivf else None, "the probed lists")
    metric, m, nbits, size = model.getMetric(), model.getM(), model.getNbits(), model.code_size
    code_col, list_col = model.getOutputCol(), model.getListCol()
    columns = ["item_id", code_col] + ([list_col] if use_ivf else [])

    def body(frame: pd.DataFrame, ids: np.ndarray) -> tuple[object, object, object]:
        codes = np.ascontiguousarray(unpack_codes(series_to_codes(frame[code_col], size), m, nbits))
        lists = frame[list_col].to_numpy(np.int64) if use_ivf else None
        groups = ivf_groups(len(frame), len(ids), lists, probes.value)
        return (
            groups,
            lambda rows: lookup_tables(q.value[rows], books.value, metric),
            lambda luts, pos: adc_distances(luts, codes[pos]),
        )

    return _scan(items, columns, queries, k, body, block, metric_offset(metric))


def exact_search(
    items: DataFrame, queries: Queries, k: int, metric: str, vector_col: str = "vector", block: int = 256
) -> DataFrame:
    """Brute-force candidates ``(query_id, item_id, distance)`` on raw vectors, per partition."""
    q = share(items.sparkSession, prepare(queries.vectors, metric, None), "the query vectors")
    dim = queries.vectors.shape[1]
    columns = ["item_id", float_array(items, vector_col).alias("_v")]

    def body(frame: pd.DataFrame, ids: np.ndarray) -> tuple[object, object, object]:
        x = prepare(stack_vectors(frame["_v"], dim), metric, None)
        return (
            ivf_groups(len(frame), len(ids)),
            lambda rows: q.value[rows],
            lambda qb, pos: exact_distances(qb, x[pos], metric),
        )

    return _scan(items, columns, queries, k, body, block, metric_offset(metric))


def rerank(
    candidates: DataFrame, items: DataFrame, queries: Queries, metric: str, vector_col: str = "vector"
) -> DataFrame:
    """Replace the ADC distance of each candidate by its exact distance (raw item vectors joined by id)."""
    q = share(items.sparkSession, prepare(queries.vectors, metric, None), "the query vectors")
    index = share(items.sparkSession, pd.Index(queries.ids), "the query ids")
    dim = queries.vectors.shape[1]
    vectors = items.select("item_id", float_array(items, vector_col).alias("_v"))
    offset = metric_offset(metric)

    def exact(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            qv = q.value[index.value.get_indexer(frame["query_id"])]
            x = prepare(stack_vectors(frame["_v"], dim), metric, None)
            dist = ((qv - x) ** 2).sum(axis=1) if metric == "l2" else offset - (qv * x).sum(axis=1)
            yield pd.DataFrame(
                {
                    "query_id": frame["query_id"],
                    "item_id": frame["item_id"],
                    "distance": dist.astype(np.float64),
                }
            )

    joined = candidates.select("query_id", "item_id").join(vectors, "item_id")
    return joined.mapInPandas(exact, _result_schema(queries.id_type, items.schema["item_id"].dataType))


def search(
    model: PQEncoderModel,
    items: DataFrame,
    queries: Queries,
    k: int,
    nprobe: int = 0,
    rerank_k: int = 0,
    vectors: DataFrame | None = None,
    vector_col: str = "vector",
    block: int = 256,
    partitions: int = 0,
) -> DataFrame:
    """Top-``k`` neighbours ``(query_id, item_id, distance, rank)`` of every query over the coded items.

    ``rerank_k`` >= ``k`` re-scores that many ADC candidates with exact distances on the raw
    vectors (``vectors``: ``item_id`` and ``vector_col``; by default the items table itself).
    ``partitions`` > 0 spreads the items over that many scan tasks first (a small codes table is
    otherwise read as one partition, i.e. one core).
    """
    if k < 1:
        raise PQError(f"k must be at least 1, got {k}")
    if rerank_k and rerank_k < k:
        raise PQError(f"rerank_k={rerank_k} must be 0 (off) or at least k={k}")
    if queries.vectors.shape[1] != model.dim:
        raise PQError(f"query vectors have dimension {queries.vectors.shape[1]}, the model {model.dim}")
    if partitions > 0:
        items = items.repartition(partitions)
    if not rerank_k:
        return _rank(adc_search(model, items, queries, k, nprobe, block), k)
    raw = items if vectors is None else vectors
    if vector_col not in raw.columns:
        raise PQError(f"re-ranking needs the raw vectors: column '{vector_col}' not in {raw.columns}")
    shortlist = _rank(adc_search(model, items, queries, rerank_k, nprobe, block), rerank_k)
    return _rank(rerank(shortlist, raw, queries, model.getMetric(), vector_col), k)


def exact_neighbours(
    items: DataFrame, queries: Queries, k: int, metric: str, vector_col: str = "vector", block: int = 256
) -> DataFrame:
    """Exact top-``k`` ``(query_id, item_id, distance, rank)`` by brute force in Spark."""
    return _rank(exact_search(items, queries, k, metric, vector_col, block), k)
