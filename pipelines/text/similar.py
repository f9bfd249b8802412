"""Similar documents: top-k cosine neighbours in Spark, exact by blocked sparse products, approximate through
clustered lists (``ivf``) or an inverted index.

Inputs are unit-length TF-IDF entries ``(doc_id, index, weight)`` (``vector_entries(..., unit=True)``),
so a dot product is a cosine. Every method ends with a top-k per query by a window on ``doc_id`` (ties:
lower ``neighbour_id`` first); never a dense N x N matrix, nothing per document on the driver.

``blocked`` (exact): documents are hashed into blocks of about ``block_size``; each block becomes one scipy
CSR matrix (``applyInPandas``); pairs of blocks (the upper triangle for all pairs, every (query block,
corpus block) in query mode) are joined and multiplied in ``mapInPandas``, each keeping every row's top-k
(and every column's, for an off-diagonal pair of the triangle); the window merges the per-block lists.
Cost: the sparse products (sum of df^2 / 2 multiply-adds) plus N^2 / 2 dense scores (8 MB per pair of
blocks at 1,000), so it grows with the square of the corpus.

``ivf`` (approximate, cost linear in N): each document is hashed with signs into ``dim`` buckets (a sparse
sketch whose dot products stay close to the cosines), Spark ML KMeans cuts the corpus sketches into
N / ``list_size`` lists, and each query is scored exactly (the blocked kernel, sparse TF-IDF products)
against the corpus documents of its ``probes`` nearest lists only: about probes x list_size scores per
query. Neighbours in lists not probed are missed; ``recall_at_k`` measures the loss against an exact table.

``auto`` (the job's default) is ``blocked`` up to ``exact_max_docs`` corpus documents and ``ivf`` above.

``inverted_index``: the corpus entries grouped by term (postings) are self-joined on the term and the
products summed per pair. Terms in more than ``max_df_fraction`` of the indexed documents are skipped;
each query then keeps its ``candidates`` best partial scores and the skipped terms' contribution is added
exactly. Pairs that share only skipped terms are not found, so recall is below 1 when terms are skipped.
The join emits sum(df^2) rows over the kept terms.

Measured (benchmarks/bench_text.py, local[2] on a 2-core machine shared with other work, so times are
noisy): Wikipedia slice (6,514 long articles, 4.3M entries, sum df^2 2.6e9): ``blocked`` recall@10 0.9997
against brute force in 18 s; ``inverted_index`` needs a high cap for recall (rescoring 100 candidates:
recall 0.63 / 0.70 / 0.82 / 0.94 at caps 0.01 / 0.02 / 0.05 / 0.2) and took 364 s for recall 0.69.
THUCNews titles (20,000 short documents): ``blocked`` 30 s. Wikipedia paragraphs of 20 words or more
(``--scale``, ivf with 200 documents per list and 8 probes, Euclidean KMeans, under a load average of about
20): 6,514 paragraphs: ``blocked`` 37 s, ``ivf`` 125 s, recall@10 0.969 (KMeans, the sketches' two shuffles and
many small jobs are a fixed cost of about 90 s); 26,056 paragraphs: ``blocked`` 474 s (x12.9), ``ivf`` 615 s,
recall@10 0.913, its lists so unbalanced that it scored 13 times the balanced probes x list_size per query,
hence cosine KMeans with unit centres: 152 s with balanced lists but recall@10 0.752 (against exact top-10 of
1,000 sampled paragraphs, 67 s in query mode); 32 probes: recall@10 0.873 in 127 s (a lighter load). So
``ivf`` does not yet reach recall 0.95 beyond 6,514 paragraphs; raise ``probes`` with the corpus (cost grows
with probes x list_size per query).
Use ``blocked`` (``auto``'s choice) up to a few tens of thousands of documents, where its fixed cost is
lower; ``ivf`` above, where blocked's quadratic cost dominates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.ml.clustering import KMeans
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from udfs.text import block_pair_top_k, block_schema, nearest_centroids_udf, pack_block, sparse_vectors_udf

NEIGHBOUR_COLUMNS = ["doc_id", "neighbour_id", "cosine", "rank"]
METHODS = ("auto", "blocked", "ivf", "inverted_index")


def _top(scored: DataFrame, score: str, n: int) -> DataFrame:
    order = Window.partitionBy("doc_id").orderBy(F.col(score).desc(), F.col("neighbour_id"))
    return scored.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= n)


def _dot(left: DataFrame, right: DataFrame, keys: list[str], name: str, condition: Column | None = None) -> DataFrame:
    """Sum of weight products per (doc_id, neighbour_id) over the entries that match on ``keys``."""
    joined = left.join(right, keys)
    if condition is not None:
        joined = joined.filter(condition)
    return joined.groupBy("doc_id", "neighbour_id").agg(F.sum(F.col("q_weight") * F.col("d_weight")).alias(name))


def common_terms(corpus: DataFrame, max_df_fraction: float) -> DataFrame:
    """``(index)`` of the terms found in more than ``max_df_fraction`` of the documents of ``corpus``."""
    n_docs = corpus.agg(F.countDistinct("doc_id")).first()[0]
    return corpus.groupBy("index").count().filter(F.col("count") > max_df_fraction * n_docs).select("index")


def inverted_index_scores(
    corpus: DataFrame, max_df_fraction: float, candidates: int, queries: DataFrame | None = None
) -> DataFrame:
    """``(doc_id, neighbour_id, cosine)`` of the pairs sharing a term not skipped (see the module docstring)."""
    all_pairs = queries is None
    q = (corpus if all_pairs else queries).select("doc_id", "index", F.col("weight").alias("q_weight"))
    d = corpus.select(F.col("doc_id").alias("neighbour_id"), "index", F.col("weight").alias("d_weight"))
    common = common_terms(corpus, max_df_fraction).cache()
    skipped = common.count()
    q_kept, d_kept = q.join(common, "index", "left_anti"), d.join(common, "index", "left_anti")
    if all_pairs:
        half = _dot(q_kept, d_kept, ["index"], "cosine", F.col("doc_id") < F.col("neighbour_id"))
        pairs = half.unionByName(
            half.select(F.col("neighbour_id").alias("doc_id"), F.col("doc_id").alias("neighbour_id"), "cosine")
        )
    else:
        pairs = _dot(q_kept, d_kept, ["index"], "cosine")
    if not skipped:
        return pairs
    shortlist = _top(pairs, "cosine", candidates).select("doc_id", "neighbour_id", F.col("cosine").alias("part"))
    q_common = q.join(common, "index")
    d_common = d.join(common, "index")
    rest = _dot(
        shortlist.select("doc_id", "neighbour_id").join(q_common, "doc_id"), d_common, ["neighbour_id", "index"], "rest"
    )
    return shortlist.join(rest, ["doc_id", "neighbour_id"], "left").select(
        "doc_id", "neighbour_id", (F.col("part") + F.coalesce(F.col("rest"), F.lit(0.0))).alias("cosine")
    )


def _count_docs(entries: DataFrame) -> int:
    return entries.agg(F.countDistinct("doc_id")).first()[0]


def _pack(keyed: DataFrame) -> DataFrame:
    """One packed row per ``block`` of the entries ``(doc_id, index, weight, block)`` (``udfs.text.pack_block``)."""
    return keyed.groupBy("block").applyInPandas(pack_block, block_schema(keyed.schema["doc_id"].dataType))


def _blocks(entries: DataFrame, block_size: int) -> tuple[DataFrame, int]:
    """The documents of ``entries`` hashed into blocks of about ``block_size``, packed; and the number of blocks."""
    n_blocks = max(1, -(-_count_docs(entries) // block_size))
    keyed = entries.select(
        "doc_id", "index", "weight", F.pmod(F.xxhash64("doc_id"), F.lit(n_blocks)).cast("int").alias("block")
    )
    return _pack(keyed), n_blocks


def _block_ids(spark: SparkSession, n: int, name: str) -> DataFrame:
    return spark.range(n).select(F.col("id").cast("int").alias(name))


def _prefixed(packed: DataFrame, prefix: str) -> DataFrame:
    return packed.select(*[F.col(c).alias(f"{prefix}_{c}") for c in packed.columns])


def _block_pair_scores(joined: DataFrame, n_partitions: int, k: int) -> DataFrame:
    """Every row of ``joined`` (``q_*`` and ``d_*`` packed blocks, ``exclude_self``, ``mirror``) through the
    block kernel (``udfs.text.block_pair_top_k``) in ``n_partitions`` tasks: ``(doc_id, neighbour_id, cosine)``."""
    schema = T.StructType(
        [
            T.StructField("doc_id", joined.schema["q_ids"].dataType.elementType),
            T.StructField("neighbour_id", joined.schema["d_ids"].dataType.elementType),
            T.StructField("cosine", T.DoubleType()),
        ]
    )
    return joined.repartition(max(1, n_partitions), "q_block", "d_block").mapInPandas(block_pair_top_k(k), schema)


def blocked_scores(corpus: DataFrame, k: int, block_size: int, queries: DataFrame | None = None) -> DataFrame:
    """``(doc_id, neighbour_id, cosine)``: each query's exact top-k within every block of the corpus
    (see the module docstring); their union holds each query's exact top-k."""
    spark = corpus.sparkSession
    d, n_d = _blocks(corpus, block_size)
    q, n_q = (d, n_d) if queries is None else _blocks(queries, block_size)
    pairs = _block_ids(spark, n_q, "q_block").crossJoin(_block_ids(spark, n_d, "d_block"))
    all_pairs = F.lit(queries is None)
    if queries is None:
        pairs = pairs.filter(F.col("q_block") <= F.col("d_block"))
    pairs = pairs.select(
        "q_block",
        "d_block",
        (all_pairs & (F.col("q_block") == F.col("d_block"))).alias("exclude_self"),
        (all_pairs & (F.col("q_block") < F.col("d_block"))).alias("mirror"),
    )
    n_pairs = n_d * (n_d + 1) // 2 if queries is None else n_q * n_d
    joined = pairs.join(_prefixed(q, "q"), "q_block").join(_prefixed(d, "d"), "d_block")
    return _block_pair_scores(joined, n_pairs, k)


