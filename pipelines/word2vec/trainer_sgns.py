"""``sgns``: distributed skip-gram/CBOW with negative sampling or hierarchical softmax.

The corpus is split once into ``num_partitions`` shards x ``syncs_per_epoch`` chunks (one cached RDD
partition each, keyed by a hash of the sentence). A round trains every shard's next chunk in parallel,
each from the same broadcast weights (gensim's compiled kernel, ``kernel.train_shard``), and the
partitions' weight deltas are combined on the executors (``combine_blocks``): each task writes its deltas as
row blocks to a shuffle, ``num_partitions`` reducers add each block's deltas, and the driver receives one
combined delta per round (not one per partition), adds it to the weights and broadcasts them again:
``syncs_per_epoch`` synchronisations per epoch. The learning rate decays linearly over all rounds.

A run repeats bit for bit, also when executors are lost: a task (or its retry) trains the same sentences in the
same order (``shard_sentences``) with a seed of the round and partition, never of the attempt, and a reducer
adds a block's deltas in partition order (it sorts its shuffle input by block and partition, so the sums do
not depend on which map output arrived first).

What a session can train (``check_model_memory``), with ``M = 8 V d`` bytes (two float32 layers of V words x d
dimensions), P partitions and ``f = max_memory_fraction``: the driver holds the weights, their broadcast and at
most two reducers' share of the combined delta, ``M (2 + 1/P) <= f x spark.driver.memory``; a task holds the
broadcast and the kernel's trained copy, ``2 M <= f x`` executor memory (its deltas stream out block by block).
So ``V d <= min(f D / (8 (2 + 1/P)), f E / 16)``: with a 1 GiB driver, 4 GiB executors, f = 0.5 and P = 4,
``min(29.8M, 134M)``, i.e. about 298K words x 100 dimensions, bound by the driver (combining on the driver, it
held ``M (3 + P)``: 96K words x 100). Subwords add the n-gram buckets' input rows, ``M = 4 (2 V + B) d``: the
default ``B = 200,000`` takes 80 MB at 100 dimensions (fastText's 2,000,000 would take 800 MB, 2 GB on the driver
with its copies), so 71K words with subwords need about 350 MB on the driver. They travel as the words' rows do:
whole in the broadcast, and only the rows a shard changed in its delta.

``syncs_per_epoch: 0`` (the default) picks ``max(4, 1.5 x num_partitions)`` synchronisations per epoch, fewer
when a shard's chunk would fall under ``SYNC_MIN_TOKENS`` tokens (small corpora sync once per epoch or so).

What was measured (Wikipedia slice, 16.0M tokens, skip-gram, 3 epochs; gensim's 3-epoch analogy 31.3%):

- synchronisations matter more as partitions grow: 8 partitions gave analogy 26.2% / WordSim 0.625 with 4
  syncs per epoch, 29.8% / 0.634 with 8, 32.9% / 0.629 with 16; 2 partitions with 4 syncs 33.1% / 0.630.
  With 5 epochs, 8 partitions reached 38.1% / 0.651 with 12 syncs and 38.3% / 0.649 with 16 (gensim 36.8% /
  0.653): the default scales syncs with partitions (each replica trains about 1/(1.5 P^2) of an epoch per
  round). Syncs are not free: each task of a round, P training tasks and P reducers, pays PySpark's fixed cost
  (an empty job of 64 one-row Python tasks took 3.0 s on 2 cores, about 0.09 core-seconds a task) besides its
  deltas' shuffle.
- partitions train at ``num_partitions x`` the learning rate for ``rows`` and ``average``: the mean of P
  deltas each learnt from 1/P of the data then moves a row as sequential SGD would (at 4x instead of 8x
  with 8 partitions: 23.6% / 0.556).
- ``rows`` (default) averages each row over the partitions that changed it, ``average`` over all
  partitions (8 partitions, 4 syncs: 26.2% vs 25.8%); ``sum`` adds the deltas at the plain learning rate,
  and rows that reach equilibrium within a round (frequent words, the negative-sampling output layer) then
  move P times too far: on 2M tokens, 8 partitions gave analogy 0.2% (frequent words' vectors grew to
  norm 100).

Deltas travel as the rows a shard changed, in bfloat16 (``pack_delta``), both to the reducers and, combined,
to the driver (so the combined update is rounded once more, which the driver's float32 sum was not): at 71K
words x 100, packing a dense layer takes 7 ms and adding it 8 ms, against 34 ms and 15 ms with numpy's float16.
On 20K words x 100 with 4 partitions the driver received 7.6 MB a round instead of 23.9 MB. A round's shuffle
files stay on local disk until Spark's ContextCleaner removes them after a driver GC
(``spark.cleaner.periodicGC.interval``, 30 minutes by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from pyspark import RDD, StorageLevel
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.connect import require_classic
from pipelines.session import job_description
from pipelines.stages import StageParams, param
from pipelines.word2vec.errors import ModelTooLargeError
from pipelines.word2vec.kernel import KernelSettings, broadcast_key, layers, make_gensim_model, train_shard
from pipelines.word2vec.subwords import compose
from pipelines.word2vec.vocabulary import Vocabulary

COMBINES = ("rows", "sum", "average")
DENSE_SHARE = 0.5  # a delta that changed more rows than this share travels whole
SYNC_MIN_TOKENS = 100_000  # auto syncs: a shard trains at least this many tokens between synchronisations
SEPARATOR = "\x1f"
BLOCK_BYTES = 2**20  # deltas are shuffled and combined in row blocks of about 1 MiB of float32
STATS = -1  # the "layer" of a task's figures (words trained, seconds) in the combine's keys


@dataclass(frozen=True)
class SgnsSettings:
    kernel: KernelSettings = field(default_factory=KernelSettings)
    epochs: int = 5
    alpha: float = 0.025
    min_alpha: float = 0.0001
    num_partitions: int = 2
    syncs_per_epoch: int = 0  # 0: auto (see sync_rounds)
    combine: str = "rows"
    max_memory_fraction: float = 0.5

    def sync_rounds(self, tokens: int) -> int:
        """Synchronisations per epoch: as configured, or (auto) ``max(4, 1.5 x num_partitions)`` while each
        shard still trains ``SYNC_MIN_TOKENS`` tokens per round, and at least one."""
        if self.syncs_per_epoch:
            return self.syncs_per_epoch
        wanted = max(4, 3 * self.num_partitions // 2)
        return int(max(1, min(wanted, tokens // (self.num_partitions * SYNC_MIN_TOKENS))))

    @property
    def gain(self) -> float:
        """Learning-rate factor of each partition: P when deltas are averaged, 1 when summed."""
        return float(self.num_partitions) if self.combine in ("rows", "average") else 1.0

    def __post_init__(self) -> None:
        if self.combine not in COMBINES:
            raise ValueError(f"combine: expected one of {list(COMBINES)}, got {self.combine!r}")
        if min(self.epochs, self.num_partitions) < 1 or self.syncs_per_epoch < 0:
            raise ValueError("epochs and num_partitions must be at least 1, syncs_per_epoch at least 0 (auto)")
        if not 0 < self.min_alpha <= self.alpha:
            raise ValueError("expected 0 < min_alpha <= alpha")


def _memory_bytes(text: str | None, default: str) -> int:
    value = (text or default).strip().lower()
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    if value[-1:] == "b":
        value = value[:-1]
    if value[-1:] in units:
        return int(float(value[:-1]) * units[value[-1]])
    return int(float(value) * 2**20)


def check_model_memory(
    conf_get: Callable[[str, str | None], str | None],
    vocab_size: int,
    vector_size: int,
    partitions: int,
    fraction: float,
    buckets: int = 0,
) -> dict:
    """Fail before training when the model does not fit: the driver holds the weights, the broadcast and two
    reducers' share of the combined delta (bfloat16, ``toLocalIterator`` fetches one reducer ahead); a task holds
    the broadcast and the kernel's trained copy. In local mode the tasks' Python workers run beside the driver
    and ``spark.executor.memory`` means nothing: they are held to ``spark.executor.pyspark.memory``, else to
    the driver's memory."""
    matrix = (2 * vocab_size + buckets) * vector_size * 4  # input + output layer (+ n-gram buckets), float32
    need_driver, need_task = int(matrix * (2 + 1 / partitions)), matrix * 2
    driver_text = conf_get("spark.driver.memory", None)
    driver = _memory_bytes(driver_text, "1g")
    local = (conf_get("spark.master", None) or "").startswith("local")
    executor = _memory_bytes(
        conf_get("spark.executor.pyspark.memory", None)
        or (driver_text if local else conf_get("spark.executor.memory", None)),
        "1g",
    )
    figures = {"model_bytes": matrix, "driver_bytes_needed": need_driver, "task_bytes_needed": need_task}
    for name, need, have in (("driver", need_driver, driver), ("executor", need_task, executor)):
        if need > fraction * have:
            raise ModelTooLargeError(
                f"model of {vocab_size} words x {vector_size} dimensions needs about {need / 2**20:.0f} MiB "
                f"on the {name} ({partitions} partitions), over {fraction:.0%} of the configured "
                f"{have / 2**20:.0f} MiB: raise spark.{name}.memory, lower max_vocab_size/vector_size"
                f"{'/subwords.buckets' if buckets else ''} or num_partitions"
            )
    return figures


