"""Subword (fastText) vectors: our ``sgns`` with character n-grams next to gensim's ``FastText`` (local[2]).

Data and evaluation as ``bench_word2vec.py``: the Wikipedia slice tokenised once by Spark to Parquet, analogy
accuracy over the 30,000 most frequent words, WordSim353 and SimLex-999 Spearman over pairs of vocabulary words,
one evaluator (ours) for both runs. Both train skip-gram with negative sampling at the same settings (100
dimensions, window 5, min_count 5, sample 1e-3, negative 5, n-grams of 3..6 characters into ``--buckets``
buckets); ours with 2 partitions. Out of the vocabulary: the query words of the three evaluation sets that
neither model has in its vocabulary, the share of them that get a vector (a non-zero one, from their n-grams),
WordSim353 over every pair with those vectors (``*_wordsim_all``), and the nearest neighbours of a few.

Measured (first 4.0M tokens, 3 epochs, 200K buckets, load average 10-20 on 2 cores): ours analogy 46.99%, WordSim
0.459, 704.6 s; gensim 42.73%, 0.383, 554.3 s; gensim with ``--gensim-alpha 0.05`` (our ``rows`` combine trains
each partition at P x alpha, and 0.05 is fastText's default) 45.58%, 0.395. All 194 evaluation words outside both
vocabularies answered by both (WordSim over every pair: ours 0.447, gensim 0.370).

The last line printed is one JSON object. Usage:
``python benchmarks/bench_subwords.py [--data ../shared/data] [--epochs 5] [--max-tokens N] [--buckets 200000]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_word2vec import COMMON, corpus_arguments, tokenise  # noqa: E402
from pipelines.session import LOCAL_SPARK_CONF, get_spark  # noqa: E402
from pipelines.word2vec.evaluation import EVAL_FILES, evaluate_words, pair_spearman, read_analogies, read_pairs  # noqa: E402
from pipelines.word2vec.model import Word2Vec  # noqa: E402

MIN_N, MAX_N = 3, 6
EXAMPLES = ("anarchistically", "philosophizing", "reorganisations", "unconstitutionally", "microeconomical")


def query_words(eval_dir: Path) -> list[str]:
    """Every word the evaluation sets ask about, in file order, once."""
    analogies = read_analogies(eval_dir / EVAL_FILES["analogy"])
    words = list(analogies[["a", "b", "c", "expected"]].to_numpy().ravel())
    for name in ("wordsim353", "simlex999"):
        words += list(read_pairs(eval_dir / EVAL_FILES[name])[["w1", "w2"]].to_numpy().ravel())
    return list(dict.fromkeys(words))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = corpus_arguments(__doc__)
    parser.add_argument("--buckets", type=int, default=200_000, help="n-gram buckets of both models")
    parser.add_argument("--partitions", type=int, default=2, help="our sgns partitions")
    parser.add_argument(
        "--gensim-alpha",
        type=float,
        default=0.025,
        help="gensim's learning rate (ours: 0.025, each of P partitions training at P x that)",
    )
    parser.add_argument("--runs", default="gensim_fasttext,subword", help="comma-separated subset of those two")
    args = parser.parse_args(argv)
    data = Path(args.data)
    slice_path = data / "enwiki_2015_wikiextractor" / "enwiki_wikiextractor_AA_00-99.txt.gz"
    eval_dir = data / "word_eval_gensim"
    if not slice_path.is_file() or not eval_dir.is_dir():
        print(f"skipped: {slice_path} or {eval_dir} not found")
        print(json.dumps({"skipped": True}))
        return {"skipped": True}
    spark = get_spark("bench_subwords", LOCAL_SPARK_CONF, {"spark.ui.showConsoleProgress": False})
    work = tempfile.mkdtemp(prefix="bench_subwords_")
    n_tokens = tokenise(spark, slice_path, args.max_tokens, f"{work}/tokens")
    corpus = spark.read.parquet(f"{work}/tokens").select("tokens").cache()
    corpus.count()
    print(f"{n_tokens:,} tokens, {args.epochs} epochs, {args.buckets:,} buckets", flush=True)

    def gensim_fasttext() -> tuple[list[str], np.ndarray, Callable[[str], np.ndarray]]:
        from gensim.models import FastText

        sentences = pq.read_table(f"{work}/tokens").sort_by("line").column("tokens").to_pylist()
        model = FastText(
            sentences,
            vector_size=100,
            window=5,
            min_count=5,
            sample=1e-3,
            sg=1,
            hs=0,
            negative=5,
            min_n=MIN_N,
            max_n=MAX_N,
            bucket=args.buckets,
            workers=2,
            epochs=args.epochs,
            seed=1,
            alpha=args.gensim_alpha,
        )
        return list(model.wv.index_to_key), model.wv.vectors, model.wv.get_vector

    def subword() -> tuple[list[str], np.ndarray, Callable[[str], np.ndarray]]:
        model = Word2Vec(
            inputCol="tokens",
            trainer="sgns",
            numPartitions=args.partitions,
            epochs=args.epochs,
            minN=MIN_N,
            maxN=MAX_N,
            buckets=args.buckets,
            **COMMON,
        ).fit(corpus)
        return model.words, model.vectors, model.wordVector

    asked = query_words(eval_dir)
    wordsim = read_pairs(eval_dir / EVAL_FILES["wordsim353"])
    result: dict[str, Any] = {
        "tokens": int(n_tokens),
        "epochs": args.epochs,
        "buckets": args.buckets,
        "gensim_alpha": args.gensim_alpha,
    }
    trained = {}
    runs = {"gensim_fasttext": gensim_fasttext, "subword": subword}
    for name, run in ((name, runs[name]) for name in args.runs.split(",")):
        t0 = time.time()
        words, vectors, vector_of = run()
        seconds = time.time() - t0
        quality = evaluate_words(spark, words, vectors, eval_dir)
        trained[name] = (words, vectors, vector_of)
        result.update(
            {
                f"{name}_s": round(seconds, 1),
                f"{name}_analogy": round(quality["analogy"]["accuracy"], 4),
                f"{name}_wordsim": round(quality["wordsim353"]["spearman"], 4),
                f"{name}_simlex": round(quality["simlex999"]["spearman"], 4),
                f"{name}_vocabulary": len(words),
            }
        )
        print(
            f"{name:16} {seconds:7.1f}s analogy {quality['analogy']['accuracy']:.2%} WordSim "
            f"{quality['wordsim353']['spearman']:.3f} SimLex {quality['simlex999']['spearman']:.3f} "
            f"vocabulary {len(words):,}",
            flush=True,
        )
    spark.stop()
    known = set.union(*(set(words) for words, _, _ in trained.values()))
    oov = [w for w in asked if w not in known]
    examples = [w for w in EXAMPLES if w not in known] + oov[:3]
    result["oov_query_words"] = len(oov)
    for name, (names, table, vector_of) in trained.items():
        oov_vectors = np.array([vector_of(w) for w in oov]).reshape(len(oov), -1)
        result[f"{name}_oov_answered"] = round(float(np.mean(np.any(oov_vectors != 0, axis=1))), 4) if oov else None
        everything = pair_spearman(list(names) + oov, np.vstack([table, oov_vectors]), wordsim)
        result[f"{name}_wordsim_all"] = round(everything["spearman"], 4)
        unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
        for word in examples:
            query = vector_of(word)
            nearest = np.argsort(-(unit @ (query / max(float(np.linalg.norm(query)), 1e-12))))[:5]
            print(f"{name} out of vocabulary {word!r}: {', '.join(names[i] for i in nearest)}")
    if len(trained) < 2:
        print(json.dumps(result))
        return result
    result["analogy_difference_points"] = round(
        (result["subword_analogy"] - result["gensim_fasttext_analogy"]) * 100, 2
    )
    print(
        f"subword vs gensim FastText: time {result['subword_s'] / result['gensim_fasttext_s']:.2f}x, analogy "
        f"{result['analogy_difference_points']:+.2f} points, WordSim "
        f"{result['subword_wordsim'] - result['gensim_fasttext_wordsim']:+.3f}; {len(oov)} query words out of "
        f"both vocabularies, answered {result['subword_oov_answered']} / {result['gensim_fasttext_oov_answered']}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