@dataclass(frozen=True)
class IvfSettings:
    """The ``ivf`` method's lists: ``n_docs / list_size`` KMeans clusters of the documents hashed into ``dim``
    buckets (``max_iter`` iterations, ``seed`` for the hashing and KMeans); each query is scored exactly
    against the documents of its ``probes`` nearest lists."""

    list_size: int = 200
    probes: int = 32
    dim: int = 4096
    max_iter: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.list_size, self.probes, self.dim, self.max_iter) < 1:
            raise ValueError(f"ivf: need list_size, probes, dim and max_iter >= 1, got {self}")


def _sketches(entries: DataFrame, settings: IvfSettings) -> DataFrame:
    """``(doc_id, indices, values)``: each document's unit-length signed feature hashing into ``dim`` buckets.
    A short sparse vector keeps its terms apart in a few thousand buckets, so dot products stay close to the
    cosines (a dense random projection to 128 dimensions blurred them: recall 0.63 on Wikipedia paragraphs)."""
    hashed = F.xxhash64(F.col("index"), F.lit(settings.seed))
    signed = F.when(F.pmod(F.shiftright(hashed, 32), F.lit(2)) == 0, F.col("weight")).otherwise(-F.col("weight"))
    buckets = entries.groupBy("doc_id", F.pmod(hashed, F.lit(settings.dim)).cast("int").alias("bucket")).agg(
        F.sum(signed).alias("value")
    )
    per_doc = buckets.groupBy("doc_id").agg(F.sort_array(F.collect_list(F.struct("bucket", "value"))).alias("s"))
    norm = F.sqrt(F.aggregate("s.value", F.lit(0.0), lambda total, v: total + v * v))
    return per_doc.select(
        "doc_id",
        F.col("s.bucket").alias("indices"),
        F.transform("s.value", lambda v: v / F.greatest(norm, F.lit(1e-300))).alias("values"),
    )


