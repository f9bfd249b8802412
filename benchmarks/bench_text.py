"""Text benchmark (local[2]): TF-IDF parity and speed against scikit-learn, similar-document recall, Chinese words.

1. Wikipedia slice (``enwiki_2015_wikiextractor``): our TF-IDF in scikit-learn mode against ``TfidfVectorizer``.
   Speed: fit + transform + keywords from the raw text on both sides, each with its own tokeniser (scikit-learn's
   analyzer set up like ours: NFKC, lower case, the same token pattern and stop words; one process), as
   ``tfidf_vs_sklearn``; ``tfidf_time_ratio`` keeps the older comparison with scikit-learn on our ready-made
   tokens. Parity: ``TfidfVectorizer`` fed our own token lists, compared per (document, term).
2. Similar documents on the same slice: recall@10 against exact brute-force cosine (scikit-learn matrix); the
   approximate ``ivf`` method's recall@10 against the exact (blocked) table and its time.
3. THUCNews titles (``zh_thucnews_titles``): jieba words, keywords, the share of the 10 neighbours in the
   query's class, and ``ivf`` against exact as in 2.
4. With ``--scale 1,4,16``: Wikipedia paragraphs (20 words or more) as documents, as many as the slice's articles
   times each factor: blocked and ``ivf`` times, and ``ivf``'s recall@10 against exact. Above ``--exact-max-docs``
   the exact table is only computed for a sample of ``--sample-queries`` queries (query mode, timed apart).

The last line printed is one JSON object with the figures. Usage:
``python benchmarks/bench_text.py [--data ../shared/data] [--max-docs N] [--method blocked|inverted_index]
[--list-size 200 --probes 32 --dim 4096] [--scale 1,4,16] [--skip-main]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from sklearn.feature_extraction.text import TfidfVectorizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.session import LOCAL_SPARK_CONF, get_spark  # noqa: E402
from pipelines.text.keywords import keyword_entries, term_index, top_keywords  # noqa: E402
from pipelines.text.similar import METHODS, IvfSettings, recall_at_k, similar_documents  # noqa: E402
from pipelines.text.stop_words import stop_words  # noqa: E402
from pipelines.text.tfidf import TfidfSettings, fit_tfidf, vector_entries  # noqa: E402
from pipelines.text.tokenizer import TextTokenizer  # noqa: E402

K = 10
DOC_START = re.compile(r'^<doc id="(\d+)"')


def log(message: str) -> None:
    print(message, flush=True)


def read_wiki(path: Path, max_docs: int) -> pd.DataFrame:
    """Articles of the WikiExtractor dump as (doc_id, text); the <doc> wrapper lines dropped."""
    ids, texts, lines, current = [], [], [], None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            start = DOC_START.match(line)
            if start:
                current, lines = int(start.group(1)), []
            elif line.startswith("</doc>"):
                ids.append(current)
                texts.append("".join(lines))
                if len(ids) == max_docs:
                    break
            else:
                lines.append(line)
    return pd.DataFrame({"doc_id": np.array(ids, dtype=np.int64), "text": texts})


def materialise(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def ours_tfidf(docs: DataFrame, tokenizer: TextTokenizer) -> tuple[DataFrame, DataFrame, DataFrame, float]:
    """Fit + transform + keywords in Spark; returns transformed docs, weights (doc_id, term, weight), keywords."""
    start = time.perf_counter()
    model, transformed = fit_tfidf(docs, tokenizer, TfidfSettings())
    transformed = transformed.select("doc_id", "tokens", "tfidf").cache()
    materialise(transformed)
    terms = term_index(model, transformed).cache()
    keywords = top_keywords(keyword_entries(model, transformed, K), terms, K).cache()
    materialise(keywords)
    elapsed = time.perf_counter() - start
    weights = vector_entries(transformed).join(terms, "index").select("doc_id", "term", "weight")
    return transformed, weights, keywords, elapsed


def sklearn_preprocess(text: str) -> str:
    """What our tokeniser does before its token pattern: NFKC, then lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def sklearn_tfidf(vectorizer: TfidfVectorizer, docs: list[str] | list[list[str]]) -> tuple[sp.csr_matrix, float]:
    """``vectorizer.fit_transform(docs)`` plus the same top-k keywords per row, timed."""
    start = time.perf_counter()
    matrix = vectorizer.fit_transform(docs).tocsr()
    terms = vectorizer.get_feature_names_out()
    for row in range(matrix.shape[0]):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        cols, vals = matrix.indices[lo:hi], matrix.data[lo:hi]
        order = np.lexsort((terms[cols], -vals))[:K]
        _ = list(zip(terms[cols[order]], vals[order]))
    return matrix, time.perf_counter() - start


