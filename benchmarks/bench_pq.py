"""PQ in Spark against ``faiss.IndexPQ`` on MNIST-784 (60,000 base vectors, 10,000 queries, exact top-100).

For each ``M x nbits`` setting both sides train on the same 60,000 base vectors; we report R@1/10/100
(share of queries whose true nearest neighbour is among the first k results, ground truth from the
data set), reconstruction MSE (mean squared L2 error per vector), encoding throughput and the time to
search all queries (ours: Spark, top-100, results written to Parquet; Faiss: ``IndexPQ.search`` on one
thread). The last line printed is one JSON object keyed ``M<m>x<nbits>`` and ``IVF<nlist>,M<m>x<nbits>``.

IVF-PQ rows (``--nlist``, default 256; ``--ivfpq-only`` runs them alone): residual IVF-PQ on both sides, Faiss's
``IndexIVFPQ`` (``IndexFlatL2`` coarse quantiser, ``by_residual``) trained on the same 60,000 base vectors with
the same M and nbits, against our ``PQEncoder(nlist=...)`` and ``search(nprobe=...)``; for each ``--nprobe``
(default 1 8 32) R@1/10/100 of both (``ours_np<n>_r10``, ``faiss_np<n>_r10``), their difference
(``diff_np<n>_r10``, ours minus Faiss; the target is within 0.01) and the search time per query of all
10,000 queries (ours: the Spark search written to Parquet; Faiss: ``search`` on one thread) with the ratio
ours / Faiss (``ratio_search_per_query_np<n>``).

Encoding: ours is the Spark ``transform`` of the cached item table (what ``build_pq`` encodes), median
of 5 runs after 2 warm-up runs that pay the Python workers' start-up and the JVM's first compilations,
as vectors per second per core (``ours_encode_vps_per_core``); Faiss is ``pq.compute_codes`` on one
thread, median of 5 after 2 warm-ups. Throughput is measured on the base vectors repeated
``--encode-copies`` times (default 5: 300,000 vectors) on both sides, because each Spark job pays a fixed
cost that 60,000 vectors do not amortise (scheduling, task launch, PySpark's per-task set-up; at M=8, 60,000
vectors took 0.64 s and 300,000 took 2.11 s, so about 0.28 s of the first is fixed): on a quiet machine 0.45x
Faiss on the table once and 0.68x on it five times. The once figures are printed too
(``_1x`` keys). The item table holds ``array<float>`` vectors (what the
project's ingest and Word2Vec write), cached in one partition per core, so the encode is one task per
core: PySpark spends about 0.1 CPU-second per task whatever its size (at M=8, 4 tasks took 0.3
CPU-seconds more than 2, of about 1.3). Also printed: the same table with ``binary`` vectors (packed float32, which
Spark hands to Python as one buffer instead of element by element; ``_binary`` keys), Parquet-in to
Parquet-out, and CPU seconds (the Spark JVM and its Python workers; Faiss's process) so that a
machine shared with other work can be read too (``_cpu_s`` keys).

    python benchmarks/bench_pq.py [--m 8 16] [--nbits 8] [--data ../shared/data/ann_mnist784_euclidean]
        [--nlist 256] [--nprobe 1 8 32] [--ivfpq-only]
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


def process_cpu_s(root: int | None = None) -> float:
    """CPU seconds (user + system) used so far by process ``root`` (default: this one) and its live
    descendants, from ``/proc``; NaN where there is no ``/proc``."""
    root = root or os.getpid()
    try:
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return float("nan")
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    ticks, stack = 0, [root]
    while stack:
        pid = stack.pop()
        ticks += stats.get(pid, (0, 0))[1]
        stack.extend(children.get(pid, []))
    return ticks / os.sysconf("SC_CLK_TCK")


def median_seconds(
    run: Callable[[], object], repeat: int = 5, cpu_root: int | None = None, warm_up: int = 2
) -> tuple[float, float]:
    """Median wall time and median CPU seconds (of ``cpu_root`` and its descendants) of ``repeat`` runs
    after ``warm_up`` runs (Python worker start-up, imports and the JVM's first compilations excluded)."""
    for _ in range(warm_up):
        run()
    times, cpu = [], []
    for _ in range(repeat):
        cpu_before, started = process_cpu_s(cpu_root), time.time()
        run()
        times.append(time.time() - started)
        cpu.append(process_cpu_s(cpu_root) - cpu_before)
    return statistics.median(times), statistics.median(cpu)


def run_faiss(
    base: np.ndarray, queries: np.ndarray, gt: np.ndarray, m: int, nbits: int, copies: int
) -> dict[str, float]:
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexPQ(base.shape[1], m, nbits)
    started = time.time()
    index.train(base)
    train_s = time.time() - started
    encode_s_1x, _ = median_seconds(lambda: index.pq.compute_codes(base))
    repeated = np.tile(base, (copies, 1))
    encode_s, encode_cpu_s = median_seconds(lambda: index.pq.compute_codes(repeated))
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
        "faiss_encode_vps": round(copies * len(base) / encode_s, 1),
        "faiss_encode_vps_1x": round(len(base) / encode_s_1x, 1),
        "faiss_encode_cpu_s": round(encode_cpu_s, 3),
        "faiss_search_s": round(search_s, 2),
    }


