"""Cluster tier: an executor JVM, or in another run a whole worker JVM, is SIGKILLed in the middle of sgns
Word2Vec training (within a round), PQ encoding and GBDT+LR training (XGBoost's trees: a barrier stage, whose
tasks all start again). Each job must still finish and write what an undisturbed run writes: Word2Vec vectors and
PQ codes and codebooks bit for bit, GBDT+LR test scores to 1e-9 (MLlib's logistic regression adds per-partition
sums in the order tasks finish, so two runs differ in the last bits, about 1e-16, killed or not).

The three jobs run as the steps of one pipeline under one ``spark-submit`` (``jobs/run_pipeline.py``, session
mode), once with an executor killed in each step and once with a worker killed in each step: two applications,
not six. The undisturbed run is the same pipeline in local mode in the tests' session (so the outputs of a
disturbed cluster run must also equal local mode's); an undisturbed run on the cluster would add a third
application, about 1.5 minutes here, and the tier may grow by at most 5. The figures of each kill (the step's
seconds, seconds until an executor was back, failed task attempts, stage attempts run again) are printed and
written to ``fault_figures.json`` in pytest's base temporary directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from chispa import assert_approx_df_equality, assert_df_equality

from pipelines.datagen import demo_tables
from pipelines.orchestration.definition import build_pipeline
from pipelines.orchestration.runner import Runner
from tests.cluster.faults import FAULTS, VICTIM, Moment, executor_back_s, run_pipeline, step_events

pytestmark = pytest.mark.cluster
DATE = "2026-06-01"


def write_parts(df: pd.DataFrame, path: Path, files: int) -> None:
    """``df`` as ``files`` Parquet files: as many input partitions, so shuffles have several map outputs."""
    path.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(df)), files)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), path / f"part-{i:03d}.parquet")


def write_corpus(
    spark, path: Path, sentences: int = 6_000, length: int = 20, vocabulary: int = 2_000, seed: int = 5
) -> None:
    """Sentences of Zipf-distributed made-up words (letters only, as the default tokeniser keeps)."""
    rng = np.random.default_rng(seed)
    words = np.unique(["".join(w) for w in rng.choice(list("abcdefghijklmnopqrstuvwxyz"), (vocabulary, 8))])
    zipf = 1 / np.arange(1, len(words) + 1)
    drawn = words[rng.choice(len(words), (sentences, length), p=zipf / zipf.sum())]
    write_parts(pd.DataFrame({"doc_id": np.arange(sentences), "text": [" ".join(s) for s in drawn]}), path, 2)


def write_vectors(spark, path: Path, items: int = 16_000, dim: int = 64, seed: int = 7) -> None:
    """Clustered item vectors as packed float32 (``binary``), in 8 files: an encode stage of 8 tasks."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    x = centres[rng.integers(50, size=items)] + 0.3 * rng.standard_normal((items, dim)).astype(np.float32)
    write_parts(pd.DataFrame({"item_id": np.arange(items), "vector": [row.tobytes() for row in x]}), path, 8)


def write_clicks(spark, path: Path) -> None:
    """10,000 demo clicks (the job's default schema) in two files."""
    demo_tables(spark, size=0.2, seed=9)["clicks"].repartition(2).write.parquet(str(path))


@dataclass(frozen=True)
class Case:
    """A pipeline step: its job and settings (``{input}`` is its input), its input, when to kill it, and the
    tables it must repeat."""

    step: str
    job: str
    write: Callable[..., None]
    settings: dict
    moment: Moment
    tables: dict[str, list[str]]  # table under the root -> columns that may differ between runs
    exact: str = ""  # a table whose ``vector`` column is compared bit for bit
    precision: float = 0.0  # tolerated difference of floating-point columns (0: none)


CASES = [
    Case(
        "word2vec",
        "train_word2vec",
        write_corpus,
        {
            "input.path": "{input}",
            "input.format": "parquet",
            "output.path": "{root}/word2vec",
            "model.trainer": "sgns",
            "model.vector_size": 64,
            "model.window": 8,
            "model.negative": 10,
            "model.sample": 0,
            "model.min_count": 1,
            "model.epochs": 2,
            "model.num_partitions": 2,
            "model.syncs_per_epoch": 2,
            "model.seed": 3,
        },
        Moment(r"sgns round", jobs_done=2),
        {f"word2vec/vectors/ds={DATE}": []},
        exact=f"word2vec/vectors/ds={DATE}",
    ),
    Case(
        "pq",
        "build_pq",
        write_vectors,
        {
            "input.path": "{input}",
            "output.codes_path": "{root}/pq/codes",
            "output.model_path": "{root}/pq/model",
            "quantizer.m": 8,
            "quantizer.nbits": 8,
            "quantizer.max_iter": 5,
            "quantizer.train_sample_size": 4000,
            "evaluate.mse_sample_size": 1000,
        },
        Moment(r"encode and write codes", tasks=8, tasks_done=2),
        {f"pq/codes/ds={DATE}": [], f"pq/model/ds={DATE}/data": []},
    ),
    Case(
        "gbdt_lr",
        "train_gbdt_lr",
        write_clicks,
        {
            "input.path": "{input}",
            "output.path": "{root}/gbdt_lr",
            "trees.num_trees": 30,
            "trees.max_depth": 3,
            "lr.reg_grid": [0.1],
            "lr.max_iter": 2,
            "lr.parallelism": 1,
            "features.hash_buckets": 256,
        },
        # XGBoost's barrier stage (or the shuffle that spreads rows over its workers): all its tasks start again.
        Moment(r"XGBoost trees", tasks=2),
        {f"gbdt_lr/test_scores/ds={DATE}": ["model_version"]},
        precision=1e-9,
    ),  # MLlib's LR adds partial sums in arrival order: scores differ by ~1e-15 between runs
]
# A partition (and a task) per input file, and a shuffle partition per executor: these jobs are made of many
# small Spark jobs, whose cost on the cluster grows with their tasks.
CONF = {"spark.sql.files.maxPartitionBytes": "1m", "spark.sql.shuffle.partitions": 2}


