"""bench_scale's helpers: growth exponents, the table, the stage probe on tiny jobs, and its generators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.sql import functions as F

from benchmarks.scale_probe import FIGURES, StageProbe, format_table, growth_exponent, human_bytes, parse_factors
from pipelines.datagen.scale import clustered_vectors_chunk, word, zipf_corpus_chunk


def test_growth_exponent_is_the_slope_between_the_two_largest_factors():
    assert growth_exponent([1, 4, 16], [3.0, 4.0, 16.0]) == pytest.approx(1.0)
    assert growth_exponent([16, 1, 4], [256.0, 1.0, 16.0]) == pytest.approx(2.0)  # any order
    assert growth_exponent([1, 4], [5.0, 5.0]) == pytest.approx(0.0)
    assert growth_exponent([1, 2], [1.0, math.sqrt(2)]) == pytest.approx(0.5)


@pytest.mark.parametrize("factors, values", [([1], [2.0]), ([1, 4], [0.0, 3.0]), ([1, 4], [2.0, 0.0])])
def test_growth_exponent_is_none_when_undefined(factors, values):
    assert growth_exponent(factors, values) is None


def test_parse_factors_sorts_and_rejects_non_positive():
    assert parse_factors("16,1, 4") == [1.0, 4.0, 16.0]
    with pytest.raises(ValueError):
        parse_factors("0,1")


def test_human_bytes():
    assert human_bytes(512) == "512 B"
    assert human_bytes(2048) == "2 KB"
    assert human_bytes(3.5 * 1024**3) == "3.5 GB"
    assert human_bytes(1023 * 1024**2) == "0.999 GB"  # never four digits: 1.02e+03 MB


def _row(seconds: float, scale: int) -> dict[str, float]:
    return {"seconds": seconds, **{k: scale * 1024 for k in FIGURES if k != "seconds"}}


def test_format_table_lists_each_factor_then_the_exponents():
    text = format_table({"tfidf": {4.0: _row(8.0, 4), 1.0: _row(2.0, 1)}, "pq": {1.0: _row(1.0, 1)}})
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["stage", "factor", "seconds"]
    assert lines[2].split()[:4] == ["tfidf", "1x", "2.00", "1"]  # factors in increasing order
    assert lines[3].split()[:4] == ["tfidf", "4x", "8.00", "4"]
    assert lines[4].split()[:3] == ["pq", "1x", "1.00"]
    tfidf_exponents = next(line for line in lines[6:] if line.startswith("tfidf")).split()[1:]
    assert tfidf_exponents == ["1.00"] * len(FIGURES)
    assert next(line for line in lines[6:] if line.startswith("pq")).split()[1:] == ["-"] * len(FIGURES)


def test_probe_counts_shuffle_of_a_group_by_and_collected_bytes_of_a_collect(spark):
    df = spark.range(20_000).select((F.col("id") % 97).alias("k"), F.col("id"))
    with StageProbe(spark) as grouped:
        assert len(df.groupBy("k").count().collect()) == 97
    assert grouped.figures.shuffle_write_bytes > 0
    assert grouped.figures.shuffle_read_bytes > 0
    assert grouped.figures.seconds > 0
    assert grouped.figures.python_rss_peak_bytes > 0 and grouped.figures.jvm_heap_peak_bytes > 0

    with StageProbe(spark) as collected:
        rows = df.select("id").collect()
        spark.sparkContext.broadcast(np.zeros(10_000))
    assert len(rows) == 20_000
    assert collected.figures.collected_bytes > 8 * 20_000 / 2  # serialised rows, compressed at most 2x
    assert collected.figures.shuffle_read_bytes == 0  # stages before the probe are not counted
    assert collected.figures.broadcast_bytes >= 80_000
    assert collected.figures.as_dict()["driver_peak_bytes"] == collected.figures.driver_peak_bytes


def test_zipf_corpus_chunk_is_deterministic_with_a_zipf_head():
    first = zipf_corpus_chunk(3, 2, 100, 50, vocab_size=1000)
    assert first.equals(zipf_corpus_chunk(3, 2, 100, 50, vocab_size=1000))
    assert first["doc_id"].tolist() == list(range(100, 150))
    tokens = " ".join(first["text"]).split()
    lengths = first["text"].str.split().str.len()
    assert lengths.min() >= 5 and lengths.max() <= 5000
    assert set(tokens) <= {word(i) for i in range(1000)}
    top = max(set(tokens), key=tokens.count)
    assert top == word(0) and tokens.count(top) > len(tokens) / 30


def test_word_spells_the_index_in_letters():
    assert [word(0), word(25), word(26), word(27 * 26)] == ["za", "zz", "zba", "zbba"]


def test_clustered_vectors_share_centres_across_chunks():
    a = np.stack(clustered_vectors_chunk(5, 0, 0, 200, dim=8, clusters=2, spread=0.001)["vector"])
    b = np.stack(clustered_vectors_chunk(5, 1, 200, 200, dim=8, clusters=2, spread=0.001)["vector"])
    assert a.dtype == np.float32 and a.shape == (200, 8)
    both = np.vstack([a, b])
    close = np.linalg.norm(both[:, None] - both[None], axis=2) < 0.1
    assert len(np.unique(close, axis=0)) == 2  # two groups of near-identical vectors
