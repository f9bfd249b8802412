"""Text classification benchmark (local[2]): ours ``tfidf_lr`` against scikit-learn's TF-IDF + LogisticRegression,
ours ``fasttext`` against the official ``fasttext`` library.

Corpora, the same splits and the same tokens for every method:

1. THUCNews titles (``zh_thucnews_titles``): train on ``dev`` (10,000 titles), test on ``test`` (10,000), 10
   balanced classes.
2. Fudan (``zh_fudan_textclass_answer``): the tar.xz unpacked into a temporary directory, read as ``files`` in
   gb18030 with byte-identical duplicates removed (``read_corpus``, as ``train_text_classifier`` reads it), then a
   stratified 80/20 split with ``--seed``; 20 imbalanced classes.

Tokens: our jieba tokeniser (NFKC, lower case, ``(?U)\\w+`` per segment), computed once in Spark; scikit-learn is
fed the same token lists. Ours: ``fit_tfidf_lr`` (regularisation picked on a stratified validation split of the
training rows) with the job's default settings; scikit-learn: ``TfidfVectorizer`` with the same document-frequency
cut, sublinear tf and idf formula, and ``LogisticRegression`` (lbfgs, multinomial) with ``C = 1 / (regParam * rows)``
for each of our ``regParam`` candidates, tuned on the same validation rows and refitted on all training rows (the
two objectives are then the same). Wall times: from tokens to test predictions, tuning included, each side in
this one run. Each (method, corpus) is one function returning its figures, so more methods add rows.

fastText: ours is ``fit_text_classifier`` with ``model: fasttext`` (``num_partitions`` 2 on local[2]); the official
library trains on a file of the same token lists (``__label__<class index> token token ...``) with the same epochs,
dimension, word n-grams, buckets, learning rate, loss, ``minCount`` 1 and ``thread=2``, and predicts the test rows
from the same tokens. Their ``_s`` figures time the training alone: ours from the tokens to the fitted pipeline,
after a one-epoch warm-up fit on 500 rows that starts the Python workers as any later fit of a session finds them;
official from its file to its model. ``ours_ft_s``, ``official_ft_s`` and ``ft_time_ratio`` repeat the first
corpus's (THUCNews's in a full run). ``--loss both`` also runs hierarchical softmax (``ours_ft_hs``,
``official_ft_hs``). ``bench_fasttext.py`` runs this on THUCNews with the fastText methods only.

The last line printed is one JSON object. Usage: ``python benchmarks/bench_text_classification.py
[--data ../shared/data] [--seed 42] [--only thucnews|fudan] [--methods lr,ft] [--epoch 10] [--lr 0.5] [--dim 100]
[--word-ngrams 2] [--bucket 2000000] [--loss softmax|hs|both] [--epochs-per-sync N]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tarfile
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.sql import DataFrame, SparkSession
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import read_yaml  # noqa: E402
from pipelines.ingest import read_corpus  # noqa: E402
from pipelines.resources import job_defaults  # noqa: E402
from pipelines.sampling import stratified_split  # noqa: E402
from pipelines.session import LOCAL_SPARK_CONF, get_spark  # noqa: E402
from pipelines.text.classifier import (  # noqa: E402
    LABEL,
    LABEL_INDEX,
    PREDICTED_LABEL,
    TOKENS,
    evaluate,
    fit_text_classifier,
    predict_labels,
    text_tokenizer,
)
from pipelines.text.tokenizer import TextTokenizer  # noqa: E402
from pipelines.text.validation import clean_corpus  # noqa: E402


def log(message: str) -> None:
    print(message, flush=True)


class Corpus:
    """One corpus's train and test rows ``(doc_id, label, tokens)``, persisted, and their pandas copies."""

    def __init__(self, name: str, train: DataFrame, test: DataFrame, tokenize_s: float, facts: dict[str, Any]):
        self.name, self.train, self.test, self.tokenize_s, self.facts = name, train, test, tokenize_s, facts
        self.train_pd = train.select("doc_id", LABEL, TOKENS).toPandas()
        self.test_pd = test.select("doc_id", LABEL, TOKENS).toPandas()


def jieba_tokenizer() -> TextTokenizer:
    return text_tokenizer(TextTokenizer(segmenter="jieba", normalization="NFKC", lowercase=True))


def tokenized(name: str, train: DataFrame, test: DataFrame, facts: dict[str, Any]) -> Corpus:
    """Our jieba tokens of both splits, computed once (timed) and kept for every method."""
    tokenizer = jieba_tokenizer()
    start = time.perf_counter()
    parts = [
        tokenizer.transform(df).select("doc_id", "text", LABEL, TOKENS).persist(StorageLevel.MEMORY_AND_DISK)
        for df in (train, test)
    ]
    counts = [df.count() for df in parts]
    elapsed = time.perf_counter() - start
    log(f"{name}: {counts[0]} train and {counts[1]} test documents, tokenised in {elapsed:.1f}s")
    return Corpus(name, parts[0], parts[1], elapsed, {**facts, "train_docs": counts[0], "test_docs": counts[1]})


