"""Pipelines through a Spark Connect session give what a classic session gives (issue 16 item 6).

Each pipeline runs twice at test size from the same definition, at the same time: in a subprocess with a classic
local session (``python -m pipelines run --mode session``, the reference) and here through the connect tier's
server, which has the same Spark settings. Every committed table must be equal (scores and metrics to 1e-9:
MLlib's sums may add in another order), and the work that cannot run over Connect must stop at once with one line.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from chispa import assert_approx_df_equality

from pipelines.connect import ConnectUnsupported
from pipelines.gbdt_lr.model import GBDTLR
from pipelines.ingest import read_corpus
from pipelines.job_runtime import run_job
from pipelines.orchestration.definition import load_pipeline
from tests.connect.server import ROOT
from tests.pipeline_runs import TINY_TRAIN, run_pipeline, tiny_definition
from tests.recsys_tiny import TINY as RECSYS_TINY

OVER_CONNECT = {"trees.learner": "spark"}  # xgboost.spark needs RDD barrier mode, which Connect does not have

pytestmark = pytest.mark.connect
D = "2026-11-20"
PRECISION = 1e-9


def classic_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def start_classic(definition: Path, root: Path, log: Path) -> subprocess.Popen:
    """The reference run: a new Python process with a classic local session, started at once so that it runs
    while the Connect run does (both are chains of small Spark jobs, mostly waiting on each other's latency). Its
    output goes to ``log``: a pipe nobody reads until the Connect run ends would stop it once the pipe is full."""
    with log.open("w") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines",
                "run",
                str(definition),
                "--root",
                str(root),
                "--run-date",
                D,
                "--mode",
                "session",
            ],
            cwd=ROOT,
            env=classic_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finish_classic(classic: subprocess.Popen, log: Path) -> None:
    """Wait for the reference run; its output's tail when it failed."""
    try:
        classic.wait(timeout=900)
    except subprocess.TimeoutExpired:
        classic.kill()
        classic.wait()
    assert classic.returncode == 0, log.read_text()[-6000:]


def same_json(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), where
        for key in a:
            same_json(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same_json(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=PRECISION, abs_tol=PRECISION) or (a != a and b != b), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def compare_output(spark, classic: Path, connect: Path, ignore_columns: list[str]) -> str:
    """One committed output: a table (Parquet) compared with chispa, or its JSON files; what was compared."""
    if (classic / "metadata").is_dir():
        return "model (its scores are compared)"
    if any(classic.rglob("*.parquet")):
        expected, got = spark.read.parquet(str(classic)), spark.read.parquet(str(connect))
        drop = [c for c in ignore_columns if c in expected.columns]
        assert_approx_df_equality(
            got.drop(*drop), expected.drop(*drop), PRECISION, ignore_row_order=True, ignore_nullable=True
        )
        return f"table of {expected.count()} rows"
    files = sorted(p.name for p in classic.glob("*.json") if not p.name.startswith("_"))
    for name in files:
        same_json(json.loads((connect / name).read_text()), json.loads((classic / name).read_text()), name)
    return f"JSON {files}"


def run_and_compare(
    spark,
    tmp_path: Path,
    name: str,
    sets: dict[str, dict[str, Any]],
    ignore_columns: list[str] = (),
    drop_steps: tuple[str, ...] = (),
) -> dict[str, str]:
    """Run pipeline ``name`` (less ``drop_steps``) both ways; compare every declared output; which outputs were
    compared how."""
    definition = tiny_definition(name, tmp_path, sets)
    if drop_steps:
        data = yaml.safe_load(definition.read_text())
        data["steps"] = {k: v for k, v in data["steps"].items() if k not in drop_steps}
        definition.write_text(yaml.safe_dump(data, sort_keys=False))
    log = tmp_path / "classic.log"
    classic = start_classic(definition, tmp_path / "classic", log)
    try:
        manifest, _ = run_pipeline(spark, definition, tmp_path / "connect", D)
    except BaseException:
        classic.kill()
        classic.wait()
        raise
    finish_classic(classic, log)
    assert manifest["status"] == "succeeded"
    outputs = {
        root: [
            Path(p)
            for step in load_pipeline(definition, str(tmp_path / root)).steps.values()
            for p in step.output_paths(D)
        ]
        for root in ("classic", "connect")
    }
    compared = {}
    for classic, connect in zip(outputs["classic"], outputs["connect"]):
        assert (connect / "_SUCCESS").is_file(), f"{connect} not committed over Connect"
        compared[str(connect.relative_to(tmp_path / "connect"))] = compare_output(
            spark, classic, connect, list(ignore_columns)
        )
    return compared


def test_clicks_demo_over_connect_equals_classic(connect_spark, tmp_path):
    compared = run_and_compare(
        connect_spark,
        tmp_path,
        "clicks_demo",
        {"generate": {"size": 0.02}, "train": {**TINY_TRAIN, **OVER_CONNECT}},
        ["model_version"],
    )
    assert set(compared) == {
        "raw/clicks/ds=2026-11-20",
        "raw/corpus/ds=2026-11-20",
        "raw/interactions/ds=2026-11-20",
        "raw/items/ds=2026-11-20",
        "clean/clicks/ds=2026-11-20",
        "gbdt_lr/model",
        "gbdt_lr/test_scores/ds=2026-11-20",
        "gbdt_lr/report/ds=2026-11-20",
        "evaluation/ds=2026-11-20",
    }
    quarantine = f"clean/clicks_quarantine/ds={D}"  # committed beside the declared output
    assert (
        compare_output(
            connect_spark, tmp_path / "classic" / quarantine, tmp_path / "connect" / quarantine, ["source_file"]
        )
        == "table of 7 rows"
    )
    assert compared["gbdt_lr/report/ds=2026-11-20"] == "JSON ['results.json']"
    assert compared["evaluation/ds=2026-11-20"] == "JSON ['evaluation.json']"
    summary = json.loads((tmp_path / "connect" / "evaluation" / f"ds={D}" / "_metrics.json").read_text())["spark"]
    assert summary["executors"] is None and summary["default_parallelism"] == 2 and summary["master"] == "local[2]"

    # jobs/score.py over Connect, with the model trained over Connect and with the one a classic session saved.
    scores = {}
    for root in ("classic", "connect"):
        out = tmp_path / "scores" / root
        code = run_job(
            "score",
            [
                "--set",
                f"model_path={tmp_path / root / 'gbdt_lr' / 'model'}",
                "--set",
                f"input.path={tmp_path / 'connect' / 'clean' / 'clicks' / f'ds={D}'}",
                "--set",
                f"output.path={out}",
                "--run-date",
                D,
            ],
        )
        assert code == 0
        scores[root] = connect_spark.read.parquet(str(out / f"ds={D}")).drop("model_version")
    assert scores["connect"].count() == 993
    assert_approx_df_equality(scores["connect"], scores["classic"], PRECISION, ignore_row_order=True)


def test_xgboost_trees_stop_at_once_with_one_line(connect_spark):
    """xgboost.spark trains in RDD barrier mode: over Connect GBDTLR says so in one line and names the way out."""
    clicks = connect_spark.createDataFrame(
        [(i % 2, float(i), "a" if i % 3 else "b") for i in range(40)], "label INT, x DOUBLE, c STRING"
    )
    with pytest.raises(ConnectUnsupported) as caught:
        GBDTLR(numericCols=["x"], categoricalCols=["c"], minCategoryCount=1, numTrees=2).fit(clicks)
    assert str(caught.value).startswith(
        "trees.learner 'xgboost' needs a classic SparkSession (xgboost.spark trains in RDD barrier mode; use "
        "trees.learner: spark over Spark Connect); it cannot run over Spark Connect"
    )


def test_sgns_stops_at_once_with_one_line(connect_server, tmp_path):
    """A job under plain python with SPARK_REMOTE set runs over Connect; sgns training refuses it in one line."""
    env = {**classic_env(), "SPARK_REMOTE": connect_server.url}
    done = subprocess.run(
        [
            sys.executable,
            "jobs/train_word2vec.py",
            "--set",
            f"input.path={tmp_path}/corpus",
            "--set",
            f"output.path={tmp_path}/w2v",
            "--set",
            "model.trainer=sgns",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: word2vec trainer 'sgns' needs a classic SparkSession (it trains on RDD partitions with broadcast "
        f"weights); it cannot run over Spark Connect (spark.remote={connect_server.url})"
    )
    assert "Traceback" not in done.stderr


def test_recsys_demo_over_connect_equals_classic(connect_spark, tmp_path):
    """Every step but item2vec's sgns (ppmi instead: sgns cannot run over Connect) equals classic mode's: split,
    item vectors, item index, PQ encode and search, features, the ranker's scores (its draws follow row values,
    and the features table arrives in another row order over Connect), the baselines and the evaluation."""
    sets = {step: dict(values) for step, values in RECSYS_TINY.items()}
    sets["item2vec"]["model.trainer"] = "ppmi"
    sets["rank"]["model.trees.learner"] = "spark"
    compared = run_and_compare(connect_spark, tmp_path, "recsys_demo", sets, ["model_version"])
    exact = {k for k, v in compared.items() if v.startswith("table of ")}
    assert {
        f"split/history/ds={D}",
        f"item2vec/vectors/ds={D}",
        f"index/ds={D}",
        f"pq/codes/ds={D}",
        f"recall/candidates/ds={D}",
        f"features/ds={D}",
        f"ranker/scores/ds={D}",
    } <= exact, compared


def test_text_demo_tfidf_over_connect_equals_classic(connect_spark, tmp_path):
    """Ingest (JSON lines), TF-IDF, keywords and similar documents, word vectors (ppmi). evaluate_embeddings is
    left out: its batch queries need a classic session."""
    compared = run_and_compare(
        connect_spark,
        tmp_path,
        "text_demo",
        {"generate": {"size": 0.1}, "word2vec": {"model.trainer": "ppmi"}},
        drop_steps=("evaluate_embeddings",),
    )
    assert {k for k, v in compared.items() if v.startswith("table of ")} >= {
        f"tfidf/features/ds={D}",
        f"tfidf/keywords/ds={D}",
        f"similar_docs/ds={D}",
        f"word2vec/vectors/ds={D}",
    }


def test_text_corpus_line_numbers_over_connect(connect_spark, tmp_path):
    """A text corpus is numbered by line without RDDs: 0..n-1, each file's lines in order."""
    for name, lines in [("a.txt", 30), ("b.txt", 4)]:
        (tmp_path / name).write_text("".join(f"{name} {i}\n" for i in range(lines)))
    rows = read_corpus(connect_spark, str(tmp_path), "text").data.collect()
    assert sorted(r.doc_id for r in rows) == list(range(34))
    for name in ("a.txt", "b.txt"):
        ids = [r.doc_id for r in sorted(rows, key=lambda r: int(r.text.split()[1])) if r.text.startswith(name)]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
