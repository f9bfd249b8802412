"""Batch k-nearest-neighbour search over a PQ-coded item table, in Spark, as a join of query blocks with item blocks.

Neither side goes through the driver:

* query blocks: ``mapInPandas`` prepares the query vectors; with IVF it also finds each query's ``nprobe``
  nearest lists (the coarse centroids are model-sized and shipped with the UDF) and gives one row per
  query and probed list. The rows are grouped by list and hashed query id into blocks of about ``block``
  queries, and ``applyInPandas`` packs each block into one row ``(list id, query ids, float32 matrix)``.
* item blocks: ``mapInPandas`` packs each item partition, without a shuffle, into rows of at most
  ``ITEM_BLOCK_BYTES`` of unpacked codes (raw vectors for brute force) with their ids; one row per list
  with IVF.
* pairs: flat search crosses every query block with every item block (a cartesian product, hinted so that
  Spark never broadcasts the query side through the driver); IVF joins on the list id (sort-merge), so
  a query block only meets the lists it probes. ``mapInPandas`` scores each pair with the numpy kernels
  (ADC lookup tables per query block, top-k) and a window over ``query_id`` merges the pairs' top-k.
* residual IVF codes (the model's ``byResidual``, Faiss's ``IndexIVFPQ``): a pair's query block and codes
  share one list, so its lookup tables are built for that list's centroid (``udfs.pq.list_queries``: the
  tables of ``q - centroid`` for ``l2``, of ``q`` plus the coarse term ``-<q, centroid>`` for ``ip``/``cosine``),
  still one table batch per block. ``nprobe`` 0 scans every list of a residual model.

Re-ranking joins the best ``rerank_k`` ADC candidates with the raw item vectors (by item id) and the
query vectors (by query id) and re-scores them with exact distances.

Cost: the driver holds the model's arrays (codebooks, rotation, coarse centroids) and one row of query
statistics (the validation aggregate), whatever the number of queries. The query table is shuffled once
into blocks (with IVF each query goes to each of its ``nprobe`` lists, so a list's block still holds
about ``block`` queries and one lookup-table batch serves them). A flat search then reads every
query-block partition once per item partition and every item partition once per query-block partition
(``L x R`` tasks; the item side is recomputed per query partition, so cache a codes table that is not
cheap to read); IVF shuffles the packed codes once by list id instead. A pair reaches Python as one row
carrying both blocks, so a task's Python memory grows with its query blocks times its item bytes. The
candidates (``k`` per query per item block) are shuffled once more by ``query_id`` for the merge.
On MNIST (10,000 queries of 784 floats, 60,000 items, M=8, two cores of a loaded machine) this took
about 1.5x the time of the former broadcast of collected queries, and 3x with IVF (nprobe 8 of 64
lists), where packing the query blocks dominated: the shuffled query bytes grow to nprobe x 31 MB (since
then each Arrow batch packs its queries per list before the shuffle, so the bytes move as a few large rows;
at nprobe 32 of 256 lists that is still 1 GB of query vectors through the shuffle).
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.connect import share
from pipelines.pq.encoder import PQEncoderModel
from pipelines.pq.validation import PQError, check_list_col, float_array
from udfs.pq import (
    adc_distances,
    concat_batches,
    exact_distances,
    list_groups,
    list_queries,
    lookup_tables,
    metric_offset,
    prepare,
    probe_lists,
    scan_topk,
    series_to_codes,
    stack_vectors,
    unpack_codes,
)

RESULT_COLUMNS = ("query_id", "item_id", "distance", "rank")
ITEM_BLOCK_BYTES = 16 << 20
"""Largest item block (codes or raw vectors) packed into one row: bounds the row each pair carries."""

VectorMap = Callable[[np.ndarray], np.ndarray]
"""Prepares query vectors (cosine normalisation, OPQ rotation) or finds their probed lists."""
Scan = tuple[Callable[[np.ndarray], object], Callable[[object, np.ndarray], np.ndarray]]
"""``scan_topk``'s ``(tables, distances)`` for one pair's query and item matrices."""
Kernel = Callable[[np.ndarray, np.ndarray, int], Scan]
"""``Scan`` of one pair from its query matrix, item matrix and list id (0 without IVF)."""


def check_queries(queries: DataFrame, dim: int | None = None) -> int:
    """Number of queries in ``(query_id, vector)``; one Spark aggregate checks that the ids are unique and the
    vectors all have one length (``dim`` when given)."""
    size = F.size(float_array(queries, "vector"))
    row = queries.agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("query_id").alias("ids"),
        F.min(size).alias("lo"),
        F.max(size).alias("hi"),
    ).first()
    if row["n"] == 0:
        raise PQError("no query vectors")
    if row["ids"] != row["n"]:
        raise PQError(f"{row['n'] - row['ids']} duplicate query_id value(s) among the queries")
    if row["lo"] != row["hi"] or (dim is not None and row["lo"] != dim):
        found = row["lo"] if row["lo"] == row["hi"] else f"{row['lo']}..{row['hi']}"
        raise PQError(f"query vectors have dimension {found}" + (f", the model {dim}" if dim is not None else ""))
    return int(row["n"])


def _result_schema(query_type: T.DataType, item_type: T.DataType) -> T.StructType:
    return T.StructType(
        [
            T.StructField("query_id", query_type),
            T.StructField("item_id", item_type),
            T.StructField("distance", T.DoubleType()),
        ]
    )


def _rank(candidates: DataFrame, k: int) -> DataFrame:
    """Global merge: the ``k`` nearest per query over all pairs' candidates, ranked 1..k."""
    order = Window.partitionBy("query_id").orderBy("distance", "item_id")
    return candidates.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= k).select(*RESULT_COLUMNS)


