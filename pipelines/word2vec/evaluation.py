"""Quality of word and item vectors: analogy accuracy (as gensim's ``evaluate_word_analogies`` with
``restrict_vocab``), Spearman correlation on word-pair similarity sets (WordSim353, SimLex-999), and for
item vectors the share of an item's nearest neighbours that share its category."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import spearmanr

from pipelines.frames import from_pandas
from pipelines.word2vec.queries import VectorIndex
from udfs.word2vec import unit_rows

EVAL_FILES = {"analogy": "questions-words.txt", "wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def read_analogies(path: str | Path) -> pd.DataFrame:
    """``questions-words.txt`` as (section, a, b, c, expected), lower-cased."""
    rows, section = [], ""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            rows.append([section, *line.lower().split()[:4]])
    return pd.DataFrame(rows, columns=["section", "a", "b", "c", "expected"])


def read_pairs(path: str | Path) -> pd.DataFrame:
    """A tab-separated ``word1 word2 score`` file (``#`` lines skipped) as (w1, w2, score), lower-cased."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b, score = line.split("\t")[:3]
        rows.append((a.lower(), b.lower(), float(score)))
    return pd.DataFrame(rows, columns=["w1", "w2", "score"])


def analogy_accuracy(
    spark: SparkSession, words: Sequence[str], vectors: np.ndarray, questions: pd.DataFrame, restrict_vocab: int = 30000
) -> dict:
    """Top-1 accuracy over the questions whose four words are among the ``restrict_vocab`` most frequent
    (``words`` is in frequency order); the others are skipped, as gensim does."""
    index = VectorIndex(spark, words, vectors, restrict_vocab)
    try:
        known = set(index.words)
        usable = questions[questions[["a", "b", "c", "expected"]].isin(known).all(axis=1)]
        if usable.empty:
            return {"accuracy": 0.0, "questions": 0, "skipped": len(questions)}
        answers = index.analogies(from_pandas(spark, usable), k=1)
        scored = answers.select("section", (F.col("neighbours")[0] == F.col("expected")).cast("int").alias("ok"))
        total = scored.agg(F.sum("ok").alias("correct"), F.count("*").alias("n")).first()
        sem = scored.filter(~F.col("section").startswith("gram")).agg(F.avg("ok")).first()[0]
        syn = scored.filter(F.col("section").startswith("gram")).agg(F.avg("ok")).first()[0]
    finally:
        index.close()
    return {
        "accuracy": total["correct"] / total["n"],
        "questions": int(total["n"]),
        "skipped": len(questions) - int(total["n"]),
        "semantic": sem,
        "syntactic": syn,
    }


def pair_spearman(words: Sequence[str], vectors: np.ndarray, pairs: pd.DataFrame, restrict_vocab: int = 300000) -> dict:
    """Spearman correlation of cosine similarity with the human score over pairs with both words known."""
    index = {w: i for i, w in enumerate(words[:restrict_vocab])}
    a = pairs["w1"].map(index)
    b = pairs["w2"].map(index)
    ok = a.notna() & b.notna()
    if ok.sum() < 2:
        return {"spearman": float("nan"), "pairs": int(ok.sum()), "oov_pairs": int((~ok).sum())}
    unit = unit_rows(vectors)
    cos = np.einsum("ij,ij->i", unit[a[ok].astype(int)], unit[b[ok].astype(int)])
    rho = spearmanr(pairs["score"][ok], cos).statistic
    return {"spearman": float(rho), "pairs": int(ok.sum()), "oov_pairs": int((~ok).sum())}


def evaluate_words(
    spark: SparkSession, words: Sequence[str], vectors: np.ndarray, eval_dir: str | Path, restrict_vocab: int = 30000
) -> dict:
    """Analogy accuracy, WordSim353 and SimLex-999 Spearman with the files of ``eval_dir``."""
    root = Path(eval_dir)
    missing = [name for name in EVAL_FILES.values() if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: evaluation files missing: {', '.join(missing)}")
    return {
        "analogy": analogy_accuracy(
            spark, words, vectors, read_analogies(root / EVAL_FILES["analogy"]), restrict_vocab
        ),
        "wordsim353": pair_spearman(words, vectors, read_pairs(root / EVAL_FILES["wordsim353"])),
        "simlex999": pair_spearman(words, vectors, read_pairs(root / EVAL_FILES["simlex999"])),
    }


def category_neighbour_share(
    spark: SparkSession,
    words: Sequence[str],
    vectors: np.ndarray,
    categories: DataFrame,
    key_col: str = "item_id",
    category_col: str = "topic",
    k: int = 10,
) -> dict:
    """Share of each item's ``k`` nearest neighbours in the same category, and the share expected by chance."""
    cats = categories.select(F.col(key_col).cast("string").alias("word"), F.col(category_col).alias("category"))
    index = VectorIndex(spark, words, vectors)
    try:
        queries = from_pandas(spark, pd.DataFrame({"word": list(index.words)}))
        pairs = (
            index.most_similar(queries, k)
            .select("word", F.posexplode("neighbours").alias("rank", "neighbour"))
            .join(cats, "word")
            .join(cats.withColumnRenamed("word", "neighbour").withColumnRenamed("category", "n_category"), "neighbour")
        )
        share = pairs.agg(F.avg((F.col("category") == F.col("n_category")).cast("double"))).first()[0]
        sizes = cats.join(queries, "word").groupBy("category").count().toPandas()["count"].to_numpy(float)
    finally:
        index.close()
    chance = float(((sizes / sizes.sum()) ** 2).sum()) if sizes.size else 0.0
    return {"same_category_share": share, "chance": chance, "k": k, "items": len(words)}
