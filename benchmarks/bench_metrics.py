"""Exact ``roc_auc`` against Spark's ``BinaryClassificationEvaluator`` and scikit-learn; GAUC on 1,000,000 groups.

One ``local[2]`` session generates ``--rows`` rows in Spark (continuous scores, 30% positives,
``--groups`` users of equal size), caches and counts them, then times, on the same cached rows:
our ``roc_auc`` (median of ``--repeat`` runs after one warm-up run), ``grouped_auc`` (likewise),
``BinaryClassificationEvaluator`` with ``numBins=0`` (exact) and with the default 1000 bins (once
each), and ``sklearn.metrics.roc_auc_score`` on the two columns collected with Arrow (the collect
timed apart). Targets: ours at least 10x faster than the exact evaluator and within 1e-9 of
scikit-learn; GAUC in at most 2x our AUC time. Progress goes to stderr; the last line printed is
one JSON object.

    python benchmarks/bench_metrics.py [--rows 5000000] [--groups 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def progress(message: str) -> None:
    print(f"[bench_metrics {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(label: str, run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    progress(f"{label}: {seconds:.2f} s")
    return seconds, result


def repeated(label: str, run: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """First (warm-up) time, the times of ``repeat`` further runs, and the last result."""
    first, result = timed(f"{label} (warm-up)", run)
    times = []
    for i in range(repeat):
        seconds, result = timed(f"{label} run {i + 1}/{repeat}", run)
        times.append(seconds)
    return first, times, result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--groups", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of ours after a warm-up (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)

    os.environ["SPARK_MASTER"] = args.master
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F
    from sklearn.metrics import roc_auc_score

    from pipelines.metrics import grouped_auc, roc_auc
    from pipelines.session import get_spark

    progress(f"load average before start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    spark = get_spark("bench_metrics", ROOT / "conf" / "spark" / "local.yaml", {"spark.ui.showConsoleProgress": False})
    progress(f"Spark {spark.version}, master {spark.sparkContext.master}")

    label = (F.rand(args.seed) < 0.3).cast("int")
    data = (
        spark.range(args.rows)
        .select((F.col("id") % args.groups).alias("user"), label.alias("label"), F.randn(args.seed + 1).alias("z"))
        .select("user", "label", (1 / (1 + F.exp(-(F.col("z") + 1.2 * F.col("label") - 0.8)))).alias("score"))
        .cache()
    )
    timed(f"generate and cache {args.rows:,} rows", data.count)

    ours_first, ours_times, ours = repeated("ours roc_auc", lambda: roc_auc(data, "score", "label"), args.repeat)
    gauc_first, gauc_times, gauc = repeated(
        f"ours grouped_auc ({args.groups:,} groups)", lambda: grouped_auc(data, "user", "score", "label"), args.repeat
    )
    ours_s, gauc_s = statistics.median(ours_times), statistics.median(gauc_times)

    def spark_auc(bins: int) -> float:
        evaluator = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label", numBins=bins)
        return evaluator.evaluate(data)

    spark_exact_s, spark_exact = timed("BinaryClassificationEvaluator numBins=0", lambda: spark_auc(0))
    spark_default_s, spark_default = timed(
        "BinaryClassificationEvaluator numBins=1000 (default)", lambda: spark_auc(1000)
    )
    collect_s, local = timed("collect score and label with Arrow", data.select("score", "label").toPandas)
    sklearn_s, sklearn = timed("sklearn roc_auc_score", lambda: roc_auc_score(local["label"], local["score"]))
    spark.stop()

    result = {
        "rows": args.rows,
        "ours_s": round(ours_s, 3),
        "ours_min_s": round(min(ours_times), 3),
        "ours_first_s": round(ours_first, 3),
        "spark_exact_s": round(spark_exact_s, 3),
        "spark_default_s": round(spark_default_s, 3),
        "sklearn_s": round(sklearn_s, 3),
        "collect_s": round(collect_s, 3),
        "speedup_vs_spark_exact": round(spark_exact_s / ours_s, 2),
        "speedup_vs_spark_default": round(spark_default_s / ours_s, 2),
        "speedup_vs_sklearn_with_collect": round((collect_s + sklearn_s) / ours_s, 2),
        "auc": ours,
        "abs_diff_vs_sklearn": abs(ours - sklearn),
        "spark_exact_abs_diff_vs_sklearn": abs(spark_exact - sklearn),
        "spark_default_abs_diff_vs_sklearn": abs(spark_default - sklearn),
        "gauc": gauc.gauc,
        "gauc_groups": gauc.groups + gauc.groups_skipped,
        "gauc_groups_used": gauc.groups,
        "gauc_s": round(gauc_s, 3),
        "gauc_min_s": round(min(gauc_times), 3),
        "gauc_first_s": round(gauc_first, 3),
        "gauc_over_auc": round(gauc_s / ours_s, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    result["targets_met"] = {
        "speedup_10x": result["speedup_vs_spark_exact"] >= 10,
        "sklearn_1e-9": result["abs_diff_vs_sklearn"] <= 1e-9,
        "gauc_2x": result["gauc_over_auc"] <= 2,
    }
    progress(
        f"ours {ours_s:.2f} s vs exact evaluator {spark_exact_s:.2f} s ({result['speedup_vs_spark_exact']}x), "
        f"default evaluator {spark_default_s:.2f} s ({result['speedup_vs_spark_default']}x); "
        f"|ours - sklearn| = {result['abs_diff_vs_sklearn']:.2e}; GAUC {gauc_s:.2f} s "
        f"({result['gauc_over_auc']}x our AUC)"
    )
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