def as_matrix(weights: pd.DataFrame, row_of: dict[int, int], vectorizer: TfidfVectorizer, shape) -> sp.csr_matrix:
    cols = weights["term"].map(vectorizer.vocabulary_)
    if cols.isna().any():
        raise AssertionError(f"terms missing from scikit-learn's vocabulary: {weights['term'][cols.isna()].head()}")
    rows = weights["doc_id"].map(row_of)
    return sp.csr_matrix((weights["weight"].to_numpy(), (rows.to_numpy(), cols.to_numpy())), shape=shape)


def exact_top_k(matrix: sp.csr_matrix, k: int, chunk: int = 500) -> np.ndarray:
    """Brute-force cosine top-k of every row (rows are unit length), itself excluded."""
    result = np.empty((matrix.shape[0], k), dtype=np.int64)
    transposed = matrix.T.tocsc()
    for lo in range(0, matrix.shape[0], chunk):
        scores = (matrix[lo : lo + chunk] @ transposed).toarray()
        scores[np.arange(scores.shape[0]), np.arange(lo, lo + scores.shape[0])] = -np.inf
        result[lo : lo + chunk] = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return result


def neighbours_of(neighbours: DataFrame) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for doc, neighbour in neighbours.select("doc_id", "neighbour_id").toPandas().itertuples(index=False):
        found.setdefault(int(doc), set()).add(int(neighbour))
    return found


def similar(transformed: DataFrame, options: dict[str, Any]) -> tuple[DataFrame, float]:
    """Top-K neighbours of every document with ``similar_documents(**options)``, and the seconds taken."""
    return timed_neighbours(vector_entries(transformed, unit=True).cache(), options)


def timed_neighbours(entries: DataFrame, options: dict[str, Any]) -> tuple[DataFrame, float]:
    start = time.perf_counter()
    neighbours = similar_documents(entries, K, **options).cache()
    materialise(neighbours)
    return neighbours, time.perf_counter() - start


def approximate(transformed: DataFrame, exact: DataFrame, ivf: IvfSettings, prefix: str) -> dict[str, float]:
    """``ivf`` neighbours of every document: time and recall@K against the ``exact`` table."""
    neighbours, seconds = similar(transformed, {"method": "ivf", "ivf": ivf})
    recall = recall_at_k(neighbours, exact, K)
    log(f"{prefix}: ivf recall@{K} {recall:.4f} against exact in {seconds:.1f}s ({ivf})")
    return {f"{prefix}_approx_recall_at_10": round(recall, 4), f"{prefix}_approx_s": round(seconds, 2)}


