"""Keywords (top-k with ties by term) and similar documents (blocked, inverted index, ivf) against brute-force
cosines."""

import numpy as np
import pytest
from chispa import assert_df_equality

from pipelines.text.keywords import top_keywords
from pipelines.text.similar import IvfSettings, recall_at_k, similar_documents

ENTRIES = "doc_id BIGINT, index INT, weight DOUBLE"


def test_keywords_top_k_ties_broken_by_term(spark):
    weights = spark.createDataFrame(
        [(1, 0, 0.5), (1, 1, 0.5), (1, 2, 0.7), (1, 3, 0.1), (2, 3, 0.0), (2, 1, 0.2)], ENTRIES
    )
    terms = spark.createDataFrame([(0, "zebra"), (1, "apple"), (2, "mango"), (3, "kiwi")], "index INT, term STRING")
    expected = spark.createDataFrame(
        [(1, "mango", 0.7, 1), (1, "apple", 0.5, 2), (1, "zebra", 0.5, 3), (2, "apple", 0.2, 1)],
        "doc_id BIGINT, term STRING, weight DOUBLE, rank INT",
    )
    assert_df_equality(top_keywords(weights, terms, 3), expected, ignore_row_order=True, ignore_nullable=True)


def _unit_rows(seed, n_docs, n_terms, density):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_docs, n_terms)) * (rng.random((n_docs, n_terms)) < density)
    dense[:, 0] += 0.3 * (rng.random(n_docs) < 0.9)  # one term in 90% of documents
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    dense = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    return dense


def _entries(spark, dense, first_id=0):
    rows = [(first_id + int(i), int(j), float(dense[i, j])) for i, j in zip(*np.nonzero(dense))]
    return spark.createDataFrame(rows, ENTRIES)


def _brute_force(queries, corpus, k, exclude_self, max_df_fraction=1.0):
    """Exact top-k among the pairs that share a term found in at most ``max_df_fraction`` of the corpus."""
    scores = queries @ corpus.T
    n_docs = (corpus > 0).any(axis=1).sum()
    kept = (corpus > 0).sum(axis=0) <= max_df_fraction * n_docs
    scores[(queries[:, kept] > 0).astype(int) @ (corpus[:, kept] > 0).T.astype(int) == 0] = -np.inf
    if exclude_self:
        np.fill_diagonal(scores, -np.inf)
    result = {}
    for i, row in enumerate(scores):
        order = sorted((j for j in range(len(row)) if row[j] > 0 and np.isfinite(row[j])), key=lambda j: (-row[j], j))
        result[i] = [(j, row[j]) for j in order[:k]]
    return result


def _as_lists(neighbours, first_id=0):
    result = {}
    for r in neighbours.orderBy("doc_id", "rank").collect():
        result.setdefault(r.doc_id - first_id, []).append((r.neighbour_id, r.cosine))
    return result


def _assert_same(got, want):
    assert got.keys() == {i for i, pairs in want.items() if pairs}
    for i, pairs in got.items():
        assert [j for j, _ in pairs] == [j for j, _ in want[i]], i
        assert np.allclose([c for _, c in pairs], [c for _, c in want[i]], atol=1e-12)


# (method options, max_df_fraction the brute force honours): block sizes that give one block and several
# blocks of unequal size (off-diagonal pairs, mirrored); one document per block is in the ties test.
SETTINGS = [
    ({"method": "blocked", "block_size": 1000}, 1.0),
    ({"method": "blocked", "block_size": 7}, 1.0),
    ({"method": "inverted_index", "max_df_fraction": 1.0, "candidates": 5}, 1.0),
    ({"method": "inverted_index", "max_df_fraction": 0.5, "candidates": 40}, 0.5),
]


@pytest.mark.parametrize("options, reachable_df", SETTINGS)
def test_all_pairs_neighbours_equal_brute_force(spark, options, reachable_df):
    """Blocked and uncapped inverted index are exact. With skipped terms the candidates are rescored
    exactly; pairs that share only skipped terms are out of reach by design."""
    dense = _unit_rows(7, n_docs=40, n_terms=30, density=0.15)
    entries = _entries(spark, dense)
    got = similar_documents(entries, k=5, **options)
    assert got.columns == ["doc_id", "neighbour_id", "cosine", "rank"]
    _assert_same(_as_lists(got), _brute_force(dense, dense, 5, True, reachable_df))


@pytest.mark.parametrize("options, reachable_df", [SETTINGS[1], SETTINGS[3]])
def test_query_mode_against_an_indexed_corpus(spark, options, reachable_df):
    corpus = _unit_rows(8, n_docs=30, n_terms=20, density=0.2)
    queries = _unit_rows(9, n_docs=6, n_terms=20, density=0.2)
    got = similar_documents(_entries(spark, corpus), k=3, queries=_entries(spark, queries, first_id=1000), **options)
    _assert_same(_as_lists(got, first_id=1000), _brute_force(queries, corpus, 3, False, reachable_df))