def encode_figures(spark, model, items, cores: int, copies: int, suffix: str = "") -> dict[str, float]:
    """Median encode time of ``items`` repeated ``copies`` times and cached (Spark ``transform``, codes to a
    no-op sink) as ``ours_encode_*<suffix>`` figures: seconds, vectors/s/core and CPU seconds of the JVM and
    its workers."""
    from pyspark.sql import functions as F

    repeated = items.crossJoin(spark.range(copies).select(F.col("id").alias("copy")))
    cached = repeated.repartition(cores).cache()  # one task per core (a file may be read as several splits)
    n_items = cached.count()
    encode_s, cpu_s = median_seconds(
        lambda: model.transform(cached).select("item_id", "code").write.format("noop").mode("overwrite").save(),
        cpu_root=spark.sparkContext._gateway.proc.pid,
    )
    cached.unpersist()
    return {
        f"ours_encode_s{suffix}": round(encode_s, 3),
        f"ours_encode_vps_per_core{suffix}": round(n_items / encode_s / cores, 1),
        f"ours_encode_cpu_s{suffix}": round(cpu_s, 3),
        f"encode_load_avg_1m{suffix}": round(os.getloadavg()[0], 2),
    }


def run_ours(
    spark,
    items_path: str,
    queries_df,
    gt: np.ndarray,
    m: int,
    nbits: int,
    work: str,
    cores: int,
    init: str,
    copies: int,
) -> dict[str, float]:
    from pipelines.pq import PQEncoder, search
    from pipelines.pq.evaluation import reconstruction_mse

    items = spark.read.parquet(items_path)
    started = time.time()
    model = PQEncoder(m=m, nbits=nbits, sampleSize=65536, initMode=init).fit(items)  # all 60,000 base vectors
    train_s = time.time() - started
    figures = encode_figures(spark, model, items, cores, copies)
    binary = spark.read.parquet(f"{items_path}_binary")
    figures.update(encode_figures(spark, model, binary, cores, copies, "_binary"))
    figures.update(encode_figures(spark, model, items, cores, 1, "_1x"))
    codes_path = f"{work}/codes_M{m}x{nbits}"
    started = time.time()
    model.transform(items).select("item_id", "code").write.mode("overwrite").parquet(codes_path)
    encode_write_s = time.time() - started
    result_path = f"{work}/neighbours_M{m}x{nbits}"
    started = time.time()
    search(model, spark.read.parquet(codes_path), queries_df, 100, partitions=cores).write.mode("overwrite").parquet(
        result_path
    )
    search_s = time.time() - started
    res = spark.read.parquet(result_path).toPandas()
    found = np.full((len(gt), 100), -1, np.int64)
    found[res["query_id"].to_numpy(), res["rank"].to_numpy() - 1] = res["item_id"].to_numpy()
    coded = spark.read.parquet(codes_path).join(items, "item_id")
    mse = reconstruction_mse(model, coded)
    return {
        **recalls(found, gt, "ours"),
        "ours_mse": round(mse, 1),
        "ours_train_s": round(train_s, 2),
        **figures,
        "ours_parquet_encode_write_vps_per_core": round(items.count() / encode_write_s / cores, 1),
        "ours_search_s": round(search_s, 2),
    }


