"""Supervised fastText on Spark: shard-parallel SGD synchronised as the ``sgns`` Word2Vec trainer does.

The rows ``(label, fastText ids)`` are split once into ``num_partitions`` shards x ``syncs_per_epoch`` chunks by
``trainer_sgns.shard_sentences`` (the label and ids travel as strings there and are parsed once per partition
into numpy arrays, which stay cached; the same Spark job finds the n-gram buckets the rows use, and each round's
task compacts its ids with them). A round trains every shard's next chunk in parallel from the same broadcast
weights with the numpy kernel (``fasttext_kernel.train_rows``); the partitions' deltas (``delta_blocks``) are
combined (``combine_records``: ``rows``, ``average`` or ``sum``) on the driver when ``num_partitions`` of them fit
in ``DRIVER_COMBINE_BYTES`` (one Spark stage a round), else on the executors (``combine_blocks``: a second stage);
the driver adds the combined delta and broadcasts the weights again. The learning rate falls linearly to zero over
all rounds (fastText's ``lr (1 - progress)``), times ``num_partitions`` for ``rows``/``average`` as in ``sgns``.
``epochs_per_sync > 1`` lets each shard train that many passes over its whole shard between synchronisations
(local SGD), fewer rounds for fewer Spark jobs.

Measured on THUCNews titles (``benchmarks/bench_fasttext.py``: 10k training titles, 10 classes, 10 epochs, lr 0.5,
bigrams, dim 100, 2 partitions; official fastText's test accuracy 0.804-0.806 softmax, 0.740-0.749 hs over runs):
one synchronisation per epoch gave 0.807 (softmax) and 0.757 (hs) with ``average``, 0.802 and 0.740 with ``rows``.
``rows`` keeps the whole update of a row trained in one shard only, which the partitions' learning-rate gain then
makes twice too large: here, unlike ``sgns``'s skip-gram, most rows (the n-gram buckets) are such rows, so
``average`` is the default. ``epochs_per_sync=5`` (2 rounds) gave 0.801 and 0.743; in a numpy simulation of the
rounds, every 2 epochs 0.808 and every 10 (one round) 0.781. A round costs about 1 s of Spark jobs on an idle
local[2] (broadcast, the training stage, the combine's shuffle and its fetch) whatever the corpus size, so on a
corpus this small (official fastText trains it in about 1.2 s) the rounds, not the kernel, set the time.

What the driver holds: the two matrices, input ``(nwords + used buckets) x dim`` and output ``classes x dim``
(``classes - 1`` for ``hs``) float32, their broadcast and one combined delta, plus the sorted used bucket ids. The
input matrix keeps a row only for the n-gram buckets that occur in the training rows (a compact id map): training
never reads any other row, so this is exact for training, and it is what makes fastText's default of 2,000,000
buckets affordable (fastText allocates them all: 800 MB at dim 100). At prediction, an n-gram in a bucket never
seen in training counts in a row's mean as a zero row, where fastText would add that bucket's small random start
(uniform in +-1/dim, zero on average). A task holds the broadcast and its trained copy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
from pyspark import RDD, StorageLevel
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.connect import require_classic
from pipelines.text.fasttext_ids import compact_ids
from pipelines.text.fasttext_kernel import LOSSES, Tree, output_rows, train_rows
from pipelines.word2vec.trainer_sgns import (
    COMBINES,
    SEPARATOR,
    STATS,
    SgnsSettings,
    add_combined,
    block_rows,
    combine_blocks,
    combine_records,
    delta_blocks,
    partitions_of,
    shard_sentences,
)


@dataclass(frozen=True)
class FastTextSettings:
    """Training settings; the Estimator's params (``FastTextClassifier``) document and default them."""

    dim: int
    lr: float
    epoch: int
    loss: str
    batch_size: int
    num_partitions: int
    syncs_per_epoch: int
    epochs_per_sync: int
    combine: str
    seed: int

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {self.loss!r}")
        if self.combine not in COMBINES:
            raise ValueError(f"combine: expected one of {list(COMBINES)}, got {self.combine!r}")
        if (
            min(self.dim, self.epoch, self.batch_size, self.num_partitions, self.epochs_per_sync) < 1
            or self.syncs_per_epoch < 0
        ):
            raise ValueError(
                "dim, epoch, batchSize, numPartitions and epochsPerSync must be at least 1, syncsPerEpoch at least 0"
            )
        if self.epochs_per_sync > 1 and self.syncs_per_epoch > 1:
            raise ValueError(
                "epochsPerSync > 1 trains whole shards between synchronisations: syncsPerEpoch must "
                f"be 0 or 1, got {self.syncs_per_epoch}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr}")

    def sync_rounds(self, tokens: int) -> int:
        """Synchronisations per epoch (chunks of a shard): one when several epochs pass between synchronisations,
        else as configured, or ``sgns``'s automatic choice for ``tokens`` tokens."""
        if self.epochs_per_sync > 1:
            return 1
        return SgnsSettings(
            num_partitions=self.num_partitions, syncs_per_epoch=self.syncs_per_epoch, combine=self.combine
        ).sync_rounds(tokens)

    @property
    def gain(self) -> float:
        return SgnsSettings(num_partitions=self.num_partitions, combine=self.combine).gain