def test_ties_are_broken_by_lower_neighbour_id_across_blocks(spark):
    """Four identical documents: each one's neighbours are the other three, in id order, whichever block they are in."""
    entries = spark.createDataFrame([(d, 0, 1.0) for d in (11, 3, 42, 7)], ENTRIES)
    got = similar_documents(entries, k=2, method="blocked", block_size=1)
    assert _as_lists(got) == {
        3: [(7, 1.0), (11, 1.0)],
        7: [(3, 1.0), (11, 1.0)],
        11: [(3, 1.0), (7, 1.0)],
        42: [(3, 1.0), (7, 1.0)],
    }


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "inverted_index", "k": 10, "candidates": 5}, "need 1 <= k <= candidates"),
        ({"method": "blocked", "k": 3, "block_size": 0}, "block_size >= 1"),
        ({"method": "cosine_lsh", "k": 3}, "method: expected one of"),
    ],
)
def test_bad_settings_are_refused(spark, options, message):
    entries = spark.createDataFrame([(1, 0, 1.0)], ENTRIES)
    with pytest.raises(ValueError, match=message):
        similar_documents(entries, **options)
    with pytest.raises(ValueError, match="ivf: need"):
        IvfSettings(probes=0)


def _topic_rows(seed, n_docs, n_topics=12, topic_terms=40, shared_terms=300, length=25):
    """Unit-length documents with structure: each draws most of its words from its topic's own terms, the
    rest from a vocabulary every topic shares (Zipf-like), with random counts."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_docs, n_topics * topic_terms + shared_terms))
    shared_p = 1.0 / np.arange(1, shared_terms + 1)
    for doc in range(n_docs):
        topic = rng.integers(n_topics)
        own = topic * topic_terms + rng.integers(topic_terms, size=int(0.7 * length))
        rest = n_topics * topic_terms + rng.choice(shared_terms, size=length - len(own), p=shared_p / shared_p.sum())
        np.add.at(dense[doc], np.concatenate([own, rest]), 1.0)
    return dense / np.linalg.norm(dense, axis=1, keepdims=True)


IVF = IvfSettings(list_size=60, probes=4)


def test_ivf_recall_against_exact(spark):
    """1,200 topical documents in 20 lists, each query probing 4: recall@10 >= 0.95 against the blocked method
    (both measured by ``recall_at_k``), at most k neighbours each with its exact cosine."""
    dense = _topic_rows(3, n_docs=1200)
    entries = _entries(spark, dense).cache()
    exact = similar_documents(entries, k=10, method="blocked", block_size=300).cache()
    approx = similar_documents(entries, k=10, method="ivf", block_size=300, ivf=IVF).cache()
    assert recall_at_k(exact, exact, 10) == 1.0
    recall = recall_at_k(approx, exact, 10)
    print(f"ivf recall@10 {recall:.4f}")
    assert recall >= 0.95
    got = approx.toPandas()
    assert got.groupby("doc_id").size().max() <= 10 and (got["doc_id"] != got["neighbour_id"]).all()
    assert np.allclose(got["cosine"], (dense[got["doc_id"]] * dense[got["neighbour_id"]]).sum(axis=1), atol=1e-12)


@pytest.mark.slow  # ivf twice (k-means and the list joins): about 35 s
def test_ivf_gives_the_same_table_twice(spark):
    entries = _entries(spark, _topic_rows(3, n_docs=1200))
    first = similar_documents(entries, k=10, method="ivf", block_size=300, ivf=IVF)
    again = similar_documents(entries, k=10, method="ivf", block_size=300, ivf=IVF)
    assert_df_equality(again, first, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.slow  # the same method as the corpus-mode test above, queries against another table
def test_ivf_query_mode_recall(spark):
    corpus = _topic_rows(4, n_docs=900)
    queries = _entries(spark, _topic_rows(5, n_docs=100), first_id=10_000)
    exact = similar_documents(_entries(spark, corpus), k=10, queries=queries, method="blocked")
    approx = similar_documents(_entries(spark, corpus), k=10, queries=queries, method="ivf", ivf=IVF)
    assert recall_at_k(approx, exact, 10) >= 0.95


@pytest.mark.parametrize(
    "exact_max_docs, method", [(40, "blocked"), pytest.param(39, "ivf", marks=pytest.mark.slow)]
)  # ivf on 40 documents: about 20 s
def test_auto_switches_at_the_document_count(spark, exact_max_docs, method):
    """40 documents: ``auto`` is the blocked method at a threshold of 40 and ivf one below it."""
    entries = _entries(spark, _unit_rows(7, n_docs=40, n_terms=30, density=0.15))
    settings = IvfSettings(list_size=10, probes=2)
    auto = similar_documents(entries, k=5, method="auto", exact_max_docs=exact_max_docs, ivf=settings)
    assert_df_equality(
        auto, similar_documents(entries, k=5, method=method, ivf=settings), ignore_row_order=True, ignore_nullable=True
    )