def definition(root: Path, inputs: dict[str, Path]) -> dict:
    """The pipeline of the three steps on the cluster, in one session."""
    steps = {
        c.step: {
            "job": c.job,
            "set": {
                k: v.replace("{input}", str(inputs[c.step])) if isinstance(v, str) else v for k, v in c.settings.items()
            },
        }
        for c in CASES
    }
    return {
        "name": "faults",
        "root": str(root),
        "mode": "session",
        "spark": {"conf_file": "conf/spark/test.yaml"},
        "steps": steps,
    }


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """Figures of every kill, written to ``fault_figures.json`` when the module ends."""
    found: dict[str, dict] = {}
    yield found
    path = tmp_path_factory.getbasetemp() / "fault_figures.json"
    path.write_text(json.dumps(found, indent=2) + "\n")
    print(f"\nfault figures: {path}")


@pytest.fixture(scope="module")
def runs(standalone, pyfiles, spark, tmp_path_factory):
    """``runs(fault)``: the pipeline's run on the cluster with ``fault`` in each step and its root; ``runs()``:
    the steps of its undisturbed run in local mode in this session (the manifest's) and its root."""
    data = tmp_path_factory.mktemp("inputs")
    inputs = {c.step: data / c.step for c in CASES}
    for case in CASES:
        case.write(spark, inputs[case.step])
    done: dict[str | None, tuple] = {}

    def run(fault: str | None = None):
        if fault in done:
            return done[fault]
        work = tmp_path_factory.mktemp(fault or "undisturbed")
        path = work / "faults.yaml"
        pipeline = definition(work / "out", inputs)
        path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
        if fault:
            done[fault] = (
                run_pipeline(standalone, pyfiles, path, DATE, work, [c.moment for c in CASES], fault, CONF),
                work / "out",
            )
            return done[fault]
        before = {k: spark.conf.get(k, None) for k in CONF}
        for key, value in CONF.items():
            spark.conf.set(key, value)
        try:
            manifest = Runner(build_pipeline(pipeline, path), "session", spark=spark).run(DATE)
        finally:
            for key, value in before.items():
                spark.conf.unset(key) if value is None else spark.conf.set(key, value)
        done[None] = (manifest.data["steps"], work / "out")
        return done[None]

    return run


def assert_bit_equal(spark, table: str, expected: Path, got: Path) -> None:
    """Vectors of the two runs, ordered by vocabulary index, equal as float32 bits."""

    def bits(root: Path) -> np.ndarray:
        rows = spark.read.parquet(str(root / table)).orderBy("index").select("vector").toPandas()["vector"]
        return np.stack(rows.to_numpy()).astype(np.float32).view(np.uint32)

    want, have = bits(expected), bits(got)
    differ = np.any(want != have, axis=1) if want.shape == have.shape else np.ones(1, bool)
    assert not differ.any(), f"{differ.sum()} of {len(differ)} vectors differ from the undisturbed run's"


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("case", CASES, ids=[c.step for c in CASES])
def test_job_survives_a_killed_executor_or_worker(case, fault, runs, standalone, spark, figures):
    undisturbed, expected = runs()
    disturbed, got = runs(fault)
    index = [c.step for c in CASES].index(case.step)
    kill = disturbed.kills[index]
    events = step_events(disturbed.log_dir, disturbed.steps)[case.step]
    assert events["executors_removed"] >= 1, f"the driver never lost an executor in {case.step}: {events}"
    assert set(kill["pythons"]) <= {str(standalone.pythons[VICTIM])}, "executors ran another Python"
    if case.exact:
        assert_bit_equal(spark, case.exact, expected, got)
    for table, ignored in case.tables.items():
        tables = [spark.read.parquet(str(root / table)).drop(*ignored) for root in (got, expected)]
        if case.precision:
            assert_approx_df_equality(*tables, case.precision, ignore_row_order=True)
        else:
            assert_df_equality(*tables, ignore_row_order=True)
    step_s = {
        name: next(s["duration_s"] for s in steps if s["name"] == case.step)
        for name, steps in (("cluster", disturbed.steps), ("local", undisturbed))
    }
    figures[f"{case.job}/{fault}"] = row = {
        **{k: v for k, v in kill.items() if k != "at_ms"},
        "step_s": round(step_s["cluster"], 1),
        "undisturbed_local_step_s": round(step_s["local"], 1),
        "executor_back_s": executor_back_s(disturbed.log_dir, kill["at_ms"]),
        **events,
        "run_s": round(disturbed.seconds, 1),
        "outputs_equal": True,
    }
    print(f"\n{case.job} / {fault} killed: {json.dumps(row)}")
