"""``jobs/evaluate.py`` end to end: a scored CSV in, figures equal to scikit-learn's, JSON, Markdown and plots out."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from pipelines.job_runtime import run_job

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _evaluate(args):
    return run_job("evaluate", args)


@pytest.fixture(scope="module")
def scored_csv(tmp_path_factory):
    """Tied, weighted, grouped probability scores with string labels ("yes"/"no": quoted on the command
    line, since ``--set`` values parse as YAML, where a bare yes is true)."""
    rng = np.random.default_rng(3)
    n = 3000
    label = (rng.random(n) < 0.3).astype(int)
    score = np.round(1 / (1 + np.exp(-(rng.normal(size=n) + label - 0.8))), 2)  # rounding makes heavy ties
    table = pd.DataFrame(
        {
            "user": rng.integers(0, 50, n),
            "outcome": np.where(label == 1, "yes", "no"),
            "p": score,
            "w": rng.integers(1, 4, n).astype(float),
        }
    )
    path = tmp_path_factory.mktemp("scored") / "scored.csv"
    table.to_csv(path, index=False)
    return path, table, label


def test_evaluate_job_writes_figures_equal_to_sklearn_and_plots(spark, scored_csv, tmp_path):
    path, table, label = scored_csv
    out = tmp_path / "evaluation"
    code = _evaluate(
        [
            "--set",
            f"input.path={path}",
            "--set",
            "input.format=csv",
            "--set",
            "input.schema=user INT, outcome STRING, p DOUBLE, w DOUBLE",
            "--set",
            "input.options={header: true}",
            "--set",
            "columns.score=p",
            "--set",
            "columns.label=outcome",
            "--set",
            "columns.weight=w",
            "--set",
            "columns.group=user",
            "--set",
            "positive_label='yes'",
            "--set",
            "negative_label='no'",
            "--set",
            "curve_points=50",
            "--set",
            f"output.path={out}",
        ]
    )
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    weights = table["w"].to_numpy()
    assert report["rows"] == len(table)
    assert report["roc_auc"] == pytest.approx(roc_auc_score(label, table["p"], sample_weight=weights), abs=1e-9)
    assert report["pr_auc"] == pytest.approx(
        average_precision_score(label, table["p"], sample_weight=weights), abs=1e-9
    )
    assert report["log_loss"] == pytest.approx(log_loss(label, table["p"], sample_weight=weights), abs=1e-9)
    assert report["gauc"]["groups"] == table["user"].nunique()
    metrics = json.loads((out / "_metrics.json").read_text())
    assert metrics["evaluation"]["roc_auc"] == report["roc_auc"]
    for plot in ("roc.png", "pr.png", "calibration.png"):
        assert (out / plot).read_bytes().startswith(PNG_MAGIC), plot
    assert sum(b["weight"] for b in report["calibration_bins"]) == pytest.approx(weights.sum(), abs=1e-9)
    summary = (out / "evaluation.md").read_text()
    assert "| roc_auc |" in summary and "| score bin | weight | mean predicted | observed rate |" in summary


def test_evaluate_job_names_a_missing_column_in_one_line(spark, scored_csv, tmp_path, capsys):
    path, _, _ = scored_csv
    code = _evaluate(
        [
            "--set",
            f"input.path={path}",
            "--set",
            "input.format=csv",
            "--set",
            "input.schema=user INT, outcome STRING, p DOUBLE, w DOUBLE",
            "--set",
            "input.options={header: true}",
            "--set",
            "columns.score=probability",
            "--set",
            "columns.label=outcome",
            "--set",
            f"output.path={tmp_path / 'out'}",
        ]
    )
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: column 'probability' not found" in err[0], err
    assert not (tmp_path / "out").exists()


def test_evaluate_job_drops_invalid_rows_only_when_asked(spark, tmp_path, capsys):
    rows = pd.DataFrame({"score": [0.9, 0.2, None, 0.7, float("nan"), 0.1], "label": [1, 0, 1, 0, 0, 1]})
    path = tmp_path / "scores.parquet"
    rows.to_parquet(path)
    base = ["--set", f"input.path={path}", "--set", f"output.path={tmp_path / 'out'}"]
    assert _evaluate(base) != 0
    assert "column 'score'" in capsys.readouterr().err
    assert _evaluate([*base, "--set", "drop_invalid=true"]) == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    kept = rows.dropna()
    assert report["rows"] == 4 and report["rows_dropped"] == 2
    assert report["roc_auc"] == pytest.approx(roc_auc_score(kept["label"], kept["score"]), abs=1e-12)
