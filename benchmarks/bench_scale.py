"""How each stage's time, driver memory, shuffle, broadcast and collected bytes grow with the data (local[2]).

For every ``--factors`` value (default 1,4,16) and every ``--stages`` stage, deterministic synthetic data
of ``factor x base`` size is generated on the executors and materialised (cached, or written to a
temporary Parquet/CSV directory) before the clock starts; then the stage runs inside a
``benchmarks.scale_probe.StageProbe`` (see there for what is counted and how). Stages and their data:

- ``ingest``: Criteo-like CSV (Label, 13 numeric, 7 categorical columns, planted signal) read with the
  declared schema (``read_table``, malformed records split off) and written to Parquet.
- ``metrics``: exact ``roc_auc`` and ``grouped_auc`` on scored rows (1 user per 5 rows).
- ``tfidf``: ``fit_tfidf`` + ``top_keywords`` on a Zipf corpus: a vocabulary of 25 words per document,
  Zipf-Mandelbrot word frequencies, log-normal document lengths (median 150 tokens, heavy tail like
  the Wikipedia slice). At the smallest factor also scikit-learn's ``TfidfVectorizer`` on the same raw
  texts (``tfidf_vs_sklearn_1x``: our fit + transform seconds over theirs, both from raw text, same
  token pattern, no stop words).
- ``similar``: ``similar_documents`` (its default method) on the corpus's unit TF-IDF entries; at the
  largest factor also the approximate ``ivf`` method, timed, with its recall@10 against the exact neighbours.
- ``word2vec``: sgns, one epoch, on the corpus's token lists (tokens and vocabulary both grow). The
  1,000,000-word vocabulary at 100 dimensions is the slow tier's test in ``tests/test_word2vec_combine.py``.
- ``pq``: ``PQEncoder`` fit + encode + ``search`` of 1,000 queries over 128-d clustered item vectors.
- ``gbdt_lr``: the train job's split + ``train`` (three models) + test scoring on Criteo-like rows.
- ``recsys``: the demo pipeline's recall, features and rank steps (``conf/pipelines/recsys_demo.yaml``)
  on the demo's generated sessions, after its generate .. build_pq steps ran untimed.

Each stage first runs once at the smallest factor unreported (``--no-warm-up`` skips it): the first run
pays the Python workers' start, imports and the JVM's first compilations, which would flatten the
exponents. Driver memory is a peak of sampled values: the JVM heap "used" includes garbage not yet
collected, so it says more about the collector's rhythm than about live data unless it nears the limit.

Base sizes (``--base stage=n,...``; defaults in ``BASE``) are set so that factor 1 takes several seconds
per stage even on a quiet machine (Spark's fixed cost, ~0.1-0.5 s per job and dozens of jobs per stage,
does not dominate: ingest at 100,000 rows took 7 s at 1x and 11 s at 4x, so it starts at 250,000), and
aiming at about 25 minutes for factor 16 of every stage together on 2 quiet cores. That aim is not
verified: the runs behind these sizes shared 2 cores with other Spark jobs (load average 15-24), where
gbdt_lr took 113 s at 1x and 233 s at 4x and similar 181 s at 16x. The table and the exponents
(log-log slope between the two largest factors) go to stdout, ``scale_time.png`` and ``scale.json``
to ``--out``; the last line printed is one JSON object.

    python benchmarks/bench_scale.py [--factors 1,4,16] [--stages ingest,metrics,...] [--base tfidf=3000]
        [--out output/bench_scale]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from benchmarks.scale_probe import StageProbe, format_table, growth_exponent, parse_factors, time_plot_png  # noqa: E402
from pipelines.datagen.chunks import generate  # noqa: E402
from pipelines.datagen.criteo_like import CATEGORICAL, CRITEO_LIKE_SCHEMA, NUMERIC, criteo_like  # noqa: E402
from pipelines.datagen.scale import (  # noqa: E402
    VECTORS_SCHEMA,
    ZIPF_CORPUS_SCHEMA,
    clustered_vectors_chunk,
    zipf_corpus_chunk,
)

K = 10
BASE = {
    "ingest": 250_000,
    "metrics": 1_000_000,
    "tfidf": 2_000,
    "similar": 1_000,
    "word2vec": 4_000,
    "pq": 100_000,
    "gbdt_lr": 50_000,
    "recsys": 1_000,
}
UNITS = {
    "ingest": "rows",
    "metrics": "rows",
    "tfidf": "documents",
    "similar": "documents",
    "word2vec": "documents",
    "pq": "items",
    "gbdt_lr": "rows",
    "recsys": "users",
}
VOCABULARY_PER_DOC = 25  # corpus vocabulary = 25 words per document of the base size, times the factor
PQ_QUERIES = 1_000
EXACT_MAX_DOCS = 20_000  # similar_documents' default: ``auto`` is exact up to this many documents


def progress(message: str) -> None:
    print(f"[bench_scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """One stage at one factor: the session, the size, a scratch directory, and whether the factor is the
    largest (recall is checked there) or the smallest (scikit-learn is timed there)."""

    spark: SparkSession
    rows: int
    work: Path
    largest: bool
    smallest: bool


@dataclass
class Prepared:
    """A stage with its data ready: ``run`` is timed; ``after`` (untimed) adds figures such as a recall."""

    run: Callable[[], dict[str, Any]]
    after: Callable[[], dict[str, Any]] | None = None


class Laps:
    """Seconds of consecutive parts of a stage: ``lap("name")`` records the time since the previous lap."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