def thucnews(spark: SparkSession, data: Path) -> Corpus:
    """Train on dev, test on test; label names from class.txt."""
    root = data / "zh_thucnews_titles"
    names = (root / "class.txt").read_text(encoding="utf-8").split()

    def read(split: str) -> DataFrame:
        with gzip.open(root / f"{split}.txt.gz", "rt", encoding="utf-8") as f:
            rows = [line.rstrip("\n").rsplit("\t", 1) for line in f if line.strip()]
        frame = pd.DataFrame(
            {
                "doc_id": [f"{split}/{i}" for i in range(len(rows))],
                "text": [r[0] for r in rows],
                LABEL: [names[int(r[1])] for r in rows],
            }
        )
        return spark.createDataFrame(frame)

    return tokenized("thucnews", read("dev"), read("test"), {})


def fudan(spark: SparkSession, data: Path, seed: int, workdir: Path) -> Corpus:
    """The answer half unpacked, read as gb18030 files (duplicates dropped), split 80/20 per class."""
    start = time.perf_counter()
    with tarfile.open(data / "zh_fudan_textclass_answer" / "fudan_answer_gbk.tar.xz") as archive:
        archive.extractall(workdir, filter="data")
    log(f"fudan: unpacked into {workdir} in {time.perf_counter() - start:.1f}s")
    ingested = read_corpus(spark, str(workdir / "answer"), "files", encoding="gb18030", dedupe=True)
    docs, counts = clean_corpus(ingested.data)
    docs = docs.persist(StorageLevel.MEMORY_AND_DISK)
    facts = {"files": ingested.rows_in, "duplicates": ingested.duplicates, "invalid": counts.invalid_documents}
    log(
        f"fudan: {facts['files']} files, {facts['duplicates']} byte-identical duplicates dropped, "
        f"{facts['invalid']} documents with bytes invalid in gb18030"
    )
    train, test = stratified_split(docs, LABEL, 0.2, seed, "test split")
    return tokenized("fudan", train, test, facts)


def scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "acc": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "weighted_f1": float(f1_score(labels, predicted, average="weighted")),
    }


def ours_lr(corpus: Corpus, cfg: dict[str, Any]) -> dict[str, Any]:
    """``fit_tfidf_lr`` through ``fit_text_classifier`` (as the job fits it); test predictions from the tokens."""
    start = time.perf_counter()
    model, summary = fit_text_classifier(corpus.train, jieba_tokenizer(), cfg, lambda m: log(f"  {m}"))
    after_tokens = PipelineModel(model.stages[1:])  # the tokens are already there
    predicted = predict_labels(after_tokens, corpus.test, ["doc_id", LABEL]).persist(StorageLevel.MEMORY_AND_DISK)
    predicted.count()
    elapsed = time.perf_counter() - start
    report = evaluate(predicted)
    figures = {"acc": report["accuracy"], "macro_f1": report["macro_f1"], "weighted_f1": report["weighted_f1"]}
    check = predicted.select(LABEL, PREDICTED_LABEL).toPandas()
    assert (
        abs(scores(check[LABEL].to_numpy(), check[PREDICTED_LABEL].to_numpy())["macro_f1"] - figures["macro_f1"]) < 1e-9
    )
    return {**figures, "s": elapsed, "chosen": summary["chosen"], "features": summary["features"]}


