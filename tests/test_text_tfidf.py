"""TF-IDF: hand-checked values, scikit-learn parity per (document, term), MLlib formula, hashing, persistence."""

import math

import numpy as np
import pytest
from chispa import assert_approx_df_equality
from pyspark.ml import PipelineModel
from pyspark.ml.feature import IDF, CountVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer

from pipelines.text.keywords import term_index
from pipelines.text.tfidf import TfidfSettings, build_tfidf_pipeline, idf_model, tfidf_features, vector_entries
from pipelines.text.tokenizer import TextTokenizer

WEIGHTS = "doc_id BIGINT, term STRING, weight DOUBLE"


def _token_docs(spark, token_lists):
    return spark.createDataFrame(list(enumerate(token_lists)), "doc_id BIGINT, tokens ARRAY<STRING>")


def _weights(model, docs, tokens_col="tokens"):
    """Our TF-IDF as (doc_id, term, weight) rows, whatever the term-counting mode."""
    out = model.transform(docs)
    entries = vector_entries(out, idf_model(model).getOutputCol())
    terms = term_index(model, out, tokens_col)
    keys = [c for c in ("doc_id", "index") if c in terms.columns]
    return entries.join(terms, keys).select("doc_id", "term", "weight")


def _sklearn_weights(token_lists, **kwargs):
    vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens, **kwargs)
    matrix = vectorizer.fit_transform(token_lists).tocoo()
    terms = vectorizer.get_feature_names_out()
    return {(int(r), str(terms[c])): float(v) for r, c, v in zip(matrix.row, matrix.col, matrix.data)}


def test_hand_checked_tfidf(spark):
    docs = _token_docs(spark, [["a", "b", "b"], ["b", "c"], []])
    model = build_tfidf_pipeline(None, TfidfSettings()).fit(docs)
    # n = 3; df: a 1, b 2, c 1. smooth idf = ln(4 / (1 + df)) + 1: a = c = ln 2 + 1, b = ln(4/3) + 1.
    ia, ib = math.log(2) + 1, math.log(4 / 3) + 1
    d0 = math.hypot(ia, 2 * ib)
    d1 = math.hypot(ib, ia)
    expected = spark.createDataFrame(
        [(0, "a", ia / d0), (0, "b", 2 * ib / d0), (1, "b", ib / d1), (1, "c", ia / d1)], WEIGHTS
    )
    assert_approx_df_equality(_weights(model, docs), expected, 1e-12, ignore_row_order=True, ignore_nullable=True)
    empty = tfidf_features(model, docs).filter("doc_id = 2").first()["tfidf"]
    assert empty.numNonzeros() == 0 and empty.size == 3


