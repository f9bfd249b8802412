"""Subword (fastText) vectors: character n-grams and their buckets against the official ``fasttext`` package and
gensim, composed vectors, words out of the vocabulary, persistence, a small training run and the jobs (batch
queries answer words out of the vocabulary)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.job_runtime import run_job
from pipelines.word2vec.errors import Word2VecError
from pipelines.word2vec.kernel import KernelSettings, layers, make_gensim_model
from pipelines.word2vec.model import Word2Vec, Word2VecModel
from pipelines.word2vec.subwords import char_ngrams, compose, ngram_buckets
from pipelines.word2vec.trainer_sgns import check_model_memory
from tests.test_word2vec_jobs import write_eval_files

WORDS = ["where", "a", "café", "naïve", "日本語", "walking", "aaaa"]  # non-ASCII bytes hash sign-extended


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """A tiny official fastText skip-gram model (min_n 3, max_n 6, 1,000 buckets)."""
    fasttext = pytest.importorskip("fasttext")
    path = tmp_path_factory.mktemp("fasttext") / "corpus.txt"
    path.write_text("the cat sat on the mat where the dog sat\n" * 20)
    return fasttext.train_unsupervised(
        str(path), model="skipgram", minn=3, maxn=6, bucket=1000, dim=8, epoch=1, minCount=1, thread=1, verbose=0
    )


def test_ngrams_and_buckets_match_the_official_fasttext(official):
    nwords = len(official.words)
    lengths, buckets = ngram_buckets(WORDS, 3, 6, 1000)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i, word in enumerate(WORDS):
        subwords, ids = official.get_subwords(word)
        known = word in official.words  # a vocabulary word comes first, as itself
        assert char_ngrams(word, 3, 6) == list(subwords[known:])
        assert buckets[starts[i] : starts[i + 1]].tolist() == (ids[known:] - nwords).tolist()
    assert char_ngrams("ab", 1, 2) == ["<a", "a", "ab", "b", "b>"]  # the markers alone are left out


def test_buckets_match_gensims_so_training_and_queries_agree():
    from gensim.models.fasttext import ft_ngram_hashes

    lengths, buckets = ngram_buckets(WORDS, 2, 5, 2_000_003)
    expected = [h for word in WORDS for h in ft_ngram_hashes(word, 2, 5, 2_000_003)]
    assert buckets.tolist() == expected and lengths.sum() == len(expected)


def test_composed_vectors_match_the_official_fasttext(official):
    nwords = len(official.words)
    # known finite weights, not the trained ones: composition is what is compared (in one CI run the official
    # model came back with values near 1e37 and NaN, which no tolerance compares)
    matrix = np.random.default_rng(0).uniform(-1, 1, official.get_input_matrix().shape).astype(np.float32)
    official.set_matrices(matrix, official.get_output_matrix())
    for word in ("where", "sat", "walking", "naïve"):
        i = official.get_word_id(word)
        own = None if i < 0 else matrix[i][None]
        np.testing.assert_allclose(
            compose([word], own, matrix[nwords:], 3, 6)[0], official.get_word_vector(word), rtol=1e-5, atol=1e-7
        )


def subword_model() -> Word2VecModel:
    rng = np.random.default_rng(0)
    words = ["walk", "talk", "sing"]
    ngrams = rng.normal(size=(50, 4)).astype(np.float32)
    model = Word2VecModel(words, np.array([30, 20, 10]), compose(words, rng.normal(size=(3, 4)), ngrams, 3, 4), ngrams)
    return model.copy({model.trainer: "sgns", model.vectorSize: 4, model.maxN: 4, model.buckets: 50})


def test_a_word_out_of_the_vocabulary_is_the_mean_of_its_ngram_rows():
    model = subword_model()
    _, buckets = ngram_buckets(["walked"], 3, 4, 50)
    np.testing.assert_allclose(model.wordVector("walked"), model.ngrams[buckets].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(model.wordVector("talk"), model.vectors[1])
    found = model.findSynonymsArray("walked", 3)
    unit = model.vectors / np.linalg.norm(model.vectors, axis=1, keepdims=True)
    query = model.wordVector("walked") / np.linalg.norm(model.wordVector("walked"))
    assert [w for w, _ in found] == [model.words[i] for i in np.argsort(-(unit @ query))]
    assert found[0][1] == pytest.approx(float(np.max(unit @ query)), rel=1e-5)
    without = Word2VecModel(model.words, model.counts, model.vectors)
    with pytest.raises(Word2VecError, match="'walked' is not in the vocabulary .* has no subwords"):
        without.findSynonymsArray("walked", 2)


def test_save_load_keeps_the_ngram_rows(spark, tmp_path):
    model = subword_model()
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = Word2VecModel.load(str(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.ngrams, model.ngrams)
    np.testing.assert_array_equal(loaded.vectors, model.vectors)
    assert (loaded.getOrDefault("maxN"), loaded.getOrDefault("buckets")) == (4, 50)
    np.testing.assert_array_equal(loaded.wordVector("walked"), model.wordVector("walked"))
    assert [r["word"] for r in loaded.getVectors().collect()] == model.words  # vocabulary words only


def test_subword_settings_are_checked_and_counted_in_memory():
    with pytest.raises(Word2VecError, match="min_n <= max_n"):
        Word2Vec(maxN=2, minN=3).settings()
    with pytest.raises(Word2VecError, match="subwords .* need trainer 'sgns'"):
        Word2Vec(maxN=6, trainer="ppmi").settings()
    conf = {"spark.driver.memory": "1g", "spark.master": "local[2]"}.get
    assert check_model_memory(conf, 1000, 100, 2, 0.5, buckets=200_000)["model_bytes"] == 202_000 * 400
    with pytest.raises(Word2VecError, match="subwords.buckets"):
        check_model_memory(conf, 1000, 100, 2, 0.5, buckets=2_000_000)


def test_the_kernel_trains_word_output_and_ngram_layers():
    model = make_gensim_model(["walk", "talk"], np.array([5, 3]), KernelSettings(vector_size=4, max_n=4, buckets=30))
    assert [layer.shape for layer in layers(model)] == [(2, 4), (2, 4), (30, 4)]


STEMS = ["bridge", "castle", "garden", "market", "forest", "harbor", "temple", "valley"]


def stem_corpus(n: int = 400, seed: int = 5) -> list[list[str]]:
    """Sentences of one stem's forms (stem, stem+s, stem+ing) among shared filler words."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n):
        stem = STEMS[rng.integers(len(STEMS))]
        words = [stem + rng.choice(["", "s", "ing"]) for _ in range(4)] + list(rng.choice(["x", "y", "z"], 3))
        sentences.append(list(rng.permutation(words)))
    return sentences