def _centroids(sketches: DataFrame, n_docs: int, settings: IvfSettings) -> np.ndarray:
    """The lists' unit-length centres: Spark ML KMeans with cosine distance over the corpus sketches (one list for
    a small corpus). Euclidean centres of short-norm averages drew every poorly matched document into one list
    (4x paragraphs: 13 times the scores of balanced lists)."""
    n_lists = max(1, round(n_docs / settings.list_size))
    if n_lists == 1:
        return np.ones((1, settings.dim)) / np.sqrt(settings.dim)
    kmeans = KMeans(
        k=n_lists, maxIter=settings.max_iter, seed=settings.seed, featuresCol="features", distanceMeasure="cosine"
    )
    vectors = sketches.select(sparse_vectors_udf(settings.dim)("indices", "values").alias("features"))
    centres = np.array(kmeans.fit(vectors).clusterCenters())
    return centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-300)


def _chunked(entries: DataFrame, lists: DataFrame, block_size: int, n_chunks: str) -> tuple[DataFrame, DataFrame]:
    """``entries`` with their ``list`` (from ``lists``, ``(doc_id, list)``) and ``chunk``: each list's documents
    hashed into ``ceil(size / block_size)`` chunks; and the per-list sizes ``(list, <n_chunks>_docs, <n_chunks>)``."""
    counts = (
        lists.groupBy("list")
        .agg(F.count(F.lit(1)).alias(f"{n_chunks}_docs"))
        .withColumn(n_chunks, F.ceil(F.col(f"{n_chunks}_docs") / block_size).cast("int"))
    )
    keyed = (
        entries.join(lists, "doc_id")
        .join(F.broadcast(counts), "list")
        .withColumn("chunk", F.pmod(F.xxhash64("doc_id"), F.col(n_chunks)).cast("int"))
    )
    return keyed, counts