def sklearn_lr(corpus: Corpus, cfg: dict[str, Any]) -> dict[str, Any]:
    """TfidfVectorizer + LogisticRegression on our tokens; C tuned on our validation rows."""
    section, validation = cfg["tfidf_lr"], cfg["validation"]
    tfidf = section["tfidf"]
    indexer = StringIndexer(inputCol=LABEL, outputCol=LABEL_INDEX, stringOrderType="alphabetAsc")
    indexed = indexer.fit(corpus.train).transform(corpus.train).select("doc_id", TOKENS, LABEL_INDEX)  # as ours
    held = stratified_split(indexed, LABEL_INDEX, validation["fraction"], validation["seed"], "validation split")[1]
    held_ids = set(held.select("doc_id").toPandas()["doc_id"])
    train, test = corpus.train_pd, corpus.test_pd

    def vectorizer() -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer=lambda tokens: tokens,
            min_df=tfidf["min_df"],
            max_df=tfidf["max_df"],
            sublinear_tf=tfidf["sublinear_tf"],
            smooth_idf=tfidf["smooth_idf"],
            norm="l2",
        )

    def fit(rows: pd.DataFrame, reg_param: float) -> tuple[TfidfVectorizer, LogisticRegression]:
        vec = vectorizer()
        x = vec.fit_transform(list(rows[TOKENS]))
        lr = LogisticRegression(C=1.0 / (reg_param * len(rows)), max_iter=section["max_iter"], tol=section["tol"])
        return vec, lr.fit(x, rows[LABEL].to_numpy())

    start = time.perf_counter()
    in_held = train["doc_id"].isin(held_ids).to_numpy()
    rest, val = train[~in_held], train[in_held]
    candidates = []
    for reg_param in section["reg_param"]:
        vec, lr = fit(rest, reg_param)
        predicted = lr.predict(vec.transform(list(val[TOKENS])))
        candidates.append(
            (scores(val[LABEL].to_numpy(), predicted)[validation["metric"].replace("accuracy", "acc")], reg_param)
        )
        log(f"  sklearn validation: C {1.0 / (reg_param * len(rest)):.4g}: {candidates[-1][0]:.4f}")
    best = max(candidates, key=lambda c: c[0])[1]  # first of equals, as ours
    vec, lr = fit(train, best)
    predicted = lr.predict(vec.transform(list(test[TOKENS])))
    elapsed = time.perf_counter() - start
    return {
        **scores(test[LABEL].to_numpy(), predicted),
        "s": elapsed,
        "chosen_reg_param": best,
        "C": 1.0 / (best * len(train)),
        "features": len(vec.vocabulary_),
    }


def class_indices(corpus: Corpus) -> tuple[list[str], np.ndarray]:
    """Label names in alphabetical order (``fit_text_classifier``'s indexer order) and the training rows' indices."""
    names = sorted(set(corpus.train_pd[LABEL]))
    return names, corpus.train_pd[LABEL].map({name: i for i, name in enumerate(names)}).to_numpy()


def fasttext_cfg(cfg: dict[str, Any], ft: dict[str, Any], loss: str) -> dict[str, Any]:
    """The job configuration with ``model: fasttext`` and the benchmark's fastText settings."""
    return {**cfg, "model": "fasttext", "fasttext": {**cfg["fasttext"], **ft, "loss": loss, "num_partitions": 2}}


def ours_ft(corpus: Corpus, cfg: dict[str, Any], ft: dict[str, Any], loss: str, warm: list[bool]) -> dict[str, Any]:
    """``fit_text_classifier`` with ``model: fasttext``; ``s``: the fit alone. The session's first call runs a
    one-epoch fit on 500 rows first (``warm``), which starts the Python workers later fits find running."""
    cfg = fasttext_cfg(cfg, ft, loss)
    if not warm:
        fit_text_classifier(
            corpus.train.limit(500),
            jieba_tokenizer(),
            {**cfg, "fasttext": {**cfg["fasttext"], "epoch": 1}},
            lambda m: None,
        )
        warm.append(True)
    start = time.perf_counter()
    model, summary = fit_text_classifier(corpus.train, jieba_tokenizer(), cfg, lambda m: log(f"  {m}"))
    elapsed = time.perf_counter() - start
    predicted = predict_labels(PipelineModel(model.stages[1:]), corpus.test, [LABEL]).toPandas()
    return {
        **scores(predicted[LABEL].to_numpy(), predicted[PREDICTED_LABEL].to_numpy()),
        "s": elapsed,
        "training": summary["training"],
    }


