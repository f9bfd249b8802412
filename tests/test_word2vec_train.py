"""Trainers on a small corpus with planted topics (neighbours share the topic), persistence and exports,
batch queries, and our analogy evaluation against gensim's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.ml.linalg import DenseVector

from pipelines.word2vec.errors import ModelTooLargeError, Word2VecError
from pipelines.word2vec.evaluation import analogy_accuracy, pair_spearman
from pipelines.word2vec.model import Word2Vec, Word2VecModel
from udfs.word2vec import unit_rows

TOPICS, PER_TOPIC, FUNCTION_WORDS = 4, 12, 8


def planted_corpus(n: int = 1200, length: int = 10, seed: int = 3) -> list[list[str]]:
    """Each sentence draws its words from one topic (Zipf within the topic), 20% shared function words."""
    rng = np.random.default_rng(seed)
    zipf = 1 / np.arange(1, PER_TOPIC + 1)
    sentences = []
    for _ in range(n):
        k = rng.integers(TOPICS)
        words = [f"t{k}w{j}" for j in rng.choice(PER_TOPIC, length, p=zipf / zipf.sum())]
        for pos in np.flatnonzero(rng.random(length) < 0.2):
            words[pos] = f"f{rng.integers(FUNCTION_WORDS)}"
        sentences.append(words)
    return sentences


@pytest.fixture(scope="module")
def corpus(spark):
    df = spark.createDataFrame([(s,) for s in planted_corpus()], "tokens ARRAY<STRING>").repartition(2).cache()
    df.count()
    return df


def topic_share(model: Word2VecModel, k: int = 5) -> float:
    """Share of each topic word's k nearest neighbours (cosine) that are in its topic."""
    words = np.array(model.words)
    unit = unit_rows(model.vectors)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    shares = []
    for i, w in enumerate(words):
        if w.startswith("t"):
            nearest = words[np.argsort(-sims[i])[:k]]
            shares.append(np.mean([n.startswith(w[:2]) for n in nearest]))
    return float(np.mean(shares))


BASE = dict(vectorSize=16, window=3, minCount=1, epochs=5, syncsPerEpoch=2, seed=7)


@pytest.mark.parametrize(
    "params",
    [
        dict(trainer="sgns", numPartitions=4),
        dict(trainer="sgns", numPartitions=2, architecture="cbow", alpha=0.05),
        dict(trainer="sgns", numPartitions=2, loss="hierarchical"),
        dict(trainer="ppmi"),
    ],
    ids=["skipgram-ns-4-partitions", "cbow-ns", "skipgram-hs", "ppmi"],
)
def test_neighbours_fall_in_the_planted_topic(corpus, params):
    model = Word2Vec(inputCol="tokens", **{**BASE, **params}).fit(corpus)
    assert len(model.words) == TOPICS * PER_TOPIC + FUNCTION_WORDS
    assert model.vectors.shape == (len(model.words), 16) and np.isfinite(model.vectors).all()
    chance = (PER_TOPIC - 1) / (len(model.words) - 1)
    assert topic_share(model) > 0.8 > 3 * chance


def test_untrained_vectors_fail_the_topic_check(corpus):
    """The check above can fail: the initial (random) vectors of the same vocabulary score near chance."""
    model = Word2Vec(inputCol="tokens", **{**BASE, "epochs": 1, "alpha": 1e-6, "minAlpha": 1e-6}).fit(corpus)
    assert topic_share(model) < 0.45


def test_mllib_trainer_returns_vectors_in_our_vocabulary_order(corpus):
    model = Word2Vec(inputCol="tokens", trainer="mllib", **{**BASE, "epochs": 1, "numPartitions": 1}).fit(corpus)
    assert model.words[0] in {f"t{k}w0" for k in range(TOPICS)} | {f"f{i}" for i in range(FUNCTION_WORDS)}
    assert np.all(np.abs(model.vectors).sum(axis=1) > 0)
    assert topic_share(model) > 0.5


def test_bad_settings_and_too_large_model_fail_before_training(corpus):
    with pytest.raises(Word2VecError, match="combine: expected one of"):
        Word2Vec(inputCol="tokens", combine="median").fit(corpus)
    with pytest.raises(Word2VecError, match="trainer: expected one of"):
        Word2Vec(inputCol="tokens", trainer="glove").fit(corpus)
    with pytest.raises(ModelTooLargeError, match="raise spark.driver.memory"):
        Word2Vec(inputCol="tokens", minCount=1, maxMemoryFraction=1e-6).fit(corpus)


def hand_model() -> Word2VecModel:
    words = ["man", "woman", "king", "queen", "apple", "pear", "boy", "girl"]
    vectors = np.array(
        [
            [1, 0, 0, 0],
            [1, 1, 0, 0],
            [1, 0, 1, 0],
            [1, 1, 1, 0],
            [0, 0, 0, 1],
            [0, 0.1, 0, 1],
            [1, 0, 0.1, 0.1],
            [1, 1, 0.1, 0.1],
        ],
        np.float32,
    )
    model = Word2VecModel(words, np.arange(80, 0, -10), vectors)
    return model.copy({model.trainer: "ppmi", model.vectorSize: 4})