def shard_sentences(corpus: DataFrame, tokens_col: str, partitions: int, chunks: int, seed: int):
    """Sentences as separator-joined strings in ``partitions * chunks`` cached RDD partitions; partition
    ``shard * chunks + chunk`` holds one chunk of one shard (chosen by a hash of the sentence).

    Each partition's sentences are sorted by a second seeded hash (ties by text): the shuffle hands a reduce
    task its map outputs in arrival order, local ones first, so without the sort the order would change with
    where tasks ran, and a partition recomputed after a lost executor would train in another order."""
    n = partitions * chunks
    keyed = corpus.filter(F.size(tokens_col) > 0).select(
        F.pmod(F.xxhash64(F.col(tokens_col), F.lit(seed)), F.lit(n)).cast("int").alias("key"),
        F.xxhash64(F.col(tokens_col), F.lit(seed + 1)).alias("order"),
        F.concat_ws(SEPARATOR, tokens_col).alias("line"),
    )
    return (
        keyed.rdd.map(lambda row: (row[0], (row[1], row[2])))
        .partitionBy(n, lambda k: k)
        .values()
        .mapPartitions(_in_order, preservesPartitioning=True)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )


def _in_order(pairs: Iterable[tuple[int, str]]) -> Iterator[str]:
    """A partition's ``(order, line)`` pairs as lines sorted by ``order``, then by text."""
    return (line for _, line in sorted(pairs))


