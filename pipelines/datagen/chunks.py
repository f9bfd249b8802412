"""Generate rows in Spark by chunks: chunk ``c`` always holds the same rows for a given seed."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from pipelines.connect import default_parallelism

ChunkMaker = Callable[[int, int, int, int], pd.DataFrame]


def generate(spark: SparkSession, make: ChunkMaker, schema: str, seed: int, total: int, chunk_size: int) -> DataFrame:
    """Rows ``0 .. total-1`` from ``make(seed, chunk, start, count)``, run on the executors."""
    n_chunks = max(1, math.ceil(total / chunk_size))
    partitions = min(n_chunks, max(1, default_parallelism(spark) * 2))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for chunk in batch["id"].tolist():
                start = chunk * chunk_size
                count = min(chunk_size, total - start)
                if count > 0:
                    yield make(seed, chunk, start, count)

    return spark.range(0, n_chunks, 1, partitions).mapInPandas(run, schema)
