"""Keywords: each document's top-k terms by TF-IDF weight, ties broken by term (alphabetically)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.ml.feature import CountVectorizerModel, HashingTF
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.frames import from_pandas
from pipelines.text.tfidf import term_counter, vector_entries
from udfs.text import vector_entries_udf


def term_index(
    model: PipelineModel, tokens: DataFrame, tokens_col: str = "tokens", id_col: str = "doc_id"
) -> DataFrame:
    """Which term a feature index stands for.

    Vocabulary mode: ``(index, term)`` from the fitted vocabulary (already on the driver, like any
    ``CountVectorizerModel``). Hashing mode has no inverse, so the document's own distinct terms are
    hashed with the same ``HashingTF``: ``(id_col, index, term)``; colliding terms share a weight.
    """
    counter = term_counter(model)
    spark = tokens.sparkSession
    if isinstance(counter, CountVectorizerModel):
        vocabulary = counter.vocabulary
        table = pd.DataFrame(
            {"index": np.arange(len(vocabulary), dtype=np.int32), "term": pd.Series(vocabulary, dtype=object)}
        )
        return from_pandas(spark, table, "index INT, term STRING")
    terms = tokens.select(id_col, F.explode(F.array_distinct(tokens_col)).alias("term"))
    hasher = HashingTF(inputCol="_term", outputCol="_hashed", numFeatures=counter.getNumFeatures())
    hashed = hasher.transform(terms.withColumn("_term", F.array("term")))
    # Each row holds one term, so its hashed vector has exactly one entry: the term's index.
    return hashed.select(id_col, F.element_at(vector_entries_udf("_hashed")["indices"], 1).alias("index"), "term")


def keyword_entries(
    model: PipelineModel, features: DataFrame, k: int, vector_col: str = "tfidf", id_col: str = "doc_id"
) -> DataFrame:
    """The entries ``(id_col, index, weight)`` that can be among a document's ``k`` keywords.

    Vocabulary mode: each vector's ``k`` heaviest, equal weights by term, cut inside the Arrow batch
    (the vocabulary's alphabetical ranks are model-sized). Hashing mode: every entry, since an index
    may stand for several terms and so cannot be ranked before ``top_keywords`` joins the terms.
    """
    counter = term_counter(model)
    if not isinstance(counter, CountVectorizerModel):
        return vector_entries(features, vector_col, id_col)
    order = np.empty(len(counter.vocabulary), dtype=np.int64)
    order[np.argsort(np.array(counter.vocabulary, dtype=object))] = np.arange(len(order))
    return vector_entries(features, vector_col, id_col, top=k, order=order)


def top_keywords(weights: DataFrame, terms: DataFrame, k: int, id_col: str = "doc_id") -> DataFrame:
    """``(id_col, term, weight, rank)``: the ``k`` heaviest terms of each document, rank 1 first.

    ``weights`` holds ``(id_col, index, weight)`` entries (``keyword_entries``); ``terms`` comes from
    ``term_index`` and is joined on the columns the two share. Zero weights are never keywords.
    """
    keys = [c for c in (id_col, "index") if c in terms.columns]
    named = weights.filter(F.col("weight") > 0).join(terms, keys)
    order = Window.partitionBy(id_col).orderBy(F.col("weight").desc(), F.col("term"))
    ranked = named.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= k)
    return ranked.select(id_col, "term", "weight", F.col("rank").cast("int"))