def test_save_load_round_trip_and_word2vec_text_export(spark, tmp_path):
    from gensim.models import KeyedVectors

    model = hand_model()
    model.summary = {"vocabulary": 8}
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = Word2VecModel.load(str(tmp_path / "model"))
    assert loaded.words == model.words and loaded.counts.tolist() == model.counts.tolist()
    np.testing.assert_array_equal(loaded.vectors, model.vectors)
    assert (loaded.getOrDefault("trainer"), loaded.getOrDefault("vectorSize"), loaded.uid) == ("ppmi", 4, model.uid)
    assert loaded.summary == {"vocabulary": 8}
    assert_df_equality(
        spark.read.parquet(str(tmp_path / "model" / "data")),
        model.vectors_frame(spark),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    (tmp_path / "vectors.txt").write_text(model.to_word2vec_text())
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "vectors.txt"), binary=False)
    assert list(kv.index_to_key) == model.words
    np.testing.assert_allclose(kv.vectors, model.vectors, rtol=1e-5)
    estimator = Word2Vec(inputCol="words", trainer="ppmi", window=2)
    estimator.write().overwrite().save(str(tmp_path / "estimator"))
    again = Word2Vec.load(str(tmp_path / "estimator"))
    assert (again.getInputCol(), again.getOrDefault("trainer"), again.getOrDefault("window")) == ("words", "ppmi", 2)


def test_transform_averages_known_token_vectors(spark):
    out = (
        hand_model()
        .setInputCol("tokens")
        .transform(spark.createDataFrame([(["man", "king", "zzz"],), ([],)], "tokens ARRAY<STRING>"))
        .collect()
    )
    assert isinstance(out[0]["vector"], DenseVector)  # an ML vector, as MLlib's Word2VecModel gives
    np.testing.assert_allclose(out[0]["vector"].toArray(), [1, 0, 0.5, 0])
    np.testing.assert_allclose(out[1]["vector"].toArray(), [0, 0, 0, 0])


def test_get_vectors_and_find_synonyms_follow_mllib(spark):
    model = hand_model()
    vectors = model.getVectors().collect()
    assert [r["word"] for r in vectors] == model.words
    np.testing.assert_allclose(vectors[2]["vector"].toArray(), model.vectors[2])
    unit = model.vectors / np.linalg.norm(model.vectors, axis=1, keepdims=True)
    cosines = unit @ unit[model.words.index("king")]
    expected = [model.words[i] for i in np.argsort(-cosines) if model.words[i] != "king"][:3]
    found = model.findSynonymsArray("king", 3)
    assert [w for w, _ in found] == expected
    assert found[0][1] == pytest.approx(float(np.sort(cosines)[-2]), rel=1e-6)
    assert [w for w, _ in model.findSynonymsArray([1.0, 0.0, 0.0, 0.0], 1)] == ["man"]  # by vector: itself too
    table = model.findSynonyms("apple", 2).collect()
    assert [r["word"] for r in table] == ["pear", "boy"] and table[0]["similarity"] == pytest.approx(0.995, abs=1e-3)
    with pytest.raises(Word2VecError, match="'nope' is not in the vocabulary"):
        model.findSynonymsArray("nope", 2)


def test_batch_most_similar_by_word_and_vector_and_analogies(spark):
    index = hand_model().index(spark)
    queries = spark.createDataFrame(
        [(1, "apple", None), (2, None, [1.0, 0.0, 0.0, 0.0]), (3, "nope", None)],
        "id INT, word STRING, vector ARRAY<FLOAT>",
    )
    got = {r["id"]: r for r in index.most_similar(queries, k=2, vector_col="vector").collect()}
    assert got[1]["neighbours"] == ["pear", "boy"] and got[1]["similarities"][0] == pytest.approx(0.995, abs=1e-3)
    assert got[2]["neighbours"] == ["man", "boy"] and got[3]["neighbours"] is None
    questions = spark.createDataFrame(
        [("man", "king", "woman"), ("boy", "girl", "man"), ("x", "king", "man")], "a STRING, b STRING, c STRING"
    )
    answers = index.analogies(questions, k=1).select("a", "neighbours")
    expected = spark.createDataFrame(
        [("man", ["queen"]), ("boy", ["woman"]), ("x", None)], "a STRING, neighbours ARRAY<STRING>"
    )
    assert_df_equality(answers, expected, ignore_row_order=True, ignore_nullable=True)
    index.close()