def official_ft(corpus: Corpus, cfg: dict[str, Any], ft: dict[str, Any], loss: str) -> dict[str, Any]:
    """The official library on a file of our tokens, the same settings and 2 threads; ``s``: its training alone."""
    import fasttext

    names, train_y = class_indices(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for tokens, label in zip(corpus.train_pd[TOKENS], train_y):
                f.write(f"__label__{label} {' '.join(tokens)}\n")
        start = time.perf_counter()
        model = fasttext.train_supervised(
            path,
            epoch=ft["epoch"],
            lr=ft["lr"],
            dim=ft["dim"],
            wordNgrams=ft["word_ngrams"],
            bucket=ft["bucket"],
            loss=loss,
            minCount=1,
            thread=2,
            verbose=0,
        )
        elapsed = time.perf_counter() - start
    labels, _ = model.predict([" ".join(tokens) for tokens in corpus.test_pd[TOKENS]])
    predicted = np.array([names[int(label[0].removeprefix("__label__"))] for label in labels])
    return {**scores(corpus.test_pd[LABEL].to_numpy(), predicted), "s": elapsed}


Method = Callable[[Corpus, dict[str, Any]], dict[str, Any]]
LR_METHODS: dict[str, Method] = {"ours_lr": ours_lr, "sklearn_lr": sklearn_lr}
PAIRS = {"lr": ("ours_lr", "sklearn_lr"), "ft": ("ours_ft", "official_ft"), "ft_hs": ("ours_ft_hs", "official_ft_hs")}


def fasttext_methods(ft: dict[str, Any], losses: list[str]) -> dict[str, Method]:
    """``ours_ft``/``official_ft`` per loss (``_hs`` suffixed for hierarchical softmax beside softmax)."""
    methods, warm = {}, []
    for loss in losses:
        suffix = "_hs" if loss == "hs" and len(losses) > 1 else ""
        methods[f"ours_ft{suffix}"] = partial(ours_ft, ft=ft, loss=loss, warm=warm)
        methods[f"official_ft{suffix}"] = partial(official_ft, ft=ft, loss=loss)
    return methods


def bench(corpus: Corpus, cfg: dict[str, Any], methods: dict[str, Method]) -> dict[str, Any]:
    results: dict[str, Any] = {
        f"{corpus.name}_tokenize_s": round(corpus.tokenize_s, 2),
        **{f"{corpus.name}_{k}": v for k, v in corpus.facts.items()},
    }
    rows = {}
    for method, run in methods.items():
        log(f"{corpus.name}: {method}")
        rows[method] = run(corpus, cfg)
        for key in ("acc", "macro_f1", "weighted_f1"):
            results[f"{corpus.name}_{method}_{key}"] = round(rows[method][key], 4)
        results[f"{corpus.name}_{method}_s"] = round(rows[method]["s"], 2)
        log(f"{corpus.name} {method}: " + ", ".join(f"{k} {v}" for k, v in rows[method].items()))
    for pair, (ours, anchor) in PAIRS.items():
        if ours not in rows:
            continue
        ours, anchor = rows[ours], rows[anchor]
        results[f"{corpus.name}_{pair}_time_ratio"] = round(ours["s"] / anchor["s"], 2)
        for key in ("acc", "macro_f1"):
            results[f"{corpus.name}_{pair}_{key}_diff"] = round(ours[key] - anchor[key], 4)
        log(
            f"{corpus.name} {pair}: ours/anchor time {results[f'{corpus.name}_{pair}_time_ratio']}x, accuracy "
            f"{ours['acc']:.4f} vs {anchor['acc']:.4f}, macro-F1 {ours['macro_f1']:.4f} vs {anchor['macro_f1']:.4f}"
        )
    return results


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=42, help="Fudan's stratified 80/20 split")
    parser.add_argument("--only", choices=["thucnews", "fudan"], default=None)
    parser.add_argument("--methods", default="lr,ft", help="lr (ours vs scikit-learn), ft (ours vs official fastText)")
    parser.add_argument("--epoch", type=int, default=10, help="fastText, both sides")
    parser.add_argument("--lr", type=float, default=0.5, help="fastText, both sides")
    parser.add_argument("--dim", type=int, default=100, help="fastText, both sides")
    parser.add_argument("--word-ngrams", type=int, default=2, help="fastText, both sides")
    parser.add_argument("--bucket", type=int, default=2_000_000, help="fastText, both sides")
    parser.add_argument("--loss", choices=["softmax", "hs", "both"], default="softmax", help="fastText, both sides")
    parser.add_argument("--epochs-per-sync", type=int, default=None, help="ours fastText (default: the job's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arguments(argv)
    os.environ["SPARK_MASTER"] = "local[2]"
    spark = get_spark("bench_text_classification", LOCAL_SPARK_CONF, {"spark.ui.showConsoleProgress": False})
    cfg = read_yaml(job_defaults("train_text_classifier"))
    ft = {
        "epoch": args.epoch,
        "lr": args.lr,
        "dim": args.dim,
        "word_ngrams": args.word_ngrams,
        "bucket": args.bucket,
        "epochs_per_sync": args.epochs_per_sync or cfg["fasttext"]["epochs_per_sync"],
    }
    wanted = args.methods.split(",")
    losses = ["softmax", "hs"] if args.loss == "both" else [args.loss]
    methods = {**(LR_METHODS if "lr" in wanted else {}), **(fasttext_methods(ft, losses) if "ft" in wanted else {})}
    results: dict[str, Any] = {"seed": args.seed, "reg_param": cfg["tfidf_lr"]["reg_param"]}
    if "ft" in wanted:
        results.update({**{f"ft_{k}": v for k, v in ft.items()}, "ft_loss": args.loss})
    corpora = [name for name in ("thucnews", "fudan") if args.only in (None, name)]
    with tempfile.TemporaryDirectory(prefix="fudan_") as workdir:
        for name in corpora:
            corpus = (
                thucnews(spark, args.data) if name == "thucnews" else fudan(spark, args.data, args.seed, Path(workdir))
            )
            results.update(bench(corpus, cfg, methods))
    if "ft" in wanted:
        results.update({key: results[f"{corpora[0]}_{key}"] for key in ("ours_ft_s", "official_ft_s", "ft_time_ratio")})
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