def run_faiss_ivfpq(
    base: np.ndarray, queries: np.ndarray, gt: np.ndarray, m: int, nbits: int, nlist: int, nprobes: list[int]
) -> dict[str, float]:
    """Faiss ``IndexIVFPQ`` (residual, its default) on one thread: train, add, search at each ``nprobe``."""
    import faiss

    faiss.omp_set_num_threads(1)
    quantizer = faiss.IndexFlatL2(base.shape[1])
    index = faiss.IndexIVFPQ(quantizer, base.shape[1], nlist, m, nbits)
    started = time.time()
    index.train(base)
    row = {"faiss_train_s": round(time.time() - started, 2)}
    index.add(base)
    for nprobe in nprobes:
        index.nprobe = nprobe
        started = time.time()
        _, found = index.search(queries, 100)
        row[f"faiss_np{nprobe}_ms_per_query"] = round(1000 * (time.time() - started) / len(queries), 4)
        row.update(recalls(found, gt, f"faiss_np{nprobe}"))
    print(f"IVF{nlist},M{m}x{nbits} faiss: {row}", file=sys.stderr, flush=True)
    return row


def run_ours_ivfpq(
    spark,
    items_path: str,
    queries_df,
    gt: np.ndarray,
    m: int,
    nbits: int,
    nlist: int,
    nprobes: list[int],
    work: str,
    cores: int,
    init: str,
) -> dict[str, float]:
    """Our residual IVF-PQ: fit on the base vectors, codes and lists to Parquet, the Spark search at each
    ``nprobe`` written to Parquet."""
    from pipelines.pq import PQEncoder, search

    items = spark.read.parquet(items_path)
    started = time.time()
    model = PQEncoder(m=m, nbits=nbits, nlist=nlist, sampleSize=65536, initMode=init).fit(items)
    row = {"ours_train_s": round(time.time() - started, 2)}
    codes_path = f"{work}/ivf_codes_M{m}x{nbits}"
    model.transform(items).select("item_id", "code", "list_id").write.mode("overwrite").parquet(codes_path)
    for nprobe in nprobes:
        result_path = f"{work}/ivf_neighbours_M{m}x{nbits}_np{nprobe}"
        started = time.time()
        search(model, spark.read.parquet(codes_path), queries_df, 100, nprobe=nprobe, partitions=cores).write.mode(
            "overwrite"
        ).parquet(result_path)
        row[f"ours_np{nprobe}_ms_per_query"] = round(1000 * (time.time() - started) / len(gt), 4)
        res = spark.read.parquet(result_path).toPandas()
        found = np.full((len(gt), 100), -1, np.int64)
        found[res["query_id"].to_numpy(), res["rank"].to_numpy() - 1] = res["item_id"].to_numpy()
        row.update(recalls(found, gt, f"ours_np{nprobe}"))
        print(f"IVF{nlist},M{m}x{nbits} ours: {row}", file=sys.stderr, flush=True)  # kept if a later nprobe fails
    return row


def ivfpq_row(faiss_row: dict[str, float], ours_row: dict[str, float], nprobes: list[int]) -> dict[str, float]:
    """Both sides' IVF-PQ figures with recall differences (ours - Faiss) and search-time ratios (ours / Faiss)."""
    row = {**faiss_row, **ours_row}
    for nprobe in nprobes:
        for k in KS:
            row[f"diff_np{nprobe}_r{k}"] = round(row[f"ours_np{nprobe}_r{k}"] - row[f"faiss_np{nprobe}_r{k}"], 4)
        faiss_ms = row[f"faiss_np{nprobe}_ms_per_query"]
        row[f"ratio_search_per_query_np{nprobe}"] = (
            round(row[f"ours_np{nprobe}_ms_per_query"] / faiss_ms, 2) if faiss_ms else float("nan")
        )
    return row