DRIVER_COMBINE_BYTES = 2**28  # a round's deltas combine on the driver while P of them (bfloat16) fit in this


def initial_weights(rows: int, classes: int, settings: FastTextSettings) -> tuple[np.ndarray, np.ndarray]:
    """fastText's start: input uniform in ``+-1/dim`` (seeded), output zeros."""
    rng = np.random.default_rng(settings.seed)
    w_in = rng.uniform(-1.0 / settings.dim, 1.0 / settings.dim, (rows, settings.dim)).astype(np.float32)
    return w_in, np.zeros((output_rows(settings.loss, classes), settings.dim), np.float32)


def _parse(lines: Iterable[str]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A partition's ``label SEP id SEP id ...`` lines as one ``(labels, lengths, raw ids)`` of numpy arrays."""
    lines = list(lines)
    lengths = np.fromiter((line.count(SEPARATOR) for line in lines), np.int64, len(lines))
    values = np.array(SEPARATOR.join(lines).split(SEPARATOR) if lines else [], np.int64)
    heads = np.cumsum(lengths + 1) - lengths - 1
    body = np.ones(len(values), bool)
    body[heads] = False
    yield values[heads], lengths, values[body]


def shard_rows(rows: DataFrame, nwords: int, partitions: int, chunks: int, seed: int) -> tuple[RDD, np.ndarray]:
    """``rows (label, raw ids)`` as ``partitions x chunks`` cached RDD partitions of one parsed tuple each, and
    the sorted n-gram buckets they use, found in the same Spark job (a tree of ``np.union1d``)."""
    lines = rows.select(
        F.concat(F.array(F.col("label").cast("int").cast("string")), F.col("ids").cast("array<string>")).alias("line")
    )
    text = shard_sentences(lines, "line", partitions, chunks, seed)
    parsed = text.mapPartitions(_parse, preservesPartitioning=True).persist(StorageLevel.MEMORY_AND_DISK)
    buckets = parsed.map(lambda pack: np.unique(pack[2][pack[2] >= nwords]) - nwords).treeReduce(np.union1d)
    text.unpersist()
    return parsed, buckets.astype(np.int64)


def _train_round(
    chunk: RDD,
    weights_bc: Broadcast,
    buckets_bc: Broadcast,
    nwords: int,
    settings: FastTextSettings,
    tree: Tree | None,
    alphas: tuple[float, float],
    passes: int,
    block: int,
) -> RDD:
    """One round: each partition compacts its raw ids (``compact_ids``), trains its chunk ``passes`` times from
    the broadcast weights (the learning rate going ``alphas[0] -> alphas[1]`` over them) and emits its
    ``delta_blocks``, then ``((STATS, 0, part), [ids trained, seconds training, seconds in the task])``."""

    def run(part: int, packs: Iterable[tuple]) -> Iterator[tuple[tuple[int, int, int], object]]:
        t0 = time.time()
        start = weights_bc.value
        w_in, w_out = start[0].copy(), start[1].copy()
        trained, seconds = 0, 0.0
        for labels, lengths, ids in packs:
            ids = compact_ids(ids, nwords, buckets_bc.value)
            t1 = time.time()
            for j in range(passes):
                step = tuple(alphas[0] + (alphas[1] - alphas[0]) * x / passes for x in (j, j + 1))
                trained += train_rows(w_in, w_out, lengths, ids, labels, step, settings.loss, tree, settings.batch_size)
            seconds += time.time() - t1
        yield from delta_blocks(zip((w_in, w_out), start), part, block)
        yield (STATS, 0, part), np.array([trained, seconds, time.time() - t0])

    return chunk.mapPartitionsWithIndex(run)


def combined_deltas(
    records: RDD, shapes: list[tuple[int, int]], block: int, settings: FastTextSettings, on_driver: bool
) -> RDD | Iterator[tuple[tuple[int, int], object]]:
    """A round's combined delta blocks and figures (``trainer_sgns.combine_records``), for ``add_combined``: on
    the driver from the tasks' collected records (one Spark stage; collected when first read), or by
    ``combine_blocks``' reducers on the executors (a second stage, for deltas too large to hold
    ``num_partitions`` of them on the driver). Both add alike."""
    if not on_driver:
        return combine_blocks(records, shapes, block, settings.combine, settings.num_partitions)

    def collected() -> Iterator[tuple[tuple[int, int], object]]:
        ordered = sorted(records.collect(), key=lambda record: record[0])
        yield from combine_records(ordered, shapes, block, settings.combine, settings.num_partitions)

    return collected()


def train_fasttext(
    rows: DataFrame,
    nwords: int,
    class_counts: np.ndarray,
    tokens: int,
    settings: FastTextSettings,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Train on ``rows`` (``label`` int-valued, ``ids`` fastText's raw ids, ``fasttext_ids.line_ids``; ``tokens``
    of them in all, which sizes the automatic synchronisations) with the input matrix compacted to ``nwords``
    words and the n-gram buckets the rows use; returns (input, output, sorted used buckets, figures)."""
    spark = rows.sparkSession
    require_classic(spark, "the fastText trainer", "it trains on RDD partitions with broadcast weights")
    sc = spark.sparkContext
    P, S = settings.num_partitions, settings.sync_rounds(tokens)
    started = time.time()
    shards, buckets = shard_rows(rows, nwords, P, S, settings.seed)
    weights = initial_weights(nwords + len(buckets), len(class_counts), settings)
    shapes = [w.shape for w in weights]
    on_driver = P * sum(w.size for w in weights) * 2 <= DRIVER_COMBINE_BYTES  # bfloat16 deltas, at most
    tree = Tree.build(class_counts) if settings.loss == "hs" else None
    buckets_bc = sc.broadcast(buckets)
    chunks = [partitions_of(shards, [p * S + chunk for p in range(P)]) for chunk in range(S)]
    # round r trains chunk r % S of every shard over epochs[r] .. epochs[r + 1] (whole epochs when S is 1)
    E = min(settings.epochs_per_sync, settings.epoch)
    rounds = settings.epoch * S if E == 1 else -(-settings.epoch // E)
    progress = np.minimum(np.arange(rounds + 1) * (E / settings.epoch if E > 1 else 1 / rounds), 1.0)
    block, trained, sharded = block_rows(settings.dim), 0, time.time() - started
    try:
        for r in range(rounds):
            alphas = tuple(settings.gain * settings.lr * (1.0 - x) for x in progress[r : r + 2])
            passes = int(round((progress[r + 1] - progress[r]) * settings.epoch)) if E > 1 else 1
            t0 = time.time()
            weights_bc = sc.broadcast(weights)
            records = _train_round(chunks[r % S], weights_bc, buckets_bc, nwords, settings, tree, alphas, passes, block)
            combined = combined_deltas(records, shapes, block, settings, on_driver)
            stats, _ = add_combined(spark, combined, weights, block, f"fasttext round {r + 1}/{rounds}")
            trained += int(stats[0])
            weights_bc.destroy()
            log(
                f"fasttext round {r + 1}/{rounds} (to epoch {progress[r + 1] * settings.epoch:.2f}, lr "
                f"{alphas[1]:.5f}): round {time.time() - t0:.1f}s, tasks {stats[2]:.1f}s of which kernel "
                f"{stats[1]:.1f}s, summed over tasks"
            )
    finally:
        buckets_bc.destroy()
        shards.unpersist()
    return (
        weights[0],
        weights[1],
        buckets,
        {
            "rounds": rounds,
            "syncs_per_epoch": S,
            "combine_on": "driver" if on_driver else "executors",
            "trained_ids": trained,
            "shard_s": round(sharded, 3),
            "train_s": round(time.time() - started, 3),
        },
    )