def bench_wiki(
    spark: SparkSession, data: Path, max_docs: int, options: dict[str, Any], ivf: IvfSettings
) -> dict[str, float]:
    wiki = read_wiki(data / "enwiki_2015_wikiextractor" / "enwiki_wikiextractor_AA_00-99.txt.gz", max_docs)
    log(f"wiki: {len(wiki):,} articles, {wiki['text'].str.len().sum():,} characters")
    docs = spark.createDataFrame(wiki).repartition(8).cache()
    materialise(docs)
    stop = stop_words(["english"])
    transformed, weights, keywords, ours_s = ours_tfidf(docs, TextTokenizer(stopWords=stop))
    log(f"ours: fit + transform + keywords {ours_s:.1f}s")
    texts = wiki.sort_values("doc_id")["text"].tolist()
    raw_vectorizer = TfidfVectorizer(
        preprocessor=sklearn_preprocess, token_pattern=r"(?u)\b\w\w+\b", stop_words=stop, dtype=np.float64
    )
    _, raw_s = sklearn_tfidf(raw_vectorizer, texts)
    log(f"scikit-learn from raw text: fit + transform + keywords {raw_s:.1f}s; ratio ours/sklearn {ours_s / raw_s:.2f}")

    tokens = transformed.select("doc_id", "tokens").toPandas().sort_values("doc_id")
    token_lists = [list(t) for t in tokens["tokens"]]
    log(f"tokens: {sum(map(len, token_lists)):,}")
    vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens, dtype=np.float64)
    theirs, sklearn_s = sklearn_tfidf(vectorizer, token_lists)
    log(f"scikit-learn on our tokens: fit + transform + keywords {sklearn_s:.1f}s; ratio {ours_s / sklearn_s:.2f}")
    unshared = set(raw_vectorizer.vocabulary_).symmetric_difference(vectorizer.vocabulary_)
    log(
        f"tokenisers: scikit-learn's vocabulary {len(raw_vectorizer.vocabulary_):,} terms, ours "
        f"{len(vectorizer.vocabulary_):,}, {len(unshared):,} in one only"
    )

    row_of = {int(d): i for i, d in enumerate(tokens["doc_id"])}
    ours = as_matrix(weights.toPandas(), row_of, vectorizer, theirs.shape)
    diff = abs(ours - theirs)
    max_diff = float(diff.max()) if diff.nnz else 0.0
    log(
        f"parity: {theirs.nnz:,} non-zeros (ours {ours.nnz:,}), vocabulary {len(vectorizer.vocabulary_):,}, "
        f"max |ours - sklearn| = {max_diff:.3g}"
    )
    top = keywords.filter(F.col("doc_id") == int(tokens["doc_id"].iloc[0])).orderBy("rank").collect()
    log(f"keywords of article {tokens['doc_id'].iloc[0]}: {[r.term for r in top]}")

    neighbours, similar_s = similar(transformed, options)
    exact = exact_top_k(theirs, K)
    found = neighbours_of(neighbours)
    doc_ids = tokens["doc_id"].to_numpy()
    hits = sum(len(found.get(int(doc_ids[i]), set()) & set(doc_ids[exact[i]].tolist())) for i in range(len(doc_ids)))
    recall = hits / (K * len(doc_ids))
    log(f"similar documents: recall@{K} {recall:.4f} in {similar_s:.1f}s ({options})")
    exact = neighbours if options["method"] == "blocked" else similar(transformed, {"method": "blocked"})[0]
    approx = approximate(transformed, exact, ivf, "similar")
    spark.catalog.clearCache()
    return {
        "wiki_docs": len(wiki),
        "tfidf_max_abs_diff": max_diff,
        "ours_tfidf_s": round(ours_s, 2),
        "sklearn_tfidf_s": round(sklearn_s, 2),
        "tfidf_time_ratio": round(ours_s / sklearn_s, 2),
        "sklearn_raw_tfidf_s": round(raw_s, 2),
        "tfidf_vs_sklearn": round(ours_s / raw_s, 2),
        "vocabulary_unshared": len(unshared),
        "similar_recall_at_10": round(recall, 4),
        "similar_s": round(similar_s, 2),
        **approx,
    }


