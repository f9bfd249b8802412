"""One static HTML page per pipeline run, from its manifest and each step's committed outputs.

The page holds the run's identity, a table of steps (status, timing, rows), and per step its metrics
(scalars flattened to dotted names), input fingerprints, the PNG plots found in its outputs embedded as
data URIs (the page is a single self-contained file) and a few sample rows of each tabular output.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any, Iterable

from pipelines.orchestration.plan import local_path

REPORT_NAME = "report.html"
SAMPLE_ROWS = 5
MAX_COLUMNS = 10
_SKIP_METRICS = {"outputs", "rows_out", "job", "run_date"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-succeeded, .status-ran { color: #17632a; } .status-failed { color: #a31515; font-weight: bold; }
.status-skipped { color: #666; } .status-running, .status-pending { color: #8a6d00; }
figure { display: inline-block; margin: 0 1em 1em 0; } img { max-width: 520px; border: 1px solid #ddd; }
code { font-size: 0.9em; }
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{_esc(value)}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.6g}</td>'
    return f"<td>{_esc(value)}</td>"


def table(header: list[str], rows: Iterable[Iterable[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def flatten(metrics: dict[str, Any], prefix: str = "", depth: int = 4) -> list[tuple[str, Any]]:
    """Scalars of a nested mapping as ``(dotted.name, value)``; long lists are summarised."""
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 0:
            rows += flatten(value, f"{name}.", depth - 1)
        elif isinstance(value, list):
            scalar = all(not isinstance(v, (dict, list)) for v in value)
            rows.append((name, json.dumps(value) if scalar and len(value) <= 10 else f"[{len(value)} items]"))
        elif isinstance(value, dict):
            rows.append((name, f"{{{len(value)} keys}}"))
        else:
            rows.append((name, value))
    return rows


def _images(paths: list[str]) -> str:
    figures = []
    for path in paths:
        local = local_path(path)
        if local is None or not os.path.isdir(local):
            continue
        for png in sorted(Path(local).glob("*.png")):
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            figures.append(f'<figure><img alt="{_esc(png.name)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{_esc(png.name)} <small>({_esc(local)})</small></figcaption></figure>")
    return "".join(figures)


def sample_rows(path: str, limit: int = SAMPLE_ROWS) -> tuple[list[str], list[list[Any]]] | None:
    """The first rows of a Parquet or CSV output directory (read with pyarrow, no Spark), or None."""
    local = local_path(path)
    if local is None or not os.path.isdir(local):
        return None
    files = [p for p in Path(local).rglob("*") if p.is_file() and not p.name.startswith(("_", "."))]
    fmt = next((f for f, ext in (("parquet", ".parquet"), ("csv", ".csv")) if any(p.suffix == ext for p in files)),
               None)
    if fmt is None:
        return None
    import pyarrow.dataset as ds

    try:
        head = ds.dataset(local, format=fmt, exclude_invalid_files=False, ignore_prefixes=["_", "."]).head(limit)
    except Exception:  # noqa: BLE001 - a sample is a nicety; an unreadable output just has none
        return None
    columns = head.column_names[:MAX_COLUMNS]
    data = head.select(columns).to_pylist()
    return columns, [[row[c] for c in columns] for row in data]


def _samples(paths: list[str]) -> str:
    parts = []
    for path in paths:
        sample = sample_rows(path)
        if sample:
            parts.append(f"<h4>Sample of <code>{_esc(path)}</code></h4>"
                         + table(sample[0], [[str(v) if isinstance(v, (list, dict)) else v for v in r]
                                             for r in sample[1]], "sample"))
    return "".join(parts)


def _step_section(step: dict[str, Any]) -> str:
    outputs = [o["path"] for o in step.get("outputs") or []]
    parts = [f'<section id="step-{_esc(step["name"])}"><h2>{_esc(step["name"])} '
             f'<small>(job {_esc(step["job"])}, <span class="status-{_esc(step["status"])}">'
             f'{_esc(step["status"])}</span>)</small></h2>']
    if step.get("error"):
        parts.append(f'<p class="status-failed">Error: {_esc(step["error"])}</p>')
    parts.append(table(["output", "rows", "committed"],
                       [[o["path"], o.get("rows"), o.get("committed")] for o in step.get("outputs") or []]))
    if step.get("inputs"):
        parts.append(table(["input", "files", "bytes", "newest mtime", "producer"],
                           [[i["path"], i.get("files"), i.get("bytes"), i.get("newest_mtime"),
                             json.dumps(i.get("producer")) if i.get("producer") else ""] for i in step["inputs"]]))
    metrics = {k: v for k, v in (step.get("metrics") or {}).items() if k not in _SKIP_METRICS}
    if metrics:
        parts.append("<h3>Metrics</h3>" + table(["metric", "value"], flatten(metrics), "metrics"))
    images = _images(outputs)
    if images:
        parts.append(f"<h3>Plots</h3><div class=\"plots\">{images}</div>")
    parts.append(_samples(outputs))
    return "".join(parts) + "</section>"


def render_html(manifest: dict[str, Any]) -> str:
    git = manifest.get("git") or {}
    title = f"{manifest['pipeline']} {manifest['run_date']}"
    meta = [["status", manifest["status"]], ["run id", manifest["run_id"]], ["mode", manifest["mode"]],
            ["started", manifest["started_at"]], ["duration (s)", manifest.get("duration_s")],
            ["version", manifest["version"]],
            ["git revision", f"{git.get('revision', 'n/a')}{' (dirty)' if git.get('dirty') else ''}"],
            ["definition", manifest["definition"]], ["root", manifest["root"]]]
    steps = [[i, s["name"], s["job"], s["status"], s["reason"], s.get("duration_s"),
              sum(o.get("rows") or 0 for o in s.get("outputs") or [])]
             for i, s in enumerate(manifest["steps"], 1)]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f'<h1>Pipeline {_esc(manifest["pipeline"])} &mdash; run date {_esc(manifest["run_date"])} '
        f'<span class="status-{_esc(manifest["status"])}">{_esc(manifest["status"])}</span></h1>',
        table(["", ""], meta, "meta"),
        "<h2>Steps</h2>",
        table(["#", "step", "job", "status", "why", "duration (s)", "rows out"], steps, "steps"),
        *[_step_section(s) for s in manifest["steps"]],
        "</body></html>", ""])


def write_report(manifest_path: str | os.PathLike) -> str:
    """Write ``report.html`` beside the manifest; returns its path."""
    path = Path(manifest_path)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    out = path.with_name(REPORT_NAME)
    out.write_text(render_html(manifest), encoding="utf-8")
    return str(out)