def ivf_scores(
    corpus: DataFrame, k: int, block_size: int, settings: IvfSettings, queries: DataFrame | None = None
) -> DataFrame:
    """``(doc_id, neighbour_id, cosine)``: each query's exact top-k among the corpus documents of its probed
    lists (see the module docstring). Every (query, document) pair is scored at most once, in the document's list.
    The sketches are cached for KMeans and the probed lists ``(doc_id, lists)`` checkpointed: both are small."""
    d_sketches = _sketches(corpus, settings).persist()
    centroids = _centroids(d_sketches, d_sketches.count(), settings)
    nearest = nearest_centroids_udf(centroids, min(settings.probes, len(centroids)))

    def probes(sketches: DataFrame) -> DataFrame:
        return sketches.select("doc_id", nearest("indices", "values").alias("lists")).localCheckpoint()

    d_probes = probes(d_sketches)
    q_probes = d_probes if queries is None else probes(_sketches(queries, settings))
    d_sketches.unpersist()
    d, d_counts = _chunked(corpus, d_probes.select("doc_id", F.col("lists")[0].alias("list")), block_size, "d_chunks")
    q, q_counts = _chunked(
        corpus if queries is None else queries,
        q_probes.select("doc_id", F.explode("lists").alias("list")),
        block_size,
        "q_chunks",
    )
    sizes = (
        d_counts.join(q_counts, "list")
        .agg(F.max(F.greatest("d_chunks", "q_chunks")), F.sum(F.col("d_chunks_docs") * F.col("q_chunks_docs")))
        .first()
    )
    per_list, n_scores = sizes[0] or 1, sizes[1] or 0

    def packed(side: DataFrame, prefix: str) -> DataFrame:
        block = (F.col("list") * per_list + F.col("chunk")).cast("int").alias("block")
        return _prefixed(_pack(side.select("doc_id", "index", "weight", block)), prefix).withColumn(
            "list", F.floor(F.col(f"{prefix}_block") / per_list)
        )

    joined = (
        packed(q, "q")
        .join(packed(d, "d"), "list")
        .withColumn("exclude_self", F.lit(queries is None))
        .withColumn("mirror", F.lit(False))
    )
    return _block_pair_scores(joined, -(-n_scores // block_size**2), k)  # a full block pair's scores per task


def similar_documents(
    corpus: DataFrame,
    k: int = 10,
    queries: DataFrame | None = None,
    method: str = "auto",
    max_df_fraction: float = 1.0,
    candidates: int = 100,
    block_size: int = 1000,
    exact_max_docs: int = 20000,
    ivf: IvfSettings = IvfSettings(),
) -> DataFrame:
    """``(doc_id, neighbour_id, cosine, rank)``: for each query document its ``k`` nearest corpus documents.

    ``corpus`` and ``queries`` are unit-length entries ``(doc_id, index, weight)``. Without ``queries``
    every corpus document is a query and is not its own neighbour. ``method`` is ``blocked`` (exact;
    ``block_size``), ``ivf`` (approximate; ``ivf``, blocks of ``block_size`` within lists), ``auto``
    (``blocked`` up to ``exact_max_docs`` corpus documents, ``ivf`` above) or ``inverted_index``
    (``max_df_fraction``, ``candidates``); only pairs with a positive cosine (a shared term) are neighbours.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    if method == "inverted_index":
        if k < 1 or candidates < k:
            raise ValueError(f"need 1 <= k <= candidates, got k={k}, candidates={candidates}")
        pairs = inverted_index_scores(corpus, max_df_fraction, candidates, queries)
    else:
        if k < 1 or block_size < 1:
            raise ValueError(f"need k >= 1 and block_size >= 1, got k={k}, block_size={block_size}")
        if method == "auto":
            method = "blocked" if _count_docs(corpus) <= exact_max_docs else "ivf"
        pairs = (
            blocked_scores(corpus, k, block_size, queries)
            if method == "blocked"
            else ivf_scores(corpus, k, block_size, ivf, queries)
        )
    return _top(pairs, "cosine", k).select(*NEIGHBOUR_COLUMNS[:3], F.col("rank").cast("int"))


def recall_at_k(found: DataFrame, exact: DataFrame, k: int) -> float:
    """Share of the exact top-``k`` neighbours (``exact``, rank <= k) that ``found`` also returns, over the queries
    of ``exact``; a found neighbour as close as the query's exact k-th (ties) counts as a hit. One distributed join
    and aggregate; only the ratio reaches the driver."""
    exact = exact.filter(F.col("rank") <= k)
    per_query = exact.groupBy("doc_id").agg(F.count(F.lit(1)).alias("wanted"), F.min("cosine").alias("kth"))
    hits = (
        found.filter(F.col("rank") <= k)
        .join(per_query, "doc_id")
        .filter(F.col("cosine") >= F.col("kth") - 1e-9)
        .groupBy("doc_id")
        .agg(F.count(F.lit(1)).alias("hits"))
    )
    totals = (
        per_query.join(hits, "doc_id", "left")
        .agg(F.sum(F.least(F.coalesce(F.col("hits"), F.lit(0)), F.col("wanted"))), F.sum("wanted"))
        .first()
    )
    return totals[0] / totals[1] if totals[1] else 1.0
