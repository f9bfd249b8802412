"""PQ in Spark against ``faiss.IndexPQ`` on MNIST-784 (60,000 base vectors, 10,000 queries, exact top-100).

For each ``M x nbits`` setting both sides train on the same 60,000 base vectors; we report R@1/10/100
(share of queries whose true nearest neighbour is among the first k results, ground truth from the
data set), reconstruction MSE (mean squared L2 error per vector), encoding throughput (ours: Spark
``transform`` of the cached item table, median of 3 runs after a warm-up, vectors per second per core, and
also Parquet-in to Parquet-out; Faiss: ``pq.compute_codes`` on one thread, also the median of 3
after a warm-up) and the time to search all queries (ours: Spark, top-100, results written to
Parquet; Faiss: ``IndexPQ.search`` on one thread). The last line printed is one JSON object keyed ``M<m>x<nbits>``.

    python benchmarks/bench_pq.py [--m 8 16] [--nbits 8] [--data ../shared/data/ann_mnist784_euclidean]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ann_mnist784_euclidean"
KS = (1, 10, 100)


def load_mnist(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base vectors, query vectors (float32) and the exact nearest-neighbour ids (int32, top-100)."""

    def images(name: str) -> np.ndarray:
        raw = gzip.open(data / name).read()
        return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32)

    gt = np.frombuffer(gzip.open(data / "mnist784_test_vs_train_l2_top100.ivecs.gz").read(), np.int32)
    return (
        images("train-images-idx3-ubyte.gz"),
        images("t10k-images-idx3-ubyte.gz"),
        gt.reshape(-1, 101)[:, 1:],
    )


def recalls(found: np.ndarray, gt: np.ndarray, side: str) -> dict[str, float]:
    """``<side>_r<k>``: R@k of a ``(Q, >=100)`` matrix of found ids (-1 padded) against the exact
    nearest neighbours."""
    hit = found == gt[:, :1]
    return {f"{side}_r{k}": round(float(hit[:, :k].any(axis=1).mean()), 4) for k in KS}


def median_seconds(run: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``repeat`` runs after one warm-up run (Python worker start-up and imports excluded)."""
    run()
    times = []
    for _ in range(repeat):
        started = time.time()
        run()
        times.append(time.time() - started)
    return statistics.median(times)


def run_faiss(base: np.ndarray, queries: np.ndarray, gt: np.ndarray, m: int, nbits: int) -> dict[str, float]:
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexPQ(base.shape[1], m, nbits)
    started = time.time()
    index.train(base)
    train_s = time.time() - started
    encode_s = median_seconds(lambda: index.pq.compute_codes(base))
    codes = index.pq.compute_codes(base)
    index.add_sa_codes(codes)
    started = time.time()
    _, found = index.search(queries, 100)
    search_s = time.time() - started
    mse = float(((index.pq.decode(codes) - base) ** 2).sum(axis=1).mean())
    return {
        **recalls(found, gt, "faiss"),
        "faiss_mse": round(mse, 1),
        "faiss_train_s": round(train_s, 2),
        "faiss_encode_vps": round(len(base) / encode_s, 1),
        "faiss_search_s": round(search_s, 2),
    }


def run_ours(
    spark, items_path: str, queries_df, gt: np.ndarray, m: int, nbits: int, work: str, cores: int, init: str
) -> dict[str, float]:
    from pipelines.pq import PQEncoder, Queries, search
    from pipelines.pq.evaluation import reconstruction_mse

    items = spark.read.parquet(items_path)
    started = time.time()
    model = PQEncoder(m=m, nbits=nbits, sampleSize=65536, initMode=init).fit(items)  # all 60,000 base vectors
    train_s = time.time() - started
    cached = items.cache()
    n_items = cached.count()
    encode_s = median_seconds(
        lambda: model.transform(cached).select("item_id", "code").write.format("noop").mode("overwrite").save()
    )
    cached.unpersist()
    codes_path = f"{work}/codes_M{m}x{nbits}"
    started = time.time()
    model.transform(items).select("item_id", "code").write.mode("overwrite").parquet(codes_path)
    encode_write_s = time.time() - started
    queries = Queries.collect(queries_df)
    result_path = f"{work}/neighbours_M{m}x{nbits}"
    started = time.time()
    search(model, spark.read.parquet(codes_path), queries, 100, partitions=2 * cores).write.mode(
        "overwrite"
    ).parquet(result_path)
    search_s = time.time() - started
    res = spark.read.parquet(result_path).toPandas()
    found = np.full((len(queries.ids), 100), -1, np.int64)
    found[res["query_id"].to_numpy(), res["rank"].to_numpy() - 1] = res["item_id"].to_numpy()
    coded = spark.read.parquet(codes_path).join(items, "item_id")
    mse = reconstruction_mse(model, coded)
    return {
        **recalls(found, gt, "ours"),
        "ours_mse": round(mse, 1),
        "ours_train_s": round(train_s, 2),
        "ours_encode_s": round(encode_s, 2),
        "ours_encode_vps_per_core": round(n_items / encode_s / cores, 1),
        "ours_parquet_encode_write_vps_per_core": round(n_items / encode_write_s / cores, 1),
        "ours_search_s": round(search_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--m", type=int, nargs="+", default=[8, 16], help="sub-spaces (default: 8 16)")
    parser.add_argument("--nbits", type=int, nargs="+", default=[8], help="bits per code (default: 8)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--init",
        default="random",
        choices=["random", "k-means++"],
        help="our k-means initialisation (default: %(default)s)",
    )
    args = parser.parse_args()
    if not (args.data / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(f"MNIST data not found in {args.data}")
    base, queries, gt = load_mnist(args.data)
    from pipelines.session import get_spark

    spark = get_spark(
        "bench_pq",
        ROOT / "conf" / "spark" / "local.yaml",
        {"spark.master": args.master, "spark.ui.showConsoleProgress": False},
    )
    cores = spark.sparkContext.defaultParallelism if args.master == "local[*]" else int(args.master[6:-1])
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_pq_") as work:
        items_path = f"{work}/items"
        spark.createDataFrame(
            pd.DataFrame({"item_id": np.arange(len(base)), "vector": list(base)})
        ).repartition(2 * cores).write.parquet(items_path)
        queries_df = spark.createDataFrame(
            pd.DataFrame({"query_id": np.arange(len(queries)), "vector": list(queries)})
        ).cache()
        for nbits in args.nbits:
            for m in args.m:
                key = f"M{m}x{nbits}"
                print(f"== {key}: faiss", file=sys.stderr, flush=True)
                row = run_faiss(base, queries, gt, m, nbits)
                print(f"== {key}: ours (Spark {args.master})", file=sys.stderr, flush=True)
                row.update(run_ours(spark, items_path, queries_df, gt, m, nbits, work, cores, args.init))
                row["ratio_encode"] = round(row["ours_encode_vps_per_core"] / row["faiss_encode_vps"], 3)
                row["ratio_mse"] = round(row["ours_mse"] / row["faiss_mse"], 4)
                results[key] = row
                print(f"{key}: " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    spark.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