def test_an_unseen_inflection_is_nearest_to_its_stems_forms(spark):
    corpus = spark.createDataFrame([(s,) for s in stem_corpus()], "tokens ARRAY<STRING>")
    estimator = Word2Vec(
        inputCol="tokens", vectorSize=16, window=3, minCount=1, epochs=1, syncsPerEpoch=1, seed=3, maxN=5, buckets=5000
    )
    model = estimator.fit(corpus)
    assert model.ngrams.shape == (5000, 16) and len(model.words) == 3 * len(STEMS) + 3
    start = layers(make_gensim_model(model.words, model.counts, estimator.settings().kernel))[2]
    _, used = ngram_buckets(model.words, 3, 5, 5000)
    changed = np.any(model.ngrams != start, axis=1)
    assert changed[used].all() and not np.delete(changed, used).any()  # the trained buckets' rows, only them
    for stem in STEMS:
        assert stem + "ed" not in model.words
        assert model.findSynonymsArray(stem + "ed", 1)[0][0].startswith(stem), stem
    composed = compose(model.words, None, model.ngrams, 3, 5)
    assert not np.allclose(composed, model.vectors)  # the words' own rows count too


def test_the_job_trains_subwords(spark, tmp_path):
    spark.createDataFrame(
        [(i, " ".join(s)) for i, s in enumerate(stem_corpus(200))], "doc_id BIGINT, text STRING"
    ).write.parquet(str(tmp_path / "corpus"))
    out = tmp_path / "w2v"
    assert (
        run_job(
            "train_word2vec",
            [
                "--set",
                f"input.path={tmp_path / 'corpus'}",
                "--set",
                "model.min_count=1",
                "--set",
                "model.vector_size=8",
                "--set",
                "model.epochs=1",
                "--set",
                "model.subwords.max_n=5",
                "--set",
                "model.subwords.buckets=1000",
                "--set",
                f"output.path={out}",
            ],
        )
        == 0
    )
    assert json.loads((out / "model" / "_metrics.json").read_text())["word2vec"]["vocabulary"] == 3 * len(STEMS) + 3
    model = Word2VecModel.load(str(out / "model"))
    assert model.ngrams.shape == (1000, 8) and model.getOrDefault("minN") == 3
    assert model.findSynonymsArray("harbored", 1)[0][0].startswith("harbor")
    write_eval_files(tmp_path / "eval_files")
    spark.createDataFrame([("harbored",), ("bridge",), (None,)], "word STRING").write.parquet(str(tmp_path / "q"))
    assert (
        run_job(
            "evaluate_embeddings",
            [
                "--set",
                f"model_path={out / 'model'}",
                "--set",
                f"eval_dir={tmp_path / 'eval_files'}",
                "--set",
                f"queries.path={tmp_path / 'q'}",
                "--set",
                "queries.k=2",
                "--set",
                f"output.path={tmp_path / 'e'}",
            ],
        )
        == 0
    )
    answers = {r["word"]: r for r in spark.read.parquet(str(tmp_path / "e" / "answers")).collect()}
    assert set(answers) == {"harbored", "bridge", None} and "_subword_vector" not in answers["bridge"].asDict()
    assert answers["harbored"]["neighbours"] == [w for w, _ in model.findSynonymsArray("harbored", 2)]
    assert answers["bridge"]["neighbours"] == [w for w, _ in model.findSynonymsArray("bridge", 2)]
    assert answers[None]["neighbours"] is None