def write_items(spark, base: np.ndarray, path: str, cores: int) -> None:
    """The item table twice, one Parquet file per core: ``array<float>`` vectors at ``path`` and packed
    float32 ``binary`` vectors at ``<path>_binary``."""
    from udfs.pq import vectors_to_binary

    ids = np.arange(len(base))
    for vectors, out in ((list(base), path), (vectors_to_binary(base), f"{path}_binary")):
        frame = spark.createDataFrame(pd.DataFrame({"item_id": ids, "vector": vectors}))
        frame.repartition(cores).write.parquet(out)


def summary(key: str, row: dict[str, float], cores: int, copies: int) -> str:
    """The encode comparison in words: ours per core next to Faiss's one thread, and the ratios."""
    faiss_vps = row["faiss_encode_vps"]
    cpu_ratio = row["faiss_encode_cpu_s"] / row["ours_encode_cpu_s"] if row["ours_encode_cpu_s"] else float("nan")
    return (
        f"{key} encode of {copies} x the base table: ours {row['ours_encode_vps_per_core']:,.0f} vectors/s/core "
        f"on {cores} cores "
        f"(array<float> items) vs Faiss compute_codes {faiss_vps:,.0f} vectors/s on 1 thread: "
        f"{row['ratio_encode']:.2f}x; binary float32 items {row['ours_encode_vps_per_core_binary']:,.0f} "
        f"vectors/s/core: {row['ratio_encode_binary']:.2f}x; per CPU-second (Spark JVM + Python workers vs "
        f"Faiss): {cpu_ratio:.2f}x; load average {row['encode_load_avg_1m']:.1f} on {os.cpu_count()} CPUs; "
        f"the base table once: {row['ratio_encode_1x']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument(
        "--encode-copies",
        type=int,
        default=5,
        help="encode throughput on the base table repeated this many times, both sides (default: %(default)s)",
    )
    parser.add_argument("--nlist", type=int, default=256, help="IVF-PQ lists (default: %(default)s)")
    parser.add_argument(
        "--nprobe", type=int, nargs="+", default=[1, 8, 32], help="IVF-PQ lists probed (default: 1 8 32)"
    )
    parser.add_argument("--ivfpq-only", action="store_true", help="run only the IVF-PQ rows")
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
        write_items(spark, base, items_path, cores)
        queries_df = spark.createDataFrame(
            pd.DataFrame({"query_id": np.arange(len(queries)), "vector": list(queries)})
        ).cache()
        for nbits in args.nbits:
            for m in args.m:
                key = f"IVF{args.nlist},M{m}x{nbits}"
                print(f"== {key}: faiss", file=sys.stderr, flush=True)
                faiss_row = run_faiss_ivfpq(base, queries, gt, m, nbits, args.nlist, args.nprobe)
                print(f"== {key}: ours (Spark {args.master})", file=sys.stderr, flush=True)
                ours_row = run_ours_ivfpq(
                    spark, items_path, queries_df, gt, m, nbits, args.nlist, args.nprobe, work, cores, args.init
                )
                results[key] = ivfpq_row(faiss_row, ours_row, args.nprobe)
                print(f"{key}: " + ", ".join(f"{k}={v}" for k, v in results[key].items()), flush=True)
                if args.ivfpq_only:
                    continue
                key = f"M{m}x{nbits}"
                print(f"== {key}: faiss", file=sys.stderr, flush=True)
                row = run_faiss(base, queries, gt, m, nbits, args.encode_copies)
                print(f"== {key}: ours (Spark {args.master})", file=sys.stderr, flush=True)
                row.update(
                    run_ours(spark, items_path, queries_df, gt, m, nbits, work, cores, args.init, args.encode_copies)
                )
                row["ratio_encode"] = round(row["ours_encode_vps_per_core"] / row["faiss_encode_vps"], 3)
                row["ratio_encode_binary"] = round(row["ours_encode_vps_per_core_binary"] / row["faiss_encode_vps"], 3)
                row["ratio_encode_1x"] = round(row["ours_encode_vps_per_core_1x"] / row["faiss_encode_vps_1x"], 3)
                row["ratio_mse"] = round(row["ours_mse"] / row["faiss_mse"], 4)
                results[key] = row
                print(f"{key}: " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
                print(summary(key, row, cores, args.encode_copies), flush=True)
    spark.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
