"""The pipeline run report's page from a synthetic manifest and outputs (no Spark): metric tables, key metrics,
metrics-at-k curves, embedded plots and samples. tests/test_report_html.py opens real reports in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.metrics.plots import at_k_panels, plot_at_k, plot_roc
from pipelines.orchestration.report import (
    at_k_curves,
    key_metrics,
    metric_blocks,
    render_html,
    sample_rows,
    short_text,
    write_report,
)

GBDT_METRICS = {
    "rows_in": {"train": 837, "test": 156},
    "test": {"gbdt_lr": {"roc_auc": 0.81, "log_loss": 0.49}, "lr_only": {"roc_auc": 0.82, "log_loss": 0.5}},
    "feature_importances": [{"feature": f"f{i}", "importance": 1 / (i + 1)} for i in range(20)],
    "model_version": "v1",
}
PQ_METRICS = {"evaluation": {"queries_sampled": 100, "r1": 0.3, "r10": 0.83, "r100": 0.998}}


def test_metrics_at_k_get_one_panel_per_measure(tmp_path):
    curves = {
        f"evaluation.{m}.{measure}@k": {10: 0.1, 100: 0.3} for m in ("ours", "als") for measure in ("recall", "ndcg")
    }
    curves["evaluation.r@k"] = {1: 0.3, 10: 0.8}
    panels = at_k_panels(curves)
    assert list(panels) == ["recall@k", "ndcg@k", "r@k"]
    assert list(panels["recall@k"]) == ["ours", "als"] and list(panels["ndcg@k"]) == ["ours", "als"]
    assert list(panels["r@k"]) == ["evaluation"]
    png = Path(plot_at_k(curves, tmp_path / "at_k.png"))
    assert png.read_bytes().startswith(b"\x89PNG")


def test_report_modules_leave_the_matplotlib_backend_alone():
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import pipelines.gbdt_lr.report, pipelines.recsys.plots; "
        "print(matplotlib.get_backend())"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "svg"
    )


def test_metric_blocks_make_matrices_and_record_tables():
    scalars, tables = metric_blocks(GBDT_METRICS)
    assert scalars == [("rows_in.train", 837), ("rows_in.test", 156), ("model_version", "v1")]
    matrix, records = tables
    assert matrix.startswith("<h4>test</h4>") and "<th>roc_auc</th><th>log_loss</th>" in matrix
    assert "<td>gbdt_lr</td>" in matrix and "<td>lr_only</td>" in matrix
    assert records.startswith("<h4>feature_importances (first 12 of 20)</h4>") and records.count("<tr>") == 13


def test_at_k_curves_find_ranking_families_only():
    metrics = {
        **PQ_METRICS,
        "ours": {"recall@5": 0.1, "recall@10": 0.2, "ndcg@10": 0.3},
        "at_threshold": {"f1": 0.5, "precision": 0.4},
        "trees": {"num_trees": 10, "depth_2": 3, "depth_3": 4},
    }
    assert at_k_curves(metrics) == {
        "evaluation.r@k": {1: 0.3, 10: 0.83, 100: 0.998},
        "ours.recall@k": {5: 0.1, 10: 0.2},
    }


def test_key_metrics_one_row_per_step_and_subject():
    steps = [
        {"name": "train", "metrics": GBDT_METRICS},
        {"name": "evaluate", "metrics": {"evaluation": {"roc_auc": 0.8, "rows": 156, "best_f1": {"precision": 0.5}}}},
        {"name": "search", "metrics": PQ_METRICS},
    ]
    header, rows = key_metrics(steps)
    assert header == ["step", "of", "roc_auc", "log_loss", "r1", "r10", "r100"]
    assert rows == [
        ["train", "test.gbdt_lr", 0.81, 0.49, None, None, None],
        ["train", "test.lr_only", 0.82, 0.5, None, None, None],
        ["evaluate", "evaluation", 0.8, None, None, None, None],
        ["search", "evaluation", None, None, 0.3, 0.83, 0.998],
    ]


def test_samples_prefer_complete_rows_and_group_ranked_lists(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    pq.write_table(
        pa.table({"word": ["a", "b", "c"], "neighbours": [None, ["x", "y"], ["z"]]}), answers / "part-0.parquet"
    )
    assert sample_rows(str(answers)) == (["word", "neighbours"], [["b", ["x", "y"]], ["c", ["z"]], ["a", None]])
    keywords = tmp_path / "keywords"
    keywords.mkdir()
    pq.write_table(
        pa.table(
            {
                "doc_id": [0, 0, 1, 1, 1],
                "term": ["b", "a", "c", "d", "e"],
                "rank": [2, 1, 1, 2, 3],
                "weight": [0.2, 0.5, 0.9, 0.4, 0.1],
            }
        ),
        keywords / "part-0.parquet",
    )
    assert sample_rows(str(keywords)) == (
        ["doc_id", "term (by rank)", "weight (by rank)"],
        [[0, ["a", "b"], [0.5, 0.2]], [1, ["c", "d", "e"], [0.9, 0.4, 0.1]]],
    )
    (tmp_path / "model" / "metadata").mkdir(parents=True)
    assert sample_rows(str(tmp_path / "model")) is None
    assert short_text(list(range(10))) == "[0, 1, 2, 3, 4, 5, ... (10 in all)]" and short_text(1 / 3) == "0.3333"


def manifest_with_outputs(tmp_path: Path) -> dict:
    """A run whose outputs hold a PNG and a ranked table, its last step failed."""
    plots = tmp_path / "out" / "evaluation" / "ds=2026-11-20"
    plot_roc(pd.DataFrame({"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]}), plots / "roc.png", auc=0.8)
    (plots / "_SUCCESS").touch()
    neighbours = tmp_path / "out" / "neighbours" / "ds=2026-11-20"
    neighbours.mkdir(parents=True)
    pq.write_table(pa.table({"doc_id": [0, 0], "neighbour_id": [7, 3], "rank": [1, 2]}), neighbours / "p.parquet")
    step = {"job": "x", "status": "ran", "reason": "not committed", "duration_s": 1.5, "inputs": [], "error": None}
    return {
        "pipeline": "demo",
        "run_id": "r1",
        "run_date": "2026-11-20",
        "mode": "session",
        "status": "succeeded",
        "started_at": "2026-11-20T00:00:00+00:00",
        "duration_s": 3.0,
        "version": "0.1.0",
        "git": None,
        "definition": "conf/pipelines/demo.yaml",
        "root": str(tmp_path / "out"),
        "steps": [
            {
                **step,
                "name": "evaluate",
                "outputs": [{"path": str(plots), "rows": None, "committed": True}],
                "metrics": {
                    "job": "evaluate",
                    "duration_s": 1.0,
                    "spark": {"master": "local[2]"},
                    "evaluation": {"roc_auc": 0.8},
                },
            },
            {
                **step,
                "name": "search",
                "metrics": PQ_METRICS,
                "outputs": [{"path": str(neighbours), "rows": 2, "committed": True}],
            },
            {
                **step,
                "name": "publish",
                "status": "failed",
                "error": "no space left",
                "metrics": None,
                "outputs": [{"path": str(tmp_path / "out" / "published"), "committed": False}],
            },
        ],
    }


def test_page_holds_tables_plots_and_samples(tmp_path):
    manifest = manifest_with_outputs(tmp_path)
    page = render_html(manifest)
    assert "<title>demo 2026-11-20</title>" in page and "<h2>Key metrics</h2>" in page
    assert page.count("<figure>") == 2 and 'alt="roc.png"' in page and 'alt="search_at_k.png"' in page
    assert "data:image/png;base64,iVBORw0KGgo" in page
    assert "<summary>run details (Spark, timing, version)</summary>" in page and "spark.master" in page
    assert "<th>neighbour_id (by rank)</th>" in page and "<td>[7, 3]</td>" in page
    assert "<script" not in page
    assert '<p class="status-failed">Error: no space left</p>' in page and page.count("<section") == 3
    run = tmp_path / "_runs" / "r1"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(manifest))
    report = Path(write_report(run / "manifest.json"))
    assert report == run / "report.html" and (run / "plots" / "search_at_k.png").is_file()
