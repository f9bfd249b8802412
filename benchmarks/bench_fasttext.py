"""Supervised fastText benchmark (local[2]): our ``FastTextClassifier`` against the official ``fasttext`` library.

THUCNews titles (``zh_thucnews_titles``): train on ``dev``, test on ``test`` (10 classes, 10,000 titles each),
both tokenised once by our ``TextTokenizer`` (jieba). The official library trains on a file written from the same
token lists (``__label__<id> token token ...`` per title) with the same epochs, dimension, word n-grams, buckets,
learning rate, loss and ``thread=2`` (our 2 partitions on local[2]); it predicts the test titles from the same
tokens. Accuracy and macro-F1 by scikit-learn; wall times of the training alone (ours from the cached token
column to the fitted model, after a small warm-up fit that starts the Python workers, as any later fit of a
session finds them; the official one from its file to its model), and their ratios. ``--loss both`` also
runs hierarchical softmax (keys with ``_hs``).

Last line: one JSON object. Usage: ``python benchmarks/bench_fasttext.py [--data ../shared/data] [--epoch 10]
[--lr 0.5] [--dim 100] [--word-ngrams 2] [--epochs-per-sync 1] [--loss softmax|hs|both]``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.frames import from_pandas  # noqa: E402
from pipelines.session import LOCAL_SPARK_CONF, get_spark  # noqa: E402
from pipelines.text.fasttext import FastTextClassifier  # noqa: E402
from pipelines.text.tokenizer import TextTokenizer  # noqa: E402


def log(message: str) -> None:
    print(message, flush=True)


def read_titles(path: Path) -> pd.DataFrame:
    """``title<TAB>label`` lines as (title, label double)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        pairs = [line.rstrip("\n").rsplit("\t", 1) for line in f if line.strip()]
    return pd.DataFrame({"title": [p[0] for p in pairs], "label": [float(p[1]) for p in pairs]})


def tokenised(spark: SparkSession, titles: pd.DataFrame) -> DataFrame:
    """Our jieba tokens of each title, computed once and cached."""
    docs = from_pandas(spark, titles, "title STRING, label DOUBLE").repartition(2)
    tokens = TextTokenizer(inputCol="title", outputCol="tokens", segmenter="jieba").transform(docs)
    tokens = tokens.select("tokens", "label").cache()
    tokens.count()
    return tokens


def scores(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    return float(accuracy_score(truth, predicted)), float(f1_score(truth, predicted, average="macro"))


def official(train: pd.DataFrame, test: pd.DataFrame, args: argparse.Namespace, loss: str) -> tuple[np.ndarray,
                                                                                                     float]:
    """The official library on a file of the same tokens: test predictions and training seconds."""
    import fasttext

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for tokens, label in zip(train["tokens"], train["label"]):
                f.write(f"__label__{int(label)} {' '.join(tokens)}\n")
        t0 = time.time()
        model = fasttext.train_supervised(path, epoch=args.epoch, lr=args.lr, dim=args.dim,
                                          wordNgrams=args.word_ngrams, bucket=args.bucket, loss=loss,
                                          minCount=1, thread=2, verbose=0)
        seconds = time.time() - t0
    labels, _ = model.predict([" ".join(tokens) for tokens in test["tokens"]])
    return np.array([float(label[0].removeprefix("__label__")) for label in labels]), seconds


def ours(train: DataFrame, test: DataFrame, args: argparse.Namespace, loss: str) -> tuple[pd.DataFrame, float,
                                                                                          dict]:
    """Our classifier: (label, prediction) of the test titles, training seconds, training summary."""
    t0 = time.time()
    model = FastTextClassifier(epoch=args.epoch, lr=args.lr, dim=args.dim, wordNgrams=args.word_ngrams,
                               bucket=args.bucket, loss=loss, numPartitions=2,
                               epochsPerSync=args.epochs_per_sync).fit(train)
    seconds = time.time() - t0
    predicted = model.transform(test).select("label", "prediction").toPandas()
    return predicted, seconds, model.summary


def run(spark: SparkSession, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    folder = data / "zh_thucnews_titles"
    train = tokenised(spark, read_titles(folder / "dev.txt.gz"))
    test = tokenised(spark, read_titles(folder / "test.txt.gz"))
    train_pd, test_pd = train.toPandas(), test.toPandas()
    log(f"THUCNews titles: {len(train_pd)} train, {len(test_pd)} test, "
        f"{train.select(F.explode('tokens')).count()} train tokens")
    # a first small fit starts the Python workers and warms the JVM, which every later fit in a session skips
    FastTextClassifier(epoch=1, dim=args.dim, wordNgrams=args.word_ngrams, numPartitions=2).fit(train.limit(500))
    results: dict[str, Any] = {}
    for loss in (["softmax", "hs"] if args.loss == "both" else [args.loss]):
        suffix = "" if loss == "softmax" or args.loss != "both" else "_hs"
        predicted, ours_s, summary = ours(train, test, args, loss)
        acc, f1 = scores(predicted["label"].to_numpy(), predicted["prediction"].to_numpy())
        official_pred, official_s = official(train_pd, test_pd, args, loss)
        off_acc, off_f1 = scores(test_pd["label"].to_numpy(), official_pred)
        log(f"{loss}: ours acc {acc:.4f} macro-F1 {f1:.4f} in {ours_s:.1f}s ({summary}); official acc {off_acc:.4f} "
            f"macro-F1 {off_f1:.4f} in {official_s:.2f}s; time ratio {ours_s / official_s:.1f}x, "
            f"acc {acc - off_acc:+.4f}, macro-F1 {f1 - off_f1:+.4f}")
        results.update({f"thucnews_ours_ft{suffix}_acc": round(acc, 4),
                        f"thucnews_official_ft{suffix}_acc": round(off_acc, 4),
                        f"thucnews_ours_ft{suffix}_macro_f1": round(f1, 4),
                        f"thucnews_official_ft{suffix}_macro_f1": round(off_f1, 4),
                        f"ours_ft{suffix}_s": round(ours_s, 2), f"official_ft{suffix}_s": round(official_s, 2),
                        f"ft{suffix}_time_ratio": round(ours_s / official_s, 2)})
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--epoch", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--word-ngrams", type=int, default=2)
    parser.add_argument("--bucket", type=int, default=2_000_000)
    parser.add_argument("--epochs-per-sync", type=int, default=1, help="ours: epochs between synchronisations")
    parser.add_argument("--loss", choices=["softmax", "hs", "both"], default="softmax")
    args = parser.parse_args(argv)
    os.environ["SPARK_MASTER"] = "local[2]"
    spark = get_spark("bench_fasttext", LOCAL_SPARK_CONF, {"spark.ui.showConsoleProgress": False})
    results = {"epoch": args.epoch, "lr": args.lr, "dim": args.dim, "word_ngrams": args.word_ngrams, "loss": args.loss,
               "epochs_per_sync": args.epochs_per_sync, **run(spark, args.data, args)}
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
