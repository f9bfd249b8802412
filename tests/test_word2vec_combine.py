"""sgns combines the partitions' deltas on the executors: the same update as adding the packed deltas on the
driver, a run that repeats bit for bit, and a 1,000,000-word model that trains in the test session's memory."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest

from pipelines.word2vec.kernel import KernelSettings, make_gensim_model, output_weights
from pipelines.word2vec.model import Word2Vec
from pipelines.word2vec.trainer_sgns import (
    COMBINES,
    STATS,
    SgnsSettings,
    add_packed,
    combine_blocks,
    combine_deltas,
    from_bfloat16,
    pack_delta,
    shard_sentences,
    to_bfloat16,
    train_round,
    train_sgns,
)
from pipelines.word2vec.vocabulary import Vocabulary, build_vocabulary
from tests.test_word2vec_train import planted_corpus

P = 4


@pytest.fixture(scope="module")
def corpus(spark):
    df = spark.createDataFrame([(s,) for s in planted_corpus()], "tokens ARRAY<STRING>").repartition(2).cache()
    df.count()
    return df


@pytest.fixture(scope="module")
def round_records(spark, corpus):
    """One round's training records (4 partitions, 7-row blocks, so layers span several blocks, some partial)
    and the weights it started from."""
    sc = spark.sparkContext
    vocab = build_vocabulary(corpus, "tokens", 1)
    kernel = KernelSettings(vector_size=8, window=3, seed=5)
    seed_model = make_gensim_model(vocab.words, vocab.counts, kernel)
    weights = (seed_model.wv.vectors.copy(), output_weights(seed_model).copy())
    vocab_bc, weights_bc = sc.broadcast((vocab.words, vocab.counts)), sc.broadcast(weights)
    sentences = shard_sentences(corpus, "tokens", P, 1, kernel.seed)
    records = train_round(sentences, weights_bc, vocab_bc, kernel, (0.1, 0.05), 0, 7).cache()
    records.count()
    yield records, weights
    records.unpersist()
    sentences.unpersist()
    weights_bc.destroy()
    vocab_bc.destroy()


def driver_combine(records: list, shapes: list[tuple[int, int]], rows: int, rule: str) -> list[np.ndarray]:
    """What the driver did before: each partition's whole-layer delta packed, then ``combine_deltas`` in
    partition order; the result rounded to bfloat16 as the executor combine sends it."""
    deltas = {(layer, part): np.zeros(shapes[layer], np.float32) for layer in range(2) for part in range(P)}
    for (layer, block, part), packed in records:
        if layer != STATS:
            add_packed(deltas[layer, part][block * rows : (block + 1) * rows], packed)
    return [
        from_bfloat16(
            to_bfloat16(combine_deltas([pack_delta(deltas[layer, part]) for part in range(P)], shapes[layer], rule, P))
        )
        for layer in range(2)
    ]


@pytest.mark.parametrize("rule", COMBINES)
def test_executor_combine_equals_the_driver_combine(round_records, rule):
    records, weights = round_records
    shapes = [w.shape for w in weights]
    got = [np.zeros(shape, np.float32) for shape in shapes]
    combined = combine_blocks(records, shapes, 7, rule, P).collect()
    for (layer, block), value in combined:
        if layer != STATS:
            add_packed(got[layer][block * 7 : (block + 1) * 7], value)
    raw = records.collect()
    want = driver_combine(raw, shapes, 7, rule)
    assert all(np.count_nonzero(w) > 0 for w in want)
    for layer in range(2):
        np.testing.assert_array_equal(got[layer], want[layer])
    stats = dict(combined)[(STATS, 0)]
    assert stats[0] == sum(value[0] for (layer, _, _), value in raw if layer == STATS) > 0
    sent = sum(a.nbytes for (layer, _), value in combined if layer != STATS for a in value if a is not None)
    shipped = sum(a.nbytes for (layer, _, _), value in raw if layer != STATS for a in value if a is not None)
    assert sent < shipped / 2  # the driver gets one combined delta, not the partitions' deltas


def test_reducers_add_in_partition_order_whatever_order_the_map_outputs_come_in(spark):
    """Cancellation shows the order: 1 - 1 + 2^-30 is 2^-30 added in partition order, 0 in the reverse order.
    The map tasks hold the partitions' records in other orders than their ids (bfloat16 rounding of the result
    hides the last-bit differences of real deltas, so the test above cannot see the order)."""
    values = [1.0, -1.0, 2.0**-30]
    records = [((0, 0, part), pack_delta(np.full((1, 2), v, np.float32))) for part, v in enumerate(values)]
    for order in ([2, 1, 0], [1, 2, 0], [0, 1, 2]):
        rdd = spark.sparkContext.parallelize([records[part] for part in order], 3)
        [(key, packed)] = combine_blocks(rdd, [(1, 2)], 1, "sum", 3).collect()
        got = np.zeros((1, 2), np.float32)
        add_packed(got, packed)
        assert key == (0, 0) and got.tolist() == [[2.0**-30] * 2], order


def test_a_run_repeats_bit_for_bit(corpus):
    estimator = Word2Vec(
        inputCol="tokens", vectorSize=16, window=3, minCount=1, epochs=1, syncsPerEpoch=2, numPartitions=P, seed=9
    )
    first, again = estimator.fit(corpus), estimator.fit(corpus)
    assert first.summary["rounds"] == 2 and first.summary["trained_words"] > 1000
    np.testing.assert_array_equal(first.vectors, again.vectors)


@pytest.mark.slow
def test_a_million_words_at_100_dimensions_train_in_the_test_sessions_memory(spark):
    """1,000,000 words x 100 dimensions (800 MB of float32 weights), 4 partitions, one epoch on 2,000 sentences
    of uniformly drawn words (so every block of both layers changes): the memory check passes against the
    session's 2g driver at 0.9 of it (combining on the driver needed 7 models, 5.6 GB), and neither the driver
    JVM (capped at 2g) nor Spark fails. Slow: gensim builds its 1M-word vocabulary in Python loops, about 40 s
    on the driver and again in each Python worker (2.5 minutes in all on 2 busy cores)."""
    words = [f"w{i}" for i in range(1_000_000)]
    counts = (10_000_000 // np.arange(1, len(words) + 1)).astype(np.int64)
    rng = np.random.default_rng(0)
    sentences = [[words[i] for i in rng.integers(0, len(words), 10)] for _ in range(2000)]
    corpus = spark.createDataFrame([(s,) for s in sentences], "tokens ARRAY<STRING>")
    settings = SgnsSettings(
        KernelSettings(vector_size=100, seed=1), epochs=1, num_partitions=P, syncs_per_epoch=1, max_memory_fraction=0.9
    )
    started = time.time()
    vectors, figures, _ = train_sgns(corpus, Vocabulary(words, counts, 20_000, 2000), settings, log=print)
    elapsed = time.time() - started
    print(
        f"1M x 100: {elapsed:.1f}s, figures {figures}, driver peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    assert vectors.shape == (1_000_000, 100) and np.isfinite(vectors).all()
    assert figures["rounds"] == 1 and figures["trained_words"] > 10_000
    assert figures["driver_bytes_needed"] <= 0.9 * 2 * 2**30
    assert figures["received_bytes"] < 2 * vectors.nbytes / 2  # under one dense bfloat16 copy of both layers
