"""Word2Vec benchmark (local[2]): our trainers next to gensim and Spark MLlib on the same token lists.

Data: the Wikipedia slice ``enwiki_2015_wikiextractor`` (lower-cased ``[a-z]+('[a-z]+)?`` tokens per
line, ``<doc>`` markup and lines under 3 tokens dropped), tokenised once by Spark and written to Parquet;
every trainer reads those same token lists. Runs: gensim skip-gram NS (workers=2), our ``sgns`` skip-gram
with 2 and 8 partitions, CBOW with 2 partitions, ``ppmi``, MLlib (numPartitions=2, maxIter=1), and
``sgns_short``: our skip-gram with 2 partitions set for a short budget, to set against MLlib at no more wall
time: ``--short-epochs`` 2, ``--short-sample`` 1e-4 and ``--short-negative`` 3 (quiet machine, MLlib 58.9 s 22.55%:
this 51.6 s 24.18%; with sample 1e-3 and negative 5, 2 epochs took 65.5-76.2 s for 27.46% and 1 epoch 42.5 s
for 15.56%).
Seconds are training wall time (vocabulary included, tokenising excluded). Analogy = questions-words
accuracy restricted to the 30,000 most frequent words; WordSim = Spearman on WordSim353; one evaluator
(ours) for every run.

The last line printed is one JSON object. Usage:
``python benchmarks/bench_word2vec.py [--data ../shared/data] [--epochs 5] [--max-tokens N] [--runs a,b]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.session import LOCAL_SPARK_CONF, get_spark  # noqa: E402
from pipelines.word2vec.evaluation import evaluate_words  # noqa: E402
from pipelines.word2vec.model import Word2Vec  # noqa: E402

PATTERN = r"[a-z]+('[a-z]+)?"
RUNS = ("gensim", "sgns_p2", "sgns_p8", "cbow_p2", "ppmi", "mllib", "sgns_short")
COMMON = dict(vectorSize=100, window=5, minCount=5, sample=1e-3, negative=5, seed=1)


def tokenise(spark: SparkSession, path: Path, max_tokens: int, out: str) -> int:
    """Token lists of the slice, in file order, cut after ``max_tokens`` tokens (0: all), to Parquet."""
    markup = F.col("value").startswith("<doc ") | F.col("value").startswith("</doc>")
    lines = spark.read.text(str(path)).filter(~markup)
    tokens = lines.select(
        F.monotonically_increasing_id().alias("line"),
        F.regexp_extract_all(F.lower("value"), F.lit(PATTERN), 0).alias("tokens"),
    )
    tokens = tokens.filter(F.size("tokens") >= 3)
    if max_tokens > 0:
        running = F.sum(F.size("tokens")).over(Window.orderBy("line").rowsBetween(Window.unboundedPreceding, 0))
        tokens = tokens.withColumn("seen", running).filter(F.col("seen") - F.size("tokens") < max_tokens).drop("seen")
    tokens.repartition(8).write.mode("overwrite").parquet(out)
    return spark.read.parquet(out).agg(F.sum(F.size("tokens"))).first()[0]


def corpus_arguments(description: str) -> argparse.ArgumentParser:
    """A parser with the options every Word2Vec benchmark takes: ``--data``, ``--epochs``, ``--max-tokens``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=0, help="use the first N tokens only (0: all)")
    return parser


def run_gensim(tokens_path: str, epochs: int) -> tuple[list[str], np.ndarray]:
    from gensim.models import Word2Vec as GensimWord2Vec

    table = pq.read_table(tokens_path).sort_by("line")
    sentences = table.column("tokens").to_pylist()
    model = GensimWord2Vec(
        sentences,
        vector_size=100,
        window=5,
        min_count=5,
        sample=1e-3,
        sg=1,
        hs=0,
        negative=5,
        workers=2,
        epochs=epochs,
        seed=1,
    )
    return list(model.wv.index_to_key), model.wv.vectors


