"""The demo pipeline end to end on tiny data, in the test session."""
import json
from pathlib import Path

from pipelines.cli import run_job
from pipelines.demo import demo_job

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_reports(spark, tmp_path, capsys):
    out = tmp_path / "demo"
    code = run_job("demo", str(ROOT / "jobs" / "demo.py"), demo_job, "demo",
                   ["--set", "size=0.05", "--set", "malformed_fraction=0.005", "--set", f"output.path={out}"])
    printed = capsys.readouterr().out
    assert code == 0
    report = (out / "report" / "report.md").read_text()
    assert report.startswith("# Demo pipeline report")
    summary = json.loads((out / "report" / "summary.json").read_text())
    metrics = json.loads((out / "report" / "_metrics.json").read_text())
    for key, m in metrics["ingest"].items():
        assert m["rows_in"] == m["rows_good"] + m["rows_quarantined"], key
        assert spark.read.parquet(str(out / "clean" / key)).count() == m["rows_good"]
    assert metrics["ingest"]["clicks"]["rows_in"] == 2500
    assert summary["clicks"]["rows"] == metrics["ingest"]["clicks"]["rows_good"]
    assert f"report: {out / 'report'}" in printed
    evaluation = metrics["evaluation"]
    assert 0.5 < evaluation["roc_auc"] <= 1 and evaluation["rows"] > 0
    assert Path(evaluation["roc_plot"]).read_bytes().startswith(b"\x89PNG")
    assert "## Evaluation of the GBDT+LR click model" in printed and "roc auc:" in printed