def bench_thucnews(spark: SparkSession, data: Path, options: dict[str, Any], ivf: IvfSettings) -> dict[str, float]:
    folder = data / "zh_thucnews_titles"
    frames = [
        pd.read_csv(folder / name, sep="\t", names=["text", "label"], quoting=3, dtype={"text": str})
        for name in ("dev.txt.gz", "test.txt.gz")
    ]
    titles = pd.concat(frames, ignore_index=True)
    titles.insert(0, "doc_id", np.arange(len(titles), dtype=np.int64))
    log(f"thucnews: {len(titles):,} titles in {titles['label'].nunique()} classes")
    docs = spark.createDataFrame(titles).repartition(4).cache()
    tokenizer = TextTokenizer(segmenter="jieba", stopWords=stop_words(["chinese", "english"]))
    start = time.perf_counter()
    transformed, _, keywords, _ = ours_tfidf(docs.select("doc_id", "text"), tokenizer)
    zh_s = time.perf_counter() - start
    lengths = (
        transformed.select(F.explode("tokens").alias("t"))
        .agg(
            F.avg(F.char_length("t")).alias("chars"),
            F.avg((F.char_length("t") == 1).cast("double")).alias("single"),
            F.count(F.lit(1)).alias("n"),
        )
        .first()
    )
    log(
        f"jieba: {lengths['n']:,} tokens, {lengths['chars']:.3f} characters per token, "
        f"{lengths['single']:.1%} single characters ({zh_s:.1f}s with TF-IDF and keywords)"
    )
    for row in docs.orderBy("doc_id").limit(3).collect():
        terms = [r.term for r in keywords.filter(F.col("doc_id") == row.doc_id).orderBy("rank").collect()]
        log(f"  {row.text} -> keywords {terms}")
    neighbours, zh_similar_s = similar(transformed, options)
    labels = docs.select("doc_id", "label")
    same = (
        neighbours.join(labels, "doc_id")
        .join(
            labels.withColumnRenamed("doc_id", "neighbour_id").withColumnRenamed("label", "neighbour_label"),
            "neighbour_id",
        )
        .agg(F.avg((F.col("label") == F.col("neighbour_label")).cast("double")))
        .first()[0]
    )
    log(f"similar titles: {same:.1%} of the {K} neighbours share the query's class (chance 10%), {zh_similar_s:.1f}s")
    exact = neighbours if options["method"] == "blocked" else similar(transformed, {"method": "blocked"})[0]
    approx = approximate(transformed, exact, ivf, "zh_similar")
    spark.catalog.clearCache()
    return {
        "zh_mean_token_chars": round(lengths["chars"], 4),
        "zh_single_char_share": round(lengths["single"], 4),
        "zh_same_class_at_10": round(same, 4),
        "zh_tfidf_s": round(zh_s, 2),
        "zh_similar_s": round(zh_similar_s, 2),
        **approx,
    }


def read_paragraphs(path: Path, n: int, min_words: int = 20) -> pd.DataFrame:
    """The first ``n`` paragraphs (lines of ``min_words`` words or more) of the WikiExtractor dump as (doc_id, text)."""
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.startswith(("<doc ", "</doc>")) and len(line.split()) >= min_words:
                texts.append(line)
                if len(texts) == n:
                    break
    return pd.DataFrame({"doc_id": np.arange(len(texts), dtype=np.int64), "text": texts})


def exact_for_sample(entries: DataFrame, n_docs: int, n_queries: int) -> DataFrame:
    """Exact top-K of about ``n_queries`` sampled documents (hash of the id), each excluded from its own list:
    blocked query mode with K + 1 neighbours, self removed, ranks recomputed."""
    sampled = F.pmod(F.xxhash64("doc_id"), F.lit(n_docs)) < n_queries
    found = similar_documents(entries, K + 1, queries=entries.filter(sampled), method="blocked")
    order = Window.partitionBy("doc_id").orderBy(F.col("cosine").desc(), F.col("neighbour_id"))
    return (
        found.filter(F.col("doc_id") != F.col("neighbour_id"))
        .drop("rank")
        .withColumn("rank", F.row_number().over(order))
        .filter(F.col("rank") <= K)
    )