Packed = tuple[np.ndarray | None, np.ndarray, np.ndarray | None]


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values as bfloat16 bits (``uint16``): the high half of each float, rounded to nearest (relative
    error at most 2^-8, zero on average; zeros stay zeros). Four times cheaper than numpy's float16 cast."""
    return ((np.ascontiguousarray(x, np.float32).view(np.uint32) + np.uint32(0x8000)) >> 16).astype(np.uint16)


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """``to_bfloat16``'s bits back as float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def pack_delta(delta: np.ndarray) -> Packed:
    """A delta (block) as it travels, to a reducer or combined to the driver, in bfloat16 (relative error at most
    0.4% of each update, zero on average, far below SGD's own noise): ``(rows it changed, those rows, None)``,
    or, when it changed most rows (the negative-sampling output layer), ``(None, every row, changed-row bits)``,
    which is added without indexing."""
    changed = np.any(delta != 0, axis=1)
    if np.count_nonzero(changed) > DENSE_SHARE * len(changed):
        return None, to_bfloat16(delta), np.packbits(changed)
    rows = np.flatnonzero(changed).astype(np.int32)
    return rows, to_bfloat16(delta[rows]), None


def add_packed(target: np.ndarray, packed: Packed) -> None:
    """Add a packed delta to ``target`` (rows of the same shape) in place."""
    rows, values, _ = packed
    if rows is None:
        target += from_bfloat16(values)
    else:
        target[rows] += from_bfloat16(values)


def combine_deltas(packed: list[Packed], shape: tuple[int, int], rule: str, partitions: int) -> np.ndarray:
    """One layer's (or block's) update from packed deltas, added in list order: ``sum``, ``average`` (divide by
    the ``partitions`` that trained, also those that changed nothing here and sent no delta) or ``rows`` (each
    row averaged over the partitions that changed it, so rows trained in one shard keep their whole update and
    rows trained everywhere are not counted several times)."""
    total = np.zeros(shape, np.float32)
    touched = np.zeros(shape[0], np.int32)
    for delta in packed:
        add_packed(total, delta)
        rows, _, changed = delta
        if rows is None:
            touched += np.unpackbits(changed, count=shape[0])
        else:
            touched[rows] += 1
    if rule == "average":
        total /= partitions
    elif rule == "rows":
        total /= np.maximum(touched, 1)[:, None]
    return total


def block_rows(vector_size: int) -> int:
    """Rows per block of the executor combine (about ``BLOCK_BYTES`` of float32)."""
    return max(1, BLOCK_BYTES // (4 * vector_size))


def delta_blocks(
    layers: Iterable[tuple[np.ndarray, np.ndarray]], part: int, rows: int
) -> Iterator[tuple[tuple[int, int, int], Packed]]:
    """Partition ``part``'s deltas ``trained - start`` of each ``(trained, start)`` layer as
    ``((layer, block, part), packed block)``, taken one block at a time (a task never holds a whole delta) and
    only for blocks it changed."""
    for layer, (trained, start) in enumerate(layers):
        for block, lo in enumerate(range(0, len(start), rows)):
            delta = trained[lo : lo + rows] - start[lo : lo + rows]
            if delta.any():
                yield (layer, block, part), pack_delta(delta)


def combine_records(
    records: Iterable[tuple[tuple[int, int, int], object]],
    shapes: Sequence[tuple[int, int]],
    rows: int,
    rule: str,
    partitions: int,
) -> Iterator[tuple[tuple[int, int], object]]:
    """``train_round``'s records sorted by (layer, block, partition) as ``((layer, block), packed combined
    block)`` (a block's deltas combined in that order, ``combine_deltas``, and packed again for the trip to the
    driver) and ``((STATS, 0), the tasks' figures summed)``."""
    for (layer, block), group in groupby(records, key=lambda record: record[0][:2]):
        values = [value for _, value in group]
        if layer == STATS:
            yield (layer, block), np.sum(values, axis=0)
        else:
            shape = (min(rows, shapes[layer][0] - block * rows), shapes[layer][1])
            yield (layer, block), pack_delta(combine_deltas(values, shape, rule, partitions))


def combine_blocks(records: RDD, shapes: Sequence[tuple[int, int]], rows: int, rule: str, partitions: int) -> RDD:
    """The executor combine of ``train_round``'s records: ``partitions`` reducers, blocks (of ``rows`` rows)
    dealt round-robin, each sort their input by (layer, block, partition) and ``combine_records`` them."""
    return records.repartitionAndSortWithinPartitions(partitions, lambda key: key[1]).mapPartitions(
        lambda part: combine_records(part, shapes, rows, rule, partitions)
    )


def add_combined(
    spark: SparkSession,
    combined: RDD | Iterable[tuple[tuple[int, int], Any]],
    weights: Sequence[np.ndarray],
    rows: int,
    description: str,
) -> tuple[np.ndarray, int]:
    """Add a round's combined deltas (``combine_blocks``' output, or the same records combined on the driver) into
    ``weights`` on the driver, a block at a time as they arrive; returns the tasks' figures summed and the bytes of
    deltas received."""
    stats, received = np.zeros(0), 0
    with job_description(spark, description):
        blocks = combined.toLocalIterator(prefetchPartitions=True) if isinstance(combined, RDD) else combined
        for (layer, block), value in blocks:
            if layer == STATS:
                stats = value
            else:
                add_packed(weights[layer][block * rows : (block + 1) * rows], value)
                received += sum(a.nbytes for a in value if a is not None)
    return stats, received


class RoundParams(StageParams):
    """Params of the stages that train in rounds over shards of a tokens column (sgns ``Word2Vec``, fastText)."""

    inputCol = param("tokens", "column of token arrays")
    numPartitions = param(2, "partitions training in parallel")
    syncsPerEpoch = param(0, "weight synchronisations per epoch (0: auto, see trainer_sgns)")
    combine = param("rows", f"one of {COMBINES}: how the partitions' deltas are combined (see combine_deltas)")


def train_round(
    chunk: RDD,
    weights_bc: Broadcast,
    vocab_bc: Broadcast,
    kernel: KernelSettings,
    alphas: tuple[float, float],
    r: int,
    rows: int,
) -> RDD:
    """Round ``r``'s training, one task per partition of ``chunk`` from the broadcast weights with alpha decaying
    ``alphas[0] -> alphas[1]``: the task's ``delta_blocks`` records, then ``((STATS, 0, part), [words trained,
    seconds reading, loading the weights, in the kernel, training, in all])``."""
    vocab_key = broadcast_key(vocab_bc)

    def run(part: int, lines: Iterable[str]) -> Iterator[tuple[tuple[int, int, int], object]]:
        t0 = time.time()
        words, counts = vocab_bc.value
        sentences = [line.split(SEPARATOR) for line in lines]
        t1 = time.time()
        start = weights_bc.value
        t2 = time.time()
        trained, n, t_train = train_shard(
            sentences, start, vocab_key, words, counts, kernel, *alphas, (kernel.seed, r, part)
        )
        yield from delta_blocks(zip(trained, start), part, rows)
        yield (STATS, 0, part), np.array([n, t1 - t0, t2 - t1, *t_train, time.time() - t0])

    return chunk.mapPartitionsWithIndex(run)


def partitions_of(rdd: RDD, indices: Sequence[int]) -> RDD:
    """The RDD of ``rdd``'s partitions ``indices`` (ascending) only, through Spark's ``PartitionPruningRDD``,
    which PySpark does not wrap: a round runs one task per shard instead of one per chunk of every shard."""
    jvm = rdd.ctx._jvm
    keep = jvm.PythonUtils.toSeq(list(indices)).toSet()  # a Scala Set is an Int => Boolean
    pruned = jvm.org.apache.spark.rdd.PartitionPruningRDD.create(rdd._jrdd.rdd(), keep)
    return RDD(jvm.org.apache.spark.api.java.JavaRDD(pruned, rdd._jrdd.classTag()), rdd.ctx, rdd._jrdd_deserializer)


def train_sgns(
    corpus: DataFrame,
    vocab: Vocabulary,
    settings: SgnsSettings,
    tokens_col: str = "tokens",
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Train and return the word vectors ``(V, vector_size)`` (vocabulary order), training figures and, with
    subwords, the n-gram buckets' rows ``(buckets, vector_size)``; the word vectors are then each word's own row
    composed with its n-grams' (``subwords.compose``)."""
    spark = corpus.sparkSession
    require_classic(spark, "word2vec trainer 'sgns'", "it trains on RDD partitions with broadcast weights")
    sc = spark.sparkContext
    P, S = settings.num_partitions, settings.sync_rounds(vocab.retained_tokens)
    kernel = settings.kernel
    memory = check_model_memory(
        lambda key, default: sc.getConf().get(key, default),
        len(vocab),
        kernel.vector_size,
        P,
        settings.max_memory_fraction,
        kernel.buckets if kernel.subwords else 0,
    )
    started = time.time()
    seed_model = make_gensim_model(vocab.words, vocab.counts, kernel)
    weights = tuple(layer.copy() for layer in layers(seed_model))
    del seed_model
    rdd = shard_sentences(corpus, tokens_col, P, S, settings.kernel.seed)
    chunks = [partitions_of(rdd, [p * S + chunk for p in range(P)]) for chunk in range(S)]
    vocab_bc = sc.broadcast((vocab.words, vocab.counts))
    rounds = settings.epochs * S
    rows = block_rows(kernel.vector_size)
    trained_words = received = 0
    gain = settings.gain
    try:
        for r in range(rounds):
            alphas = tuple(
                gain * (settings.alpha - (settings.alpha - settings.min_alpha) * x / rounds) for x in (r, r + 1)
            )
            weights_bc = sc.broadcast(weights)
            records = train_round(chunks[r % S], weights_bc, vocab_bc, kernel, alphas, r, rows)
            combined = combine_blocks(records, [w.shape for w in weights], rows, settings.combine, P)
            t0 = time.time()
            tasks, nbytes = add_combined(spark, combined, weights, rows, f"sgns round {r + 1}/{rounds}")
            received += nbytes
            trained_words += int(tasks[0])
            weights_bc.destroy()
            log(
                f"sgns round {r + 1}/{rounds} (epoch {r // S + 1}, alpha {alphas[1]:.5f}) "
                f"{time.time() - started:.1f}s: round {time.time() - t0:.1f}s; task sums: read {tasks[1]:.1f}s, "
                f"weights {tasks[2]:.1f}s, kernel {tasks[3]:.1f}s (train {tasks[4]:.1f}s), all {tasks[5]:.1f}s"
            )
    finally:
        vocab_bc.destroy()
        rdd.unpersist()
    vectors, ngrams = weights[0], None
    if kernel.subwords:
        ngrams = weights[2]
        vectors = compose(vocab.words, weights[0], ngrams, kernel.min_n, kernel.max_n)
    return (
        vectors,
        {
            "rounds": rounds,
            "syncs_per_epoch": S,
            "trained_words": trained_words,
            "train_s": round(time.time() - started, 3),
            "received_bytes": received,
            **memory,
        },
        ngrams,
    )