def test_hand_checked_sublinear_l1_without_smoothing(spark):
    docs = _token_docs(spark, [["a", "a", "a", "b"], ["b"]])
    settings = TfidfSettings(smooth_idf=False, sublinear_tf=True, norm="l1")
    model = build_tfidf_pipeline(None, settings).fit(docs)
    # idf = ln(n / df) + 1: a = ln 2 + 1, b = 1; tf a = 1 + ln 3.
    wa, wb = (1 + math.log(3)) * (math.log(2) + 1), 1.0
    expected = spark.createDataFrame([(0, "a", wa / (wa + wb)), (0, "b", wb / (wa + wb)), (1, "b", 1.0)], WEIGHTS)
    assert_approx_df_equality(_weights(model, docs), expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def _random_corpus(seed, n_docs=40, vocabulary=60):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    probs = 1.0 / np.arange(1, vocabulary + 1)
    probs /= probs.sum()
    return [list(rng.choice(words, size=rng.integers(0, 30), p=probs)) for _ in range(n_docs)]


@pytest.mark.parametrize(
    "seed, ours, theirs",
    [
        (1, {}, {}),
        (2, {"smooth_idf": False, "sublinear_tf": True}, {"smooth_idf": False, "sublinear_tf": True}),
        (3, {"norm": "none", "min_df": 2, "max_df": 0.5}, {"norm": None, "min_df": 2, "max_df": 0.5}),
        (4, {"use_idf": False, "binary": True, "norm": "l1"}, {"use_idf": False, "binary": True, "norm": "l1"}),
    ],
)
def test_parity_with_sklearn_on_random_corpora(spark, seed, ours, theirs):
    token_lists = _random_corpus(seed)
    docs = _token_docs(spark, token_lists)
    model = build_tfidf_pipeline(None, TfidfSettings(**ours)).fit(docs)
    got = {(r.doc_id, r.term): r.weight for r in _weights(model, docs).collect()}
    want = _sklearn_weights(token_lists, **theirs)
    assert got.keys() == want.keys()
    assert max(abs(got[key] - want[key]) for key in want) < 1e-12


def test_spark_formula_matches_mllib_idf(spark):
    docs = _token_docs(spark, _random_corpus(5, n_docs=12, vocabulary=15))
    ours = build_tfidf_pipeline(None, TfidfSettings(idf="spark", norm="none")).fit(docs)
    counts = CountVectorizer(inputCol="tokens", outputCol="tf").fit(docs).transform(docs)
    mllib = IDF(inputCol="tf", outputCol="tfidf").fit(counts).transform(counts)
    expected = (
        vector_entries(mllib, "tfidf")
        .join(
            spark.createDataFrame(
                list(enumerate(CountVectorizer(inputCol="tokens").fit(docs).vocabulary)), "index INT, term STRING"
            ),
            "index",
        )
        .select("doc_id", "term", "weight")
    )
    assert_approx_df_equality(_weights(ours, docs), expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_hashing_mode_equals_vocabulary_mode_without_collisions(spark):
    docs = _token_docs(spark, _random_corpus(6, n_docs=10, vocabulary=12))
    vocabulary = build_tfidf_pipeline(None, TfidfSettings()).fit(docs)
    hashing = build_tfidf_pipeline(None, TfidfSettings(mode="hashing", num_features=1 << 20)).fit(docs)
    assert_approx_df_equality(
        _weights(hashing, docs), _weights(vocabulary, docs), 1e-12, ignore_row_order=True, ignore_nullable=True
    )


def test_text_pipeline_saved_and_loaded(spark, tmp_path):
    docs = spark.createDataFrame(
        [(1, "Spark makes TF-IDF"), (2, "TF-IDF with Spark and sklearn"), (3, None)], "doc_id BIGINT, text STRING"
    )
    model = build_tfidf_pipeline(TextTokenizer(stopWords=["and"]), TfidfSettings(sublinear_tf=True)).fit(docs)
    model.write().save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))
    assert np.array_equal(idf_model(loaded).idf, idf_model(model).idf)
    assert idf_model(loaded).getOrDefault("sublinearTf") is True
    assert_approx_df_equality(_weights(loaded, docs), _weights(model, docs), 0.0, ignore_row_order=True)
    assert {r.term for r in _weights(loaded, docs).collect()} == {"spark", "makes", "tf", "idf", "with", "sklearn"}


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        TfidfSettings(mode="dense")
    with pytest.raises(ValueError, match="norm must be one of"):
        TfidfSettings(norm="l3")


def test_keyword_entries_cut_to_k_per_document_keep_the_keywords(spark):
    from pipelines.text.keywords import keyword_entries, top_keywords

    docs = _token_docs(spark, [["b", "a", "c", "c", "d"], ["x", "y", "x"], []])
    model = build_tfidf_pipeline(None, TfidfSettings()).fit(docs)
    out = model.transform(docs)
    terms = term_index(model, out)
    cut = keyword_entries(model, out, 2)
    # Per document at most k entries, ties (a, b, d in document 0) broken by term as top_keywords does.
    assert cut.groupBy("doc_id").count().agg({"count": "max"}).first()[0] == 2
    assert_approx_df_equality(
        top_keywords(cut, terms, 2),
        top_keywords(vector_entries(out), terms, 2),
        1e-15,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert [r.term for r in top_keywords(cut, terms, 2).filter("doc_id = 0").orderBy("rank").collect()] == ["c", "a"]