# ----------------------------------------------------------------------------------------------- data


def _cached(df: DataFrame) -> DataFrame:
    """``df`` persisted and counted: materialised before a stage's clock starts."""
    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    df.count()
    return df


def zipf_corpus(run: Run, seed: int = 42) -> DataFrame:
    """The corpus of ``run.rows`` documents over ``25 x base x factor`` words, cached and counted."""
    vocab = int(VOCABULARY_PER_DOC * run.rows)
    return _cached(
        generate(run.spark, partial(zipf_corpus_chunk, vocab_size=vocab), ZIPF_CORPUS_SCHEMA, seed, run.rows, 500)
    )


# --------------------------------------------------------------------------------------------- stages


def stage_ingest(run: Run) -> Prepared:
    """Criteo-like CSV written beforehand; timed: ``read_table`` with the declared schema, then Parquet."""
    from pipelines.ingest import read_table

    path = str(run.work / "criteo_csv")
    criteo_like(run.spark, run.rows).write.option("header", "true").csv(path)

    def timed() -> dict[str, Any]:
        ingested = read_table(run.spark, path, "csv", CRITEO_LIKE_SCHEMA, {"header": "true"})
        ingested.data.write.parquet(str(run.work / "criteo_parquet"))
        return {"rows_good": ingested.rows_good}

    return Prepared(timed)


