"""The item index that PQ encodes: unit item2vec vectors plus a popularity sub-space, searched by inner product.

Item ``i`` is indexed as ``[x_i / |x_i|, w * log(1 + events_i), 0, ...]`` and a user query as
``[q / |q|, 1, 0, ...]``, so the inner product is ``cos(q, x_i) + w * log(1 + events_i)``: item2vec
similarity with a popularity prior, in one maximum-inner-product PQ search. ``dims`` extra components
(one PQ sub-space when ``dims`` = vector size / m) hold the prior; ``w = 0`` with ``dims = 0`` is plain cosine.
Popularity is counted on the history the vectors were trained on.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.tables import ITEM, item_key
from pipelines.recsys.vectors import unit


def extend(v: Column, head: Column, dims: int) -> Column:
    """``v`` followed by ``head`` and ``dims - 1`` zeros (``v`` alone when ``dims`` is 0), as array<float>."""
    if dims == 0:
        return v.cast("array<float>")
    tail = [head.cast("double")] + [F.lit(0.0)] * (dims - 1)
    return F.concat(v.cast("array<double>"), F.array(*tail)).cast("array<float>")


def index_vectors(vectors: DataFrame, history: DataFrame, weight: float, dims: int) -> DataFrame:
    """``(item_id, vector, events)``: each item2vec word's indexed vector (item_id is the word)."""
    if dims < 0 or (dims == 0 and weight):
        raise ValueError(f"popularity dims must be >= 1 when the weight is set (got dims={dims}, weight={weight})")
    events = history.groupBy(item_key(ITEM).alias("word")).agg(F.count(F.lit(1)).alias("events"))
    joined = vectors.select("word", "vector").join(events, "word", "left").fillna(0, ["events"])
    prior = F.lit(weight) * F.log1p(F.col("events").cast("double"))
    return joined.select(
        F.col("word").alias(ITEM), extend(unit(F.col("vector")), prior, dims).alias("vector"), "events"
    )


def index_query(query: Column, dims: int) -> Column:
    """A user query vector in the index's space: unit length, then 1 for the popularity prior."""
    return extend(unit(query), F.lit(1.0), dims)
