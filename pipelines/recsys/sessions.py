"""Session ids from time gaps, for interaction logs that have none (e.g. MovieLens ratings)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.recsys.tables import SESSION, TS, USER


def sessionize(events: DataFrame, gap_s: int, order: list | None = None) -> DataFrame:
    """Add ``session_id``: a user's session ends where the next event is more than ``gap_s`` seconds later.

    ``gap_s <= 0`` makes each user's whole history one session. Ids are a hash of (user, session number).
    """
    if gap_s <= 0:
        return events.withColumn(SESSION, F.xxhash64(USER))
    by_time = Window.partitionBy(USER).orderBy(TS, *(order or []))
    starts = (F.col(TS) - F.lag(TS).over(by_time) > gap_s).cast("int")
    numbered = events.withColumn("_new", F.coalesce(starts, F.lit(0)))
    numbered = numbered.withColumn("_session", F.sum("_new").over(by_time.rowsBetween(Window.unboundedPreceding, 0)))
    return numbered.withColumn(SESSION, F.xxhash64(USER, "_session")).drop("_new", "_session")
