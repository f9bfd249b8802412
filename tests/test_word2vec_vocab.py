"""Vocabulary step and the tables derived from counts: subsampling, noise distribution, Huffman codes;
each checked against the formula and against gensim built from the same counts."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_df_equality

from pipelines.word2vec.coding import huffman_codes, noise_cum_table, noise_distribution
from pipelines.word2vec.errors import EmptyCorpusError, EmptyVocabularyError, ModelTooLargeError
from pipelines.word2vec.kernel import KernelSettings, make_gensim_model
from pipelines.word2vec.trainer_sgns import check_model_memory
from pipelines.word2vec.vocabulary import build_vocabulary, keep_probabilities

COUNTS = np.array([5000, 1200, 1200, 700, 300, 120, 50, 50, 9, 3, 1], np.int64)
WORDS = [f"w{i}" for i in range(len(COUNTS))]


def test_vocabulary_counts_min_count_and_order(spark):
    rows = [(["b", "a", "c", "a"],), (["a", "b", "d"],), ([],), (["c", "b", "e", "e"],)]
    corpus = spark.createDataFrame(rows, "tokens ARRAY<STRING>")
    vocab = build_vocabulary(corpus, "tokens", min_count=2)
    assert (vocab.words, vocab.counts.tolist()) == (["a", "b", "c", "e"], [3, 3, 2, 2])
    assert (vocab.corpus_tokens, vocab.sentences, vocab.retained_tokens) == (11, 3, 10)
    assert build_vocabulary(corpus, "tokens", min_count=1, max_vocab_size=2).words == ["a", "b"]
    expected = spark.createDataFrame(
        [("a", 3, 0, 1.0), ("b", 3, 1, 1.0), ("c", 2, 2, 1.0), ("e", 2, 3, 1.0)],
        "word STRING, count BIGINT, index INT, keep_probability DOUBLE",
    )
    assert_df_equality(vocab.to_frame(spark), expected, ignore_nullable=True)


def test_empty_corpus_and_empty_vocabulary_are_clear_errors(spark):
    empty = spark.createDataFrame([([],), (None,)], "tokens ARRAY<STRING>")
    with pytest.raises(EmptyCorpusError, match="the corpus has no tokens"):
        build_vocabulary(empty, "tokens")
    with pytest.raises(EmptyCorpusError):
        build_vocabulary(spark.createDataFrame([], "tokens ARRAY<STRING>"), "tokens")
    rare = spark.createDataFrame([(["x", "y", "z"],)], "tokens ARRAY<STRING>")
    with pytest.raises(EmptyVocabularyError, match="no word occurs at least min_count=2 times in 3 tokens"):
        build_vocabulary(rare, "tokens", min_count=2)


def test_model_too_large_for_configured_memory():
    conf = {"spark.driver.memory": "4g", "spark.executor.memory": "2g"}.get
    figures = check_model_memory(conf, 10_000, 100, 8, 0.5)
    model = 2 * 10_000 * 100 * 4
    assert figures == {
        "model_bytes": model,
        "driver_bytes_needed": model * 2 + model // 8,
        "task_bytes_needed": model * 2,
    }
    with pytest.raises(ModelTooLargeError, match=r"1000000 words x 300 dimensions .* on the driver"):
        check_model_memory(conf, 1_000_000, 300, 8, 0.5)
    with pytest.raises(ModelTooLargeError, match="on the executor"):
        check_model_memory({"spark.driver.memory": "64g", "spark.executor.memory": "512m"}.get, 200_000, 100, 1, 0.5)
    # local mode: the Python workers run beside the driver, spark.executor.memory does not apply to them
    local = {"spark.master": "local[2]", "spark.driver.memory": "2g", "spark.executor.memory": "512m"}
    assert check_model_memory(local.get, 1_000_000, 100, 4, 0.9)["task_bytes_needed"] == 1_600_000_000
    with pytest.raises(ModelTooLargeError, match="on the executor"):
        check_model_memory({**local, "spark.executor.pyspark.memory": "1g"}.get, 1_000_000, 100, 4, 0.9)


def test_keep_probabilities_follow_word2vec_formula_and_gensim():
    keep = keep_probabilities(COUNTS, 1e-3)
    t = 1e-3 * COUNTS.sum()
    assert keep[0] == pytest.approx((np.sqrt(5000 / t) + 1) * t / 5000)
    assert keep[0] < keep[1] < 1.0 and keep[-1] == 1.0
    assert np.all(np.diff(keep) >= 0)
    assert np.all(keep_probabilities(COUNTS, 0.0) == 1.0)
    model = make_gensim_model(WORDS, COUNTS, KernelSettings(vector_size=4, sample=1e-3))
    gensim_keep = np.array([model.wv.get_vecattr(w, "sample_int") for w in WORDS]) / 2**32
    np.testing.assert_allclose(keep, gensim_keep, rtol=1e-6)


def test_noise_distribution_follows_counts_to_three_quarters():
    p = noise_distribution(COUNTS)
    np.testing.assert_allclose(p[0] / p[3], (5000 / 700) ** 0.75)
    table = noise_cum_table(COUNTS)
    draws = np.searchsorted(table, np.random.default_rng(0).integers(0, table[-1], 400_000), side="right")
    freq = np.bincount(draws, minlength=len(COUNTS)) / 400_000
    np.testing.assert_allclose(freq[:6], p[:6], rtol=0.03)
    assert abs(freq[0] - COUNTS[0] / COUNTS.sum()) > 0.05  # not the plain unigram distribution
    model = make_gensim_model(WORDS, COUNTS, KernelSettings(vector_size=4))
    assert np.abs(table.astype(np.int64) - model.cum_table.astype(np.int64)).max() <= 1


def test_huffman_codes_are_prefix_free_shorter_for_frequent_words_and_match_gensim():
    codes, points = huffman_codes(COUNTS)
    text = ["".join(map(str, c)) for c in codes]
    assert all(not b.startswith(a) for i, a in enumerate(text) for j, b in enumerate(text) if i != j)
    lengths = np.array([len(c) for c in codes])
    assert all(
        lengths[i] <= lengths[j] for i in range(len(COUNTS)) for j in range(len(COUNTS)) if COUNTS[i] > COUNTS[j]
    )
    assert lengths[0] == 1 and lengths[-1] > 4
    assert all(p.max() <= len(COUNTS) - 2 and p[0] == len(COUNTS) - 2 for p in points)  # root first
    model = make_gensim_model(WORDS, COUNTS, KernelSettings(vector_size=4, loss="hierarchical"))
    for i, w in enumerate(WORDS):
        np.testing.assert_array_equal(codes[i], model.wv.get_vecattr(w, "code"))
        np.testing.assert_array_equal(points[i], model.wv.get_vecattr(w, "point"))