def _query_blocks(
    queries: DataFrame, n: int, block: int, prep: VectorMap, probe: VectorMap | None, share_probed: float = 1.0
) -> DataFrame:
    """``(list_id, query_ids, queries)``: blocks of about ``block`` prepared queries packed as float32 bytes.

    ``mapInPandas`` prepares the vectors and, with ``probe`` (IVF: prepared queries to their ``(B, nprobe)``
    lists), puts each query in each list it probes and in a bucket of its hashed id (``share_probed``, the
    share of lists a query probes, sizes the hash, so that a list's bucket holds about ``block`` of the
    queries that probe it); it packs the Arrow batch's queries of each (list, bucket) into one row, so a
    query vector is shuffled once per block it joins, inside that block's row rather than as a row of its
    own. ``applyInPandas`` then concatenates a (list, bucket)'s rows from all batches into the block, ordered
    by query id. Without IVF every query is in list 0.
    """
    id_type = queries.schema["query_id"].dataType
    blocks = max(1, math.ceil(n * share_probed / block))
    schema = T.StructType(
        [
            T.StructField("list_id", T.LongType()),
            T.StructField("query_ids", T.ArrayType(id_type)),
            T.StructField("queries", T.BinaryType()),
        ]
    )
    rows = T.StructType([*schema.fields, T.StructField("bucket", T.LongType())])

    def probed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            if frame.empty:
                continue
            q = prep(stack_vectors(frame["vector"], len(frame["vector"].iloc[0])))
            lists = probe(q) if probe is not None else np.zeros((len(q), 1), np.int64)
            ids = frame["query_id"].to_numpy()
            each = np.repeat(np.arange(len(q)), lists.shape[1])
            bucket = (pd.util.hash_array(ids) % np.uint64(blocks)).astype(np.int64)[each]
            yield pd.DataFrame(
                [
                    (key // blocks, ids[each[part]], q[each[part]].tobytes(), key % blocks)
                    for key, part in list_groups(lists.ravel().astype(np.int64) * blocks + bucket)
                ],
                columns=rows.names,
            )

    def pack(frame: pd.DataFrame) -> pd.DataFrame:
        ids = np.concatenate(frame["query_ids"].to_list())
        x = np.frombuffer(b"".join(frame["queries"]), np.float32).reshape(len(ids), -1)
        order = np.argsort(ids, kind="stable")
        return pd.DataFrame(
            {"list_id": [frame["list_id"].iloc[0]], "query_ids": [ids[order]], "queries": [x[order].tobytes()]}
        )

    keyed = queries.select("query_id", float_array(queries, "vector").alias("vector")).mapInPandas(probed, rows)
    return keyed.groupBy("list_id", "bucket").applyInPandas(pack, schema)


def _item_blocks(
    items: DataFrame, columns: list, matrix: Callable[[pd.DataFrame], np.ndarray], list_col: str | None
) -> DataFrame:
    """``(list_id, item_ids, items)``: each partition's ``matrix(frame)`` rows packed as bytes, per list (IVF)."""
    selected = items.select(*columns)
    id_type = selected.schema["item_id"].dataType

    def pack(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = concat_batches(batches)
        if frame is None:
            return
        x = matrix(frame)
        ids = frame["item_id"].to_numpy()
        lists = frame[list_col].to_numpy(np.int64) if list_col else np.zeros(len(frame), np.int64)
        rows = max(1, ITEM_BLOCK_BYTES // max(1, x[:1].nbytes))
        yield pd.DataFrame(
            [
                (lst, ids[part], x[part].tobytes())
                for lst, positions in list_groups(lists)
                for part in np.split(positions, range(rows, len(positions), rows))
            ],
            columns=["list_id", "item_ids", "items"],
        )

    schema = T.StructType(
        [
            T.StructField("list_id", T.LongType()),
            T.StructField("item_ids", T.ArrayType(id_type)),
            T.StructField("items", T.BinaryType()),
        ]
    )
    return selected.mapInPandas(pack, schema)


def _pairs(query_blocks: DataFrame, item_blocks: DataFrame, ivf: bool) -> DataFrame:
    """Every query block with every item block (flat), or with the item blocks of its list (IVF).

    The hints keep the query blocks off the driver: Spark would otherwise broadcast a side it
    estimates small, which collects it first.
    """
    if ivf:
        return query_blocks.hint("merge").join(item_blocks, "list_id")
    return query_blocks.drop("list_id").hint("shuffle_replicate_nl").crossJoin(item_blocks.drop("list_id"))


def _candidates(
    query_blocks: DataFrame,
    item_blocks: DataFrame,
    ivf: bool,
    k: int,
    kernel: Kernel,
    item_dtype: np.dtype,
    block: int,
    offset: float,
) -> DataFrame:
    """``(query_id, item_id, distance)``: the ``k`` nearest per query within each (query block, item block) pair.

    ``kernel(q, x, list_id)`` gives ``scan_topk``'s ``(tables, distances)`` for a pair's query and item matrices.
    """
    query_type = query_blocks.schema["query_ids"].dataType.elementType
    item_type = item_blocks.schema["item_ids"].dataType.elementType

    def scan(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            lists = frame["list_id"] if ivf else np.zeros(len(frame), np.int64)
            for lst, qids, qbytes, iids, ibytes in zip(
                lists, frame["query_ids"], frame["queries"], frame["item_ids"], frame["items"]
            ):
                q = np.frombuffer(qbytes, np.float32).reshape(len(qids), -1)
                x = np.frombuffer(ibytes, item_dtype).reshape(len(iids), -1)
                top = scan_topk(len(iids), len(qids), k, block, *kernel(q, x, int(lst)))
                yield top.frame(np.asarray(qids), np.asarray(iids), offset)

    pairs = _pairs(query_blocks, item_blocks, ivf)
    return pairs.mapInPandas(scan, _result_schema(query_type, item_type))


def _adc_candidates(
    model: PQEncoderModel, items: DataFrame, queries: DataFrame, n: int, k: int, nprobe: int, block: int
) -> DataFrame:
    """ADC candidates: items have ``item_id`` and the model's code column (and list column when ``nprobe`` > 0
    or the codes are residual, whose ``nprobe`` 0 means every list)."""
    residual = model.residual
    if residual and nprobe == 0:
        nprobe = model.getNlist()
    ivf = nprobe > 0
    if ivf and model.coarse is None:
        raise PQError("nprobe > 0 needs an IVF model (train with nlist > 0)")
    spark = items.sparkSession
    shared = share(spark, (model.codebooks, model.rotation, model.coarse), "the model's arrays")
    metric, m, nbits, size = model.getMetric(), model.getM(), model.getNbits(), model.code_size
    code_col, list_col = model.getOutputCol(), check_list_col(items, model.getListCol()) if ivf else None

    def prep(x: np.ndarray) -> np.ndarray:
        return prepare(x, metric, shared.value[1])

    def probe(q: np.ndarray) -> np.ndarray:
        return probe_lists(q, shared.value[2], nprobe)

    def codes(frame: pd.DataFrame) -> np.ndarray:
        return np.ascontiguousarray(unpack_codes(series_to_codes(frame[code_col], size), m, nbits))

    def kernel(q: np.ndarray, x: np.ndarray, lst: int) -> Scan:
        books = shared.value[0]
        if not residual:
            return lambda rows: lookup_tables(q[rows], books, metric), lambda luts, pos: adc_distances(luts, x[pos])
        lut_q, bias = list_queries(q, shared.value[2][lst], metric)
        return (
            lambda rows: (lookup_tables(lut_q[rows], books, metric), bias[rows, None]),
            lambda tables, pos: adc_distances(tables[0], x[pos]) + tables[1],
        )

    columns = ["item_id", code_col] + ([list_col] if ivf else [])
    probed_share = min(nprobe, len(model.coarse)) / len(model.coarse) if ivf else 1.0
    return _candidates(
        _query_blocks(queries, n, block, prep, probe if ivf else None, probed_share),
        _item_blocks(items, columns, codes, list_col),
        ivf,
        k,
        kernel,
        np.uint8,
        block,
        metric_offset(metric),
    )


def _exact_candidates(
    items: DataFrame, queries: DataFrame, n: int, k: int, metric: str, vector_col: str, block: int
) -> DataFrame:
    """Brute-force candidates: exact distances between raw vectors, through the same block join."""

    def prep(x: np.ndarray) -> np.ndarray:
        return prepare(x, metric, None)

    def raw(frame: pd.DataFrame) -> np.ndarray:
        return prep(stack_vectors(frame["_v"], len(frame["_v"].iloc[0])))

    def kernel(q: np.ndarray, x: np.ndarray, lst: int) -> Scan:
        return lambda rows: q[rows], lambda qb, pos: exact_distances(qb, x[pos], metric)

    return _candidates(
        _query_blocks(queries, n, block, prep, None),
        _item_blocks(items, ["item_id", float_array(items, vector_col).alias("_v")], raw, None),
        False,
        k,
        kernel,
        np.float32,
        block,
        metric_offset(metric),
    )


def _rerank(candidates: DataFrame, items: DataFrame, queries: DataFrame, metric: str, vector_col: str) -> DataFrame:
    """Replace the ADC distance of each candidate by its exact distance (raw vectors joined by item and query id)."""
    offset = metric_offset(metric)
    joined = (
        candidates.select("query_id", "item_id")
        .join(items.select("item_id", float_array(items, vector_col).alias("_x")), "item_id")
        .join(queries.select("query_id", float_array(queries, "vector").alias("_q")), "query_id")
    )

    def exact(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            if frame.empty:
                continue
            dim = len(frame["_q"].iloc[0])
            qv = prepare(stack_vectors(frame["_q"], dim), metric, None)
            x = prepare(stack_vectors(frame["_x"], dim), metric, None)
            dist = ((qv - x) ** 2).sum(axis=1) if metric == "l2" else offset - (qv * x).sum(axis=1)
            yield pd.DataFrame(
                {"query_id": frame["query_id"], "item_id": frame["item_id"], "distance": dist.astype(np.float64)}
            )

    schema = _result_schema(queries.schema["query_id"].dataType, items.schema["item_id"].dataType)
    return joined.mapInPandas(exact, schema)


def search(
    model: PQEncoderModel,
    items: DataFrame,
    queries: DataFrame,
    k: int,
    nprobe: int = 0,
    rerank_k: int = 0,
    vectors: DataFrame | None = None,
    vector_col: str = "vector",
    block: int = 256,
    partitions: int = 0,
) -> DataFrame:
    """Top-``k`` neighbours ``(query_id, item_id, distance, rank)`` of every query over the coded items.

    ``queries`` has unique ``query_id`` and raw ``vector`` columns; ``block`` is the number of queries
    packed together (one ADC lookup-table batch). ``rerank_k`` >= ``k`` re-scores that many ADC
    candidates with exact distances on the raw vectors (``vectors``: ``item_id`` and ``vector_col``;
    by default the items table itself). ``partitions`` > 0 spreads the items over that many
    partitions first (a small codes table is otherwise read as one partition, i.e. one core).
    """
    if k < 1:
        raise PQError(f"k must be at least 1, got {k}")
    if rerank_k and rerank_k < k:
        raise PQError(f"rerank_k={rerank_k} must be 0 (off) or at least k={k}")
    raw = items if vectors is None else vectors
    if rerank_k and vector_col not in raw.columns:
        raise PQError(f"re-ranking needs the raw vectors: column '{vector_col}' not in {raw.columns}")
    n = check_queries(queries, model.dim)
    if partitions > 0:
        items = items.repartition(partitions)
    depth = rerank_k or k
    shortlist = _rank(_adc_candidates(model, items, queries, n, depth, nprobe, block), depth)
    if not rerank_k:
        return shortlist
    return _rank(_rerank(shortlist, raw, queries, model.getMetric(), vector_col), k)


def exact_neighbours(
    items: DataFrame, queries: DataFrame, k: int, metric: str, vector_col: str = "vector", block: int = 256
) -> DataFrame:
    """Exact top-``k`` ``(query_id, item_id, distance, rank)`` by brute force in Spark."""
    if k < 1:
        raise PQError(f"k must be at least 1, got {k}")
    n = check_queries(queries)
    return _rank(_exact_candidates(items, queries, n, k, metric, vector_col, block), k)