def test_analogy_accuracy_and_pair_spearman_agree_with_gensim(spark, tmp_path):
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(60)]
    vectors = rng.standard_normal((60, 8)).astype(np.float32)
    quads = rng.integers(0, 60, (400, 4))
    quads = quads[[len(set(q)) == 4 for q in quads]]
    unit = unit_rows(vectors)

    def answer(q: np.ndarray) -> int:
        scores = unit[:50] @ (unit[q[1]] - unit[q[0]] + unit[q[2]])
        scores[q[:3][q[:3] < 50]] = -np.inf
        return int(np.argmax(scores))

    nearest = [answer(q) for q in quads]
    quads[::3, 3] = np.array(nearest)[::3]  # a third answerable, the rest mostly wrong
    quads[5, 0] = 59  # outside restrict_vocab=50: skipped
    lines = [": capital-common-countries"] + [" ".join(words[i] for i in q) for q in quads]
    (tmp_path / "q.txt").write_text("\n".join(lines) + "\n")
    kv = KeyedVectors(8)
    kv.add_vectors(words, vectors)
    gensim_score, _ = kv.evaluate_word_analogies(str(tmp_path / "q.txt"), restrict_vocab=50)
    questions = pd.DataFrame(
        [["capital-common-countries", *[words[i] for i in q]] for q in quads],
        columns=["section", "a", "b", "c", "expected"],
    )
    ours = analogy_accuracy(spark, words, vectors, questions, restrict_vocab=50)
    assert 0.2 < ours["accuracy"] == pytest.approx(gensim_score)
    pairs = pd.DataFrame({"w1": words[:30], "w2": words[30:], "score": rng.random(30)})
    (tmp_path / "pairs.tsv").write_text("# a\n# b\n" + pairs.to_csv(sep="\t", header=False, index=False))
    gensim_pairs = kv.evaluate_word_pairs(str(tmp_path / "pairs.tsv"))
    assert pair_spearman(words, vectors, pairs)["spearman"] == pytest.approx(gensim_pairs[1].statistic, abs=1e-6)


def test_packed_deltas_combine_as_the_rules_say():
    """Rows rule: each row averaged over the shards that changed it; average: over all; sum: added. Packing
    keeps only changed rows (all rows when most changed), in bfloat16 (relative error at most 2^-8)."""
    from pipelines.word2vec.trainer_sgns import combine_deltas, pack_delta

    rng = np.random.default_rng(0)
    deltas = [rng.normal(0, 1e-2, (12, 3)).astype(np.float32) for _ in range(4)]
    for d, unchanged in zip(
        deltas, ([1, 4, 6, 7, 8, 9, 10, 11], [4, 5, 6, 7, 8, 9, 10, 11], [1, 5, 6, 7, 8, 9, 10, 11], [11])
    ):
        d[unchanged] = 0
    packed = [pack_delta(d) for d in deltas]
    assert [list(rows) for rows, _, _ in packed[:3]] == [[0, 2, 3, 5], [0, 1, 2, 3], [0, 2, 3, 4]]
    assert packed[3][0] is None and packed[3][1].shape == (12, 3)  # 11 of 12 rows changed: sent whole
    touched = np.sum([np.any(d != 0, axis=1) for d in deltas], axis=0)
    assert list(touched) == [4, 2, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0]
    expected = {
        "sum": np.sum(deltas, axis=0),
        "average": np.mean(deltas, axis=0),
        "rows": np.sum(deltas, axis=0) / np.maximum(touched, 1)[:, None],
    }
    for rule, want in expected.items():
        got = combine_deltas(packed, (12, 3), rule, 4)
        np.testing.assert_allclose(got, want, rtol=2**-8, atol=1e-7)


def test_bfloat16_rounds_to_nearest_and_keeps_zeros():
    from pipelines.word2vec.trainer_sgns import from_bfloat16, to_bfloat16

    x = np.random.default_rng(1).normal(0, 1e-3, 100_000).astype(np.float32)
    x[:10] = 0
    back = from_bfloat16(to_bfloat16(x))
    rel = back[10:] / x[10:] - 1
    assert np.all(back[:10] == 0) and np.abs(rel).max() <= 2**-8 and abs(rel.mean()) < 1e-4
    assert from_bfloat16(to_bfloat16(np.float32([1.0, -2.5, 3.0e-5])))[:2].tolist() == [1.0, -2.5]


def test_auto_syncs_scale_with_partitions_and_corpus_size():
    from pipelines.word2vec.trainer_sgns import SgnsSettings

    assert SgnsSettings(num_partitions=2).sync_rounds(16_000_000) == 4
    assert SgnsSettings(num_partitions=8).sync_rounds(16_000_000) == 12
    assert SgnsSettings(num_partitions=4).sync_rounds(16_000_000) == 6
    assert SgnsSettings(num_partitions=8).sync_rounds(4_000_000) == 5  # 100K tokens per shard and round
    assert SgnsSettings(num_partitions=2).sync_rounds(50_000) == 1
    assert SgnsSettings(num_partitions=8, syncs_per_epoch=3).sync_rounds(16_000_000) == 3
    assert SgnsSettings(num_partitions=2).gain == 2 and SgnsSettings(num_partitions=2, combine="sum").gain == 1
