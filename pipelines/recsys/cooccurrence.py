"""Item pairs that follow each other within a few positions of a user's (or a session's) time-ordered context.

``sequence_pairs`` counts, per split context, how often item ``b`` comes 1..``window`` positions after
item ``a``: O(events x window) rows, built from array slices in the JVM (no self-join on the user).
Sequences are one per ``keys`` group: (split, user) by default, (split, user, session) for sessions.
"""

from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.recsys.split import tie_break
from pipelines.recsys.tables import ITEM, SPLIT, TS, USER


def time_ordered(contexts: DataFrame, keys: Sequence[str] = (SPLIT, USER)) -> DataFrame:
    """``(*keys, seq)``: each group's items in time order (ties as in the split)."""
    events = F.sort_array(F.collect_list(F.struct(F.col(TS), tie_break().alias("tie"), F.col(ITEM))))
    return (
        contexts.groupBy(*keys).agg(events.alias("ev")).select(*keys, F.transform("ev", lambda e: e[ITEM]).alias("seq"))
    )


def sequence_pairs(contexts: DataFrame, window: int, keys: Sequence[str] = (SPLIT, USER)) -> DataFrame:
    """``(split, a, b, n)``: times ``b`` followed ``a`` within ``window`` positions (``a != b``)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    seq, size = F.col("seq"), F.size("seq")

    def shifted(d):
        length = F.greatest(size - d, F.lit(0))
        return F.zip_with(
            F.slice(seq, 1, length), F.slice(seq, d + 1, length), lambda a, b: F.struct(a.alias("a"), b.alias("b"))
        )

    pairs = F.flatten(F.transform(F.sequence(F.lit(1), F.lit(window)), shifted))
    return (
        time_ordered(contexts, keys)
        .select(SPLIT, F.explode(pairs).alias("p"))
        .select(SPLIT, "p.a", "p.b")
        .filter(F.col("a") != F.col("b"))
        .groupBy(SPLIT, "a", "b")
        .agg(F.count(F.lit(1)).alias("n"))
    )