def stage_metrics(run: Run) -> Prepared:
    """Cached scored rows (30% positives, 5 rows per user); timed: exact ``roc_auc`` and ``grouped_auc``."""
    from pipelines.metrics import grouped_auc, roc_auc

    label = (F.rand(7) < 0.3).cast("int")
    data = _cached(
        run.spark.range(run.rows)
        .select((F.col("id") % max(1, run.rows // 5)).alias("user"), label.alias("label"), F.randn(8).alias("z"))
        .select("user", "label", (F.col("z") + 1.2 * F.col("label")).alias("score"))
    )

    def timed() -> dict[str, Any]:
        return {"auc": roc_auc(data, "score", "label"), "gauc": grouped_auc(data, "user", "score", "label").gauc}

    return Prepared(timed)


def _fit_transform(docs: DataFrame) -> tuple[Any, DataFrame]:
    """``fit_tfidf`` with the default tokeniser, the transformed table cached and counted."""
    from pipelines.text.tfidf import TfidfSettings, fit_tfidf
    from pipelines.text.tokenizer import TextTokenizer

    model, transformed = fit_tfidf(docs, TextTokenizer(), TfidfSettings())
    return model, _cached(transformed.select("doc_id", "tokens", "tfidf"))


def sklearn_seconds(docs: DataFrame) -> float:
    """``TfidfVectorizer().fit_transform`` on the raw texts (collected beforehand, not timed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = docs.select("text").toPandas()["text"].tolist()
    started = time.perf_counter()
    TfidfVectorizer().fit_transform(texts)
    return time.perf_counter() - started


def stage_tfidf(run: Run) -> Prepared:
    """Cached Zipf corpus; timed: ``fit_tfidf`` (materialised) and ``top_keywords``; then scikit-learn at 1x."""
    from pipelines.text.keywords import keyword_entries, term_index, top_keywords

    docs = zipf_corpus(run)
    figures: dict[str, float] = {}

    def timed() -> dict[str, Any]:
        lap = Laps()
        model, transformed = _fit_transform(docs)
        lap("fit_transform_s")
        keywords = top_keywords(keyword_entries(model, transformed, K), term_index(model, transformed), K)
        keywords.write.format("noop").mode("overwrite").save()
        lap("keywords_s")
        figures.update(lap.seconds)
        return lap.seconds

    def versus_sklearn() -> dict[str, Any]:
        theirs = sklearn_seconds(docs)
        return {"sklearn_s": round(theirs, 3), "vs_sklearn": round(figures["fit_transform_s"] / theirs, 3)}

    return Prepared(timed, versus_sklearn if run.smallest else None)


def stage_similar(run: Run) -> Prepared:
    """Cached unit TF-IDF entries; timed: ``similar_documents`` (k=10, its default method, materialised). At the
    largest factor also ``method="ivf"`` on the same entries, timed, and its recall@10 against the exact
    neighbours (``recall_at_k``; the exact ones are the timed run's when ``auto`` chose ``blocked``)."""
    from pipelines.text.similar import recall_at_k, similar_documents
    from pipelines.text.tfidf import vector_entries

    _, transformed = _fit_transform(zipf_corpus(run))
    entries = _cached(vector_entries(transformed, unit=True))
    result: dict[str, DataFrame] = {}

    def timed() -> dict[str, Any]:
        result["neighbours"] = _cached(similar_documents(entries, K))
        return {}

    def approximate() -> dict[str, Any]:
        exact = (
            result["neighbours"]
            if run.rows <= EXACT_MAX_DOCS
            else _cached(similar_documents(entries, K, method="blocked"))
        )
        started = time.time()
        found = _cached(similar_documents(entries, K, method="ivf"))
        ivf_s = time.time() - started
        return {"ivf_s": round(ivf_s, 3), "ivf_recall_at_10": round(recall_at_k(found, exact, K), 4)}

    return Prepared(timed, approximate if run.largest else None)


def stage_word2vec(run: Run) -> Prepared:
    """Cached token lists of the Zipf corpus; timed: one sgns epoch (100-d, window 5, minCount 5)."""
    from pipelines.word2vec.model import Word2Vec

    corpus = _cached(zipf_corpus(run).select(F.split("text", " ").alias("tokens")))
    tokens = corpus.agg(F.sum(F.size("tokens"))).first()[0]

    def timed() -> dict[str, Any]:
        model = Word2Vec(
            inputCol="tokens",
            trainer="sgns",
            epochs=1,
            vectorSize=100,
            window=5,
            minCount=5,
            sample=1e-3,
            negative=5,
            seed=1,
        ).fit(corpus)
        return {"tokens": int(tokens), "vocabulary": len(model.words)}

    return Prepared(timed)


def stage_pq(run: Run) -> Prepared:
    """Clustered vectors in Parquet, cached; timed: PQ fit (M=8, 8 bits, as build_pq), encode, search k=10."""
    from pipelines.pq import PQEncoder, search

    path = str(run.work / "items")
    generate(run.spark, clustered_vectors_chunk, VECTORS_SCHEMA, 42, run.rows, 10_000).write.parquet(path)
    items = _cached(run.spark.read.parquet(path))
    queries = _cached(
        generate(run.spark, clustered_vectors_chunk, VECTORS_SCHEMA, 43, PQ_QUERIES, PQ_QUERIES).withColumnRenamed(
            "item_id", "query_id"
        )
    )

    def timed() -> dict[str, Any]:
        lap = Laps()
        model = PQEncoder(m=8, nbits=8).fit(items)
        lap("fit_s")
        model.transform(items).select("item_id", "code").write.parquet(str(run.work / "codes"))
        lap("encode_s")
        found = search(model, run.spark.read.parquet(str(run.work / "codes")), queries, K, partitions=2)
        found.write.format("noop").mode("overwrite").save()
        lap("search_s")
        return lap.seconds

    return Prepared(timed)


def stage_gbdt_lr(run: Run) -> Prepared:
    """Cached Criteo-like rows; timed: the train job's split, ``train`` (30 trees, 2 regParams), test AUC."""
    from pipelines.config import load_config
    from pipelines.gbdt_lr.features import FeatureSpec
    from pipelines.gbdt_lr.model import SCORE, stratified_split, train
    from pipelines.metrics import roc_auc

    cfg = load_config(
        ROOT / "conf" / "jobs" / "train_gbdt_lr.yaml",
        overrides=[
            "schema.label=Label",
            f"schema.numeric={json.dumps(NUMERIC)}",
            f"schema.categorical={json.dumps(CATEGORICAL)}",
            "schema.hashed=[]",
            "trees.num_trees=30",
            "lr.reg_grid=[0.01, 0.1]",
            "lr.max_iter=20",
        ],
    )
    spec = FeatureSpec.from_config(cfg["schema"])
    data = _cached(criteo_like(run.spark, run.rows))

    def timed() -> dict[str, Any]:
        train_df, test_df = stratified_split(data, "Label", cfg["split"]["test_fraction"], cfg["split"]["seed"])
        models = train(train_df.cache(), spec, cfg, log=progress)
        scored = models.gbdt_lr.transform(test_df).select("Label", SCORE)
        return {"test_auc": round(roc_auc(scored, SCORE, "Label"), 4)}

    return Prepared(timed)


RECSYS_SETUP = ("generate", "ingest_interactions", "ingest_items", "split", "item2vec", "index", "build_pq")
RECSYS_TIMED = ("recall", "features", "rank")


def stage_recsys(run: Run) -> Prepared:
    """The demo pipeline up to build_pq run beforehand; timed: its recall, features and rank steps."""
    import yaml

    from pipelines.orchestration.definition import build_pipeline
    from pipelines.orchestration.runner import Runner

    definition_path = ROOT / "conf" / "pipelines" / "recsys_demo.yaml"
    data = yaml.safe_load(definition_path.read_text())
    data["steps"]["generate"]["set"]["size"] = run.rows / 1000

    def runner(steps: tuple[str, ...]) -> Runner:
        subset = copy.deepcopy(data)
        subset["steps"] = {name: subset["steps"][name] for name in steps}
        return Runner(build_pipeline(subset, definition_path, str(run.work / "recsys")), "session", spark=run.spark)

    runner(RECSYS_SETUP).run("2026-11-20")

    def timed() -> dict[str, Any]:
        manifest = runner(RECSYS_SETUP + RECSYS_TIMED).run("2026-11-20")
        steps = {s["name"]: s for s in manifest.data["steps"]}
        return {f"{name}_s": round(steps[name]["duration_s"], 2) for name in RECSYS_TIMED}

    return Prepared(timed)


STAGES: dict[str, Callable[[Run], Prepared]] = {
    "ingest": stage_ingest,
    "metrics": stage_metrics,
    "tfidf": stage_tfidf,
    "similar": stage_similar,
    "word2vec": stage_word2vec,
    "pq": stage_pq,
    "gbdt_lr": stage_gbdt_lr,
    "recsys": stage_recsys,
}


# ----------------------------------------------------------------------------------------------- main


def measure(
    spark: SparkSession, stage: str, rows: int, factor: float, largest: bool, smallest: bool, scratch: Path
) -> dict[str, Any]:
    """Generate and materialise the stage's data (untimed), then run it inside a probe."""
    work = Path(tempfile.mkdtemp(prefix=f"{stage}_{factor:g}x_", dir=scratch))
    run = Run(spark, rows, work, largest, smallest)
    started = time.perf_counter()
    prepared = STAGES[stage](run)
    progress(f"{stage} {factor:g}x: {rows:,} {UNITS[stage]} ready in {time.perf_counter() - started:.1f} s")
    with StageProbe(spark) as probe:
        probe.figures.extra.update(prepared.run())
    if prepared.after:
        probe.figures.extra.update(prepared.after())
    figures = probe.figures.as_dict()
    progress(f"{stage} {factor:g}x: {figures}")
    spark.catalog.clearCache()
    shutil.rmtree(work, ignore_errors=True)
    return figures


def summary(results: dict[str, dict[float, dict[str, Any]]]) -> dict[str, Any]:
    """The last line's figures: per stage the time exponent, driver memory ratio and largest-factor time."""
    out: dict[str, Any] = {}
    for stage, by_factor in results.items():
        factors = sorted(by_factor)
        low, high = by_factor[factors[0]], by_factor[factors[-1]]
        exponent = growth_exponent(factors, [by_factor[f]["seconds"] for f in factors])
        out[f"{stage}_time_exponent"] = None if exponent is None else round(exponent, 3)
        out[f"{stage}_driver_mem_ratio"] = round(high["driver_peak_bytes"] / low["driver_peak_bytes"], 3)
        out[f"{stage}_s_{factors[-1]:g}x"] = high["seconds"]
    tfidf = results.get("tfidf", {})
    out["tfidf_vs_sklearn_1x"] = tfidf[min(tfidf)].get("vs_sklearn") if tfidf else None
    similar = results.get("similar", {})
    if similar:
        out[f"similar_ivf_recall_at_10_{max(similar):g}x"] = similar[max(similar)].get("ivf_recall_at_10")
    return out


def parse_base(text: str) -> dict[str, int]:
    """``"tfidf=3000,pq=20000"`` over the defaults in ``BASE``."""
    base = dict(BASE)
    for item in filter(None, text.split(",")):
        name, value = item.split("=")
        if name not in BASE:
            raise SystemExit(f"--base: unknown stage {name!r}, expected one of {list(BASE)}")
        base[name] = int(value)
    return base


@contextmanager
def spark_master(standalone: bool, master: str, scratch: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(master URL, spark.* settings)``: ``master`` as given, or a standalone cluster started for the run
    (``tests.cluster.standalone``: two one-core workers of 3 GB, executors running this interpreter from the
    workers' own directories, the package shipped as ``--py-files``), stopped afterwards."""
    if not standalone:
        yield master, {}
        return
    from pipelines.packaging import build_pyfiles
    from tests.cluster.standalone import EXECUTORS, StandaloneCluster

    cluster = StandaloneCluster(scratch / "cluster", memory="3g", make_python=lambda _: Path(sys.executable))
    try:
        cluster.start()
        os.environ["PYSPARK_PYTHON"] = str(cluster.wrapper)
        yield (
            cluster.url,
            {**EXECUTORS, "spark.executor.memory": "2g", "spark.submit.pyFiles": str(build_pyfiles(scratch / "dist"))},
        )
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factors", default="1,4,16", help="size factors (default: %(default)s)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of %(default)s")
    parser.add_argument(
        "--base",
        default="",
        help="stage=size at factor 1, e.g. tfidf=3000 (defaults: "
        + ", ".join(f"{k}={v}" for k, v in BASE.items())
        + ")",
    )
    parser.add_argument("--out", default=str(ROOT / "output" / "bench_scale"), help="PNG and JSON directory")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="start a standalone master and two one-core workers (spark-class) and run there, "
        "instead of --master: the driver's JVM is then the driver's alone, so its heap "
        "figure is the driver's (run one --stages value per process for the Python RSS)",
    )
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="skip the unreported first run of each stage at the smallest factor (it pays the "
        "Python workers' start, imports and the JVM's first compilations)",
    )
    args = parser.parse_args(argv)
    factors, base = parse_factors(args.factors), parse_base(args.base)
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}, expected some of {list(STAGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[float, dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench_scale_") as scratch,
        spark_master(args.standalone, args.master, Path(scratch)) as (master, settings),
    ):
        from pipelines.session import get_spark

        os.environ["SPARK_MASTER"] = master
        spark = get_spark(
            "bench_scale",
            ROOT / "conf" / "spark" / "local.yaml",
            {
                **settings,
                "spark.master": master,
                "spark.ui.showConsoleProgress": False,
                "spark.ui.retainedStages": 100_000,
                "spark.ui.retainedJobs": 100_000,
            },
        )
        progress(f"Spark {spark.version}, {master}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for stage in stages:
            if args.warm_up:
                progress(f"{stage}: warm-up run at {factors[0]:g}x, not reported")
                measure(spark, stage, int(round(base[stage] * factors[0])), factors[0], False, False, Path(scratch))
            for factor in factors:
                results.setdefault(stage, {})[factor] = measure(
                    spark,
                    stage,
                    int(round(base[stage] * factor)),
                    factor,
                    factor == factors[-1],
                    factor == factors[0],
                    Path(scratch),
                )
        spark.stop()
    print(format_table(results))
    where = "standalone, 2 one-core workers" if args.standalone else args.master
    time_plot_png(results, str(out / "scale_time.png"), f"bench_scale: wall time against data size ({where})")
    result = summary(results)
    (out / "scale.json").write_text(
        json.dumps(
            {
                "base": {s: base[s] for s in stages},
                "factors": factors,
                "results": {s: {f"{f:g}": r for f, r in v.items()} for s, v in results.items()},
                "summary": result,
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