def bench_scale(
    spark: SparkSession,
    data: Path,
    factors: list[int],
    base: int,
    ivf: IvfSettings,
    exact_max_docs: int,
    n_queries: int,
) -> dict[str, float]:
    """Blocked against ``ivf`` on ``base`` x factor Wikipedia paragraphs (see the module docstring, 4.)."""
    path = data / "enwiki_2015_wikiextractor" / "enwiki_wikiextractor_AA_00-99.txt.gz"
    paragraphs = read_paragraphs(path, base * max(factors))
    results: dict[str, float] = {}
    for factor in factors:
        docs = spark.createDataFrame(paragraphs.iloc[: base * factor]).repartition(8)
        _, transformed = fit_tfidf(docs, TextTokenizer(stopWords=stop_words(["english"])), TfidfSettings())
        entries = vector_entries(transformed.select("doc_id", "tfidf"), unit=True).cache()
        n_docs = entries.agg(F.countDistinct("doc_id")).first()[0]
        key = f"scale_{factor}x"
        if n_docs <= exact_max_docs:
            exact, exact_s = timed_neighbours(entries, {"method": "blocked"})
            exact_key, scope = f"{key}_exact_s", "all documents"
        else:
            start = time.perf_counter()
            exact = exact_for_sample(entries, n_docs, n_queries).cache()
            materialise(exact)
            exact_s = time.perf_counter() - start
            exact_key, scope = f"{key}_exact_sample_s", f"{n_queries:,} sampled queries"
        approx, approx_s = timed_neighbours(entries, {"method": "ivf", "ivf": ivf})
        recall = recall_at_k(approx, exact, K)
        log(
            f"{key}: {n_docs:,} paragraphs; exact {exact_s:.1f}s ({scope}); ivf {approx_s:.1f}s, "
            f"recall@{K} {recall:.4f}"
        )
        results.update(
            {
                f"{key}_docs": n_docs,
                exact_key: round(exact_s, 2),
                f"{key}_approx_s": round(approx_s, 2),
                f"{key}_approx_recall_at_10": round(recall, 4),
            }
        )
        spark.catalog.clearCache()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--max-docs", type=int, default=0, help="Wikipedia articles to use (0: all)")
    parser.add_argument("--method", default="blocked", choices=list(METHODS), help="similar documents method")
    parser.add_argument("--block-size", type=int, default=1000, help="documents per block (blocked)")
    parser.add_argument("--max-df-fraction", type=float, default=0.05, help="term skipping cap (inverted_index)")
    parser.add_argument("--candidates", type=int, default=20, help="candidates rescored (inverted_index)")
    parser.add_argument("--list-size", type=int, default=IvfSettings.list_size, help="documents per list (ivf)")
    parser.add_argument("--probes", type=int, default=IvfSettings.probes, help="lists probed per query (ivf)")
    parser.add_argument("--dim", type=int, default=IvfSettings.dim, help="projection dimension (ivf)")
    parser.add_argument(
        "--scale",
        default="",
        help="paragraph corpus sizes as multiples of the slice's articles, e.g. 1,4,16 (empty: skip)",
    )
    parser.add_argument("--scale-base", type=int, default=6514, help="scale: paragraphs at 1x (the slice's articles)")
    parser.add_argument("--exact-max-docs", type=int, default=30000, help="scale: largest all-pairs exact run")
    parser.add_argument("--sample-queries", type=int, default=2000, help="scale: exact queries above that")
    parser.add_argument("--skip-main", action="store_true", help="only the --scale study")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["SPARK_MASTER"] = "local[2]"
    spark = get_spark("bench_text", LOCAL_SPARK_CONF, {"spark.ui.showConsoleProgress": False})
    data = Path(args.data)
    options = (
        {"method": "blocked", "block_size": args.block_size}
        if args.method == "blocked"
        else {"method": "inverted_index", "max_df_fraction": args.max_df_fraction, "candidates": args.candidates}
    )
    ivf = IvfSettings(list_size=args.list_size, probes=args.probes, dim=args.dim)
    results: dict[str, Any] = (
        {}
        if args.skip_main
        else {
            **bench_wiki(spark, data, args.max_docs, options, ivf),
            **bench_thucnews(spark, data, options, ivf),
            "similar_method": args.method,
        }
    )
    if args.scale:
        results.update(
            bench_scale(
                spark,
                data,
                [int(f) for f in args.scale.split(",")],
                args.scale_base,
                ivf,
                args.exact_max_docs,
                args.sample_queries,
            )
        )
    spark.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
