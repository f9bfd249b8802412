"""On 2M tokens of the Wikipedia slice: our sgns with 4 partitions keeps gensim's quality (same tokens,
same epochs), and ppmi is far above chance. About 2 minutes on 2 cores; skipped without ../shared/data."""

from __future__ import annotations

import pytest

from benchmarks.bench_word2vec import run_gensim, tokenise
from pipelines.word2vec.evaluation import evaluate_words
from pipelines.word2vec.model import Word2Vec

pytestmark = pytest.mark.slow


def test_sgns_with_four_partitions_keeps_gensim_quality(spark, shared_data, tmp_path):
    path = shared_data / "enwiki_2015_wikiextractor" / "enwiki_wikiextractor_AA_00-99.txt.gz"
    assert tokenise(spark, path, 2_000_000, str(tmp_path / "tokens")) == pytest.approx(2_000_000, abs=2000)
    corpus = spark.read.parquet(str(tmp_path / "tokens")).select("tokens").cache()
    eval_dir = shared_data / "word_eval_gensim"
    reference = evaluate_words(spark, *run_gensim(str(tmp_path / "tokens"), 2), eval_dir)
    ours = Word2Vec(inputCol="tokens", epochs=2, numPartitions=4, seed=1).fit(corpus)
    quality = evaluate_words(spark, ours.words, ours.vectors, eval_dir)
    assert quality["wordsim353"]["spearman"] > reference["wordsim353"]["spearman"] - 0.08
    assert quality["analogy"]["accuracy"] > 0.6 * reference["analogy"]["accuracy"] > 0.01
    ppmi = Word2Vec(inputCol="tokens", trainer="ppmi").fit(corpus)
    assert evaluate_words(spark, ppmi.words, ppmi.vectors, eval_dir)["analogy"]["accuracy"] > 0.1