def run_ours(corpus: DataFrame, epochs: int, **params: Any) -> tuple[list[str], np.ndarray]:
    model = Word2Vec(inputCol="tokens", epochs=epochs, **{**COMMON, **params}).fit(corpus)
    return model.words, model.vectors


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = corpus_arguments(__doc__)
    parser.add_argument("--short-epochs", type=int, default=2, help="epochs of the sgns_short run")
    parser.add_argument("--short-sample", type=float, default=1e-4, help="subsampling threshold of the sgns_short run")
    parser.add_argument("--short-negative", type=int, default=3, help="negative samples of the sgns_short run")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {RUNS}")
    parser.add_argument("--syncs", type=int, default=0, help="sgns synchronisations per epoch (0: auto)")
    parser.add_argument("--combine", default="rows", help="sgns combine rule: rows | sum | average")
    args = parser.parse_args(argv)
    data = Path(args.data)
    spark = get_spark("bench_word2vec", LOCAL_SPARK_CONF, {"spark.ui.showConsoleProgress": False})
    work = tempfile.mkdtemp(prefix="bench_word2vec_")
    started = time.time()
    n_tokens = tokenise(
        spark,
        data / "enwiki_2015_wikiextractor" / "enwiki_wikiextractor_AA_00-99.txt.gz",
        args.max_tokens,
        f"{work}/tokens",
    )
    print(f"tokenised {n_tokens:,} tokens in {time.time() - started:.1f}s", flush=True)
    corpus = spark.read.parquet(f"{work}/tokens").select("tokens").cache()
    corpus.count()
    sgns = dict(trainer="sgns", syncsPerEpoch=args.syncs, combine=args.combine)
    runs: dict[str, Callable[[], tuple[list[str], np.ndarray]]] = {
        "gensim": lambda: run_gensim(f"{work}/tokens", args.epochs),
        "sgns_p2": lambda: run_ours(corpus, args.epochs, numPartitions=2, **sgns),
        "sgns_p8": lambda: run_ours(corpus, args.epochs, numPartitions=8, **sgns),
        "cbow_p2": lambda: run_ours(corpus, args.epochs, numPartitions=2, architecture="cbow", alpha=0.05, **sgns),
        "ppmi": lambda: run_ours(corpus, args.epochs, trainer="ppmi"),
        "mllib": lambda: run_ours(corpus, 1, trainer="mllib", numPartitions=2),
        "sgns_short": lambda: run_ours(
            corpus, args.short_epochs, numPartitions=2, sample=args.short_sample, negative=args.short_negative, **sgns
        ),
    }
    result: dict[str, Any] = {"tokens": int(n_tokens), "epochs": args.epochs}
    print(f"{'run':10} {'seconds':>8} {'analogy':>8} {'wordsim':>8} {'simlex':>8} {'vocab':>7}", flush=True)
    for name in args.runs.split(","):
        t0 = time.time()
        words, vectors = runs[name]()
        seconds = time.time() - t0
        quality = evaluate_words(spark, words, vectors, data / "word_eval_gensim")
        result.update(
            {
                f"{name}_s": round(seconds, 1),
                f"{name}_analogy": round(quality["analogy"]["accuracy"], 4),
                f"{name}_wordsim": round(quality["wordsim353"]["spearman"], 4),
                f"{name}_simlex": round(quality["simlex999"]["spearman"], 4),
            }
        )
        print(
            f"{name:10} {seconds:8.1f} {quality['analogy']['accuracy']:8.2%} "
            f"{quality['wordsim353']['spearman']:8.3f} {quality['simlex999']['spearman']:8.3f} {len(words):7,}",
            flush=True,
        )
    spark.stop()
    for line in comparisons(result):
        print(line)
    print(json.dumps(result))
    return result


def comparisons(result: dict[str, Any]) -> list[str]:
    """The acceptance comparisons, as ratios and differences (added to ``result`` as well)."""
    lines = []
    if "gensim_s" in result:
        for run in ("sgns_p2", "sgns_p8", "cbow_p2"):
            if f"{run}_s" in result:
                ratio = result[f"{run}_s"] / result["gensim_s"]
                d_analogy = result[f"{run}_analogy"] - result["gensim_analogy"]
                d_wordsim = result[f"{run}_wordsim"] - result["gensim_wordsim"]
                result[f"{run}_time_ratio"] = round(ratio, 3)
                lines.append(
                    f"{run} vs gensim: time {ratio:.2f}x, analogy {d_analogy * 100:+.2f} points, "
                    f"WordSim {d_wordsim:+.3f}"
                )
    if "mllib_s" in result and "sgns_short_s" in result:
        lines.append(
            f"sgns_short vs mllib: time {result['sgns_short_s'] / result['mllib_s']:.2f}x, analogy "
            f"{result['sgns_short_analogy']:.2%} vs {result['mllib_analogy']:.2%}"
        )
    return lines


if __name__ == "__main__":
    main()
