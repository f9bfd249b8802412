"""One static HTML page per pipeline run, from its manifest and each step's committed outputs.

The page holds the run's identity, a table of steps (status, timing, rows), the run's key quality metrics
(AUC, NDCG@k, recall@k, ... of every step) and per step:

- its metrics as tables: scalars flattened to dotted names; sibling mappings with the same keys (models x
  metrics, thresholds x counts) as one matrix; lists of records (feature importances, calibration bins) as
  rows; Spark and timing details folded away;
- its plots: the PNGs found in its outputs (ROC, PR, calibration, recall@k, ...) and a "metrics at k" curve
  drawn here from metric families such as ``r1, r10, r100`` or ``recall@5, recall@10``;
- a sample of each tabular output (keywords, similar documents, nearest words or items, scores), lists
  shortened.

Images are embedded as data URIs: the page is a single self-contained file with no script.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipelines.fs import local_file
from pipelines.tracking import log_report

REPORT_NAME = "report.html"
PLOTS_DIR = "plots"  # beside the report: the PNGs the report draws itself
PLOT_ORDER = {"roc": 0, "pr": 1, "calibration": 2}  # then the other PNGs by name
SAMPLE_ROWS = 8
SAMPLE_READ_FACTOR = 10  # rows read per row shown: to prefer complete rows and to group ranked lists
MAX_COLUMNS = 10
MAX_LIST_ITEMS = 6
MAX_RECORDS = 12
_SKIP_METRICS = {"outputs", "rows_out", "job", "run_date"}  # shown in the outputs table or the header
_RUN_DETAILS = {"version", "started_at", "duration_s", "spark"}  # folded away under "run details"
# Leaf names of quality figures for the run's key metrics; paths through these keys are details, not headlines.
_HEADLINE = re.compile(
    r"^(auc|roc_auc|pr_auc|gauc|log_loss|normalized_entropy|calibration|accuracy|.*_accuracy|"
    r"spearman|.*_spearman|same_category_share|chance|mse|.*recall.*|.*ndcg.*|.*hit_rate.*|"
    r"map_at_k|mrr|precision_at_k|r\d+|.*@\d+)$"
)
_NOT_HEADLINE = {"at_threshold", "best_f1", "chosen", "calibration_bins", "ingest", "datagen", "rows_in"}
# A metric family at several cut-offs: its name with one integer replaced by {k} names a ranking measure.
_INTEGER = re.compile(r"(?<![0-9.])\d+(?![0-9.])")
_AT_K_FAMILY = re.compile(r"recall|ndcg|precision|hit_?rate|mrr|(?:^|[._])map|(?:^|[._])r\{k\}")

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-succeeded, .status-ran { color: #17632a; } .status-failed { color: #a31515; font-weight: bold; }
.status-skipped { color: #666; } .status-running, .status-pending { color: #8a6d00; }
figure { display: inline-block; margin: 0 1em 1em 0; } img { max-width: 520px; border: 1px solid #ddd; }
section { border-top: 1px solid #ddd; margin-top: 2em; }
details { margin: 0.5em 0 1em; } summary { cursor: pointer; color: #555; }
code { font-size: 0.9em; }
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def short_text(value: Any) -> str:
    """A value as table text: floats to 4 significant digits, long lists cut to their first items."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        items = [short_text(v) for v in value[:MAX_LIST_ITEMS]]
        more = f", ... ({len(value)} in all)" if len(value) > MAX_LIST_ITEMS else ""
        return f"[{', '.join(items)}{more}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {short_text(v)}" for k, v in value.items()) + "}"
    return "" if value is None else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{_esc(value)}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.6g}</td>'
    return f"<td>{_esc(short_text(value))}</td>"


def table(header: list[str], rows: Iterable[Iterable[Any]], cls: str = "") -> str:
    """An HTML table; numbers right-aligned, lists and mappings shortened."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def flatten(metrics: Mapping[str, Any], prefix: str = "", depth: int = 4) -> list[tuple[str, Any]]:
    """Scalars of a nested mapping as ``(dotted.name, value)``; long lists are summarised."""
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 0:
            rows += flatten(value, f"{name}.", depth - 1)
        elif isinstance(value, list):
            scalar = all(_scalar(v) for v in value)
            rows.append((name, json.dumps(value) if scalar and len(value) <= 10 else f"[{len(value)} items]"))
        elif isinstance(value, dict):
            rows.append((name, f"{{{len(value)} keys}}"))
        else:
            rows.append((name, value))
    return rows


def metric_blocks(metrics: Mapping[str, Any], prefix: str = "") -> tuple[list[tuple[str, Any]], list[str]]:
    """Scalar rows ``(dotted.name, value)`` and extra tables: a matrix for sibling mappings of scalars with the
    same keys (e.g. models x metrics), rows for a list of records with the same keys (e.g. feature importances)."""
    scalars: list[tuple[str, Any]] = []
    tables: list[str] = []
    groups: dict[tuple[str, ...], list[str]] = {}
    for key, value in metrics.items():
        if isinstance(value, dict) and value and all(_scalar(v) for v in value.values()):
            groups.setdefault(tuple(value), []).append(key)
    matrix_keys = {k for members in groups.values() if len(members) > 1 for k in members}
    for columns, members in groups.items():
        if len(members) > 1:
            tables.append(
                f"<h4>{_esc(prefix.rstrip('.') or 'metrics')}</h4>"
                + table(["", *columns], [[m, *metrics[m].values()] for m in members], "metrics")
            )
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if key in matrix_keys:
            continue
        if isinstance(value, dict) and value:
            more_scalars, more_tables = metric_blocks(value, f"{name}.")
            scalars += more_scalars
            tables += more_tables
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) for v in value)
            and len({tuple(v) for v in value}) == 1
        ):
            more = f" (first {MAX_RECORDS} of {len(value)})" if len(value) > MAX_RECORDS else ""
            tables.append(
                f"<h4>{_esc(name)}{more}</h4>"
                + table(list(value[0]), [list(v.values()) for v in value[:MAX_RECORDS]], "metrics")
            )
        else:
            scalars.append((name, value))
    return scalars, tables


def headline_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The quality figures of one step's metrics (AUC, log loss, recall@k, NDCG, Spearman, ...) by dotted name."""
    return [
        (name, value)
        for name, value in flatten(metrics)
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and _HEADLINE.match(name.rsplit(".", 1)[-1])
        and not _NOT_HEADLINE.intersection(name.split("."))
    ]


def key_metrics(steps: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The run's headline figures as one table: a row per step and subject (``test.gbdt_lr``, ``evaluation``),
    a column per measure (``roc_auc``, ``recall@10``, ...)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for step in steps:
        for name, value in headline_metrics(step.get("metrics") or {}):
            subject, _, measure = name.rpartition(".")
            rows.setdefault((step["name"], subject), {})[measure] = value
    columns = list(dict.fromkeys(m for values in rows.values() for m in values))
    return ["step", "of", *columns], [
        [step, subject, *[values.get(c) for c in columns]] for (step, subject), values in rows.items()
    ]


def at_k_curves(metrics: Mapping[str, Any]) -> dict[str, dict[int, float]]:
    """Families of one metric at several cut-offs k, e.g. ``evaluation.r1/r10/r100`` -> ``evaluation.r@k``,
    ``recall@5/recall@10`` -> ``recall@k``; only ranking measures (recall, NDCG, precision, hit rate, MAP, MRR)."""
    families: dict[str, dict[int, float]] = {}
    for name, value in flatten(metrics):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        for match in _INTEGER.finditer(name):
            template = f"{name[: match.start()]}{{k}}{name[match.end() :]}"
            if _AT_K_FAMILY.search(template):
                families.setdefault(template, {})[int(match.group())] = float(value)
    curves = {}
    for template, points in families.items():
        if len(points) > 1:
            label = re.sub(r"(?<=[A-Za-z])\{k\}", "@k", template).replace("{k}", "k")
            curves[label] = points
    return curves


def _png_figure(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{_esc(png.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(png.name)} <small>({_esc(caption)})</small></figcaption></figure>"
    )


def _images(paths: list[str]) -> list[str]:
    figures = []
    for path in paths:
        local = local_file(path)
        if local is None or not os.path.isdir(local):
            continue
        pngs = sorted(Path(local).glob("*.png"), key=lambda png: (PLOT_ORDER.get(png.stem, len(PLOT_ORDER)), png.name))
        figures += [_png_figure(png, local) for png in pngs]
    return figures


def _is_model(local: str) -> bool:
    """A Spark ML model directory (``metadata/`` beside its data): not a table to sample."""
    return os.path.isdir(os.path.join(local, "metadata"))


def sample_rows(path: str, limit: int = SAMPLE_ROWS) -> tuple[list[str], list[list[Any]]] | None:
    """A few rows of a Parquet or CSV output directory (read with pyarrow, no Spark), or None.

    Of the first rows, those with every column filled come first (a query without an answer says little). A
    long table ranked per key (a ``rank`` column: keywords, neighbours, candidates) shows one row per key, its
    other columns as lists in rank order."""
    local = local_file(path)
    if local is None or not os.path.isdir(local) or _is_model(local):
        return None
    files = [p for p in Path(local).rglob("*") if p.is_file() and not p.name.startswith(("_", "."))]
    fmt = next(
        (f for f, ext in (("parquet", ".parquet"), ("csv", ".csv")) if any(p.suffix == ext for p in files)), None
    )
    if fmt is None:
        return None
    import pyarrow.dataset as ds

    try:
        head = ds.dataset(local, format=fmt, exclude_invalid_files=False, ignore_prefixes=["_", "."]).head(
            limit * SAMPLE_READ_FACTOR
        )
    except Exception:  # noqa: BLE001 - a sample is a nicety; an unreadable output just has none
        return None
    columns = head.column_names[:MAX_COLUMNS]
    data = head.select(columns).to_pylist()
    if "rank" in columns[1:]:
        return ranked_lists(columns, data, limit)
    data.sort(key=lambda row: any(v is None for v in row.values()))
    return columns, [[row[c] for c in columns] for row in data[:limit]]


def ranked_lists(columns: list[str], data: list[dict[str, Any]], limit: int) -> tuple[list[str], list[list[Any]]]:
    """Rows ``(key, rank, a, b)`` as one row per key (the first column) with ``a`` and ``b`` as lists by rank."""
    key, values = columns[0], [c for c in columns[1:] if c != "rank"]
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in data:
        if row[key] in groups or len(groups) < limit:
            groups.setdefault(row[key], []).append(row)
    rows = []
    for name, members in groups.items():
        members.sort(key=lambda r: (r["rank"] is None, r["rank"]))
        rows.append([name, *[[m[c] for m in members] for c in values]])
    return [key, *[f"{c} (by rank)" for c in values]], rows


def _samples(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for output in outputs:
        sample = sample_rows(output["path"])
        if sample:
            total = f" ({output['rows']:,} rows in all)" if output.get("rows") else ""
            parts.append(
                f"<h4>Sample of <code>{_esc(output['path'])}</code>{total}</h4>" + table(sample[0], sample[1], "sample")
            )
    return "".join(parts)


def _metrics_section(metrics: Mapping[str, Any]) -> str:
    quality = {k: v for k, v in metrics.items() if k not in _SKIP_METRICS | _RUN_DETAILS}
    details = {k: v for k, v in metrics.items() if k in _RUN_DETAILS}
    parts = []
    if quality:
        scalars, tables = metric_blocks(quality)
        parts.append("<h3>Metrics</h3>")
        if scalars:
            parts.append(table(["metric", "value"], scalars, "metrics"))
        parts += tables
    if details:
        parts.append(
            "<details><summary>run details (Spark, timing, version)</summary>"
            + table(["", ""], flatten(details), "details")
            + "</details>"
        )
    return "".join(parts)


def _step_section(step: dict[str, Any], plot_dir: Path) -> str:
    outputs = step.get("outputs") or []
    parts = [
        f'<section id="step-{_esc(step["name"])}"><h2>{_esc(step["name"])} '
        f'<small>(job {_esc(step["job"])}, <span class="status-{_esc(step["status"])}">'
        f"{_esc(step['status'])}</span>)</small></h2>"
    ]
    if step.get("error"):
        parts.append(f'<p class="status-failed">Error: {_esc(step["error"])}</p>')
    parts.append(
        table(["output", "rows", "committed"], [[o["path"], o.get("rows"), o.get("committed")] for o in outputs])
    )
    if step.get("inputs"):
        parts.append(
            table(
                ["input", "files", "bytes", "newest mtime", "producer"],
                [
                    [
                        i["path"],
                        i.get("files"),
                        i.get("bytes"),
                        i.get("newest_mtime"),
                        json.dumps(i.get("producer")) if i.get("producer") else "",
                    ]
                    for i in step["inputs"]
                ],
            )
        )
    metrics = step.get("metrics") or {}
    parts.append(_metrics_section(metrics))
    figures = _images([o["path"] for o in outputs])
    curves = at_k_curves({k: v for k, v in metrics.items() if k not in _SKIP_METRICS | _RUN_DETAILS})
    if curves:
        from pipelines.metrics.plots import plot_at_k

        plot_dir.mkdir(parents=True, exist_ok=True)
        png = Path(plot_at_k(curves, plot_dir / f"{step['name']}_at_k.png", title=f"{step['name']}: metrics at k"))
        figures.append(_png_figure(png, "drawn by the report from the step's metrics"))
    if figures:
        parts.append(f'<h3>Plots</h3><div class="plots">{"".join(figures)}</div>')
    parts.append(_samples(outputs))
    return "".join(parts) + "</section>"


def render_html(manifest: dict[str, Any], plot_dir: str | os.PathLike | None = None) -> str:
    """The report page of one run; plots the report draws itself are written to ``plot_dir`` (default: a
    temporary directory) and embedded."""
    if plot_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return render_html(manifest, tmp)
    plots = Path(plot_dir)
    git = manifest.get("git") or {}
    title = f"{manifest['pipeline']} {manifest['run_date']}"
    meta = [
        ["status", manifest["status"]],
        ["run id", manifest["run_id"]],
        ["mode", manifest["mode"]],
        ["started", manifest["started_at"]],
        ["duration (s)", manifest.get("duration_s")],
        ["version", manifest["version"]],
        ["git revision", f"{git.get('revision', 'n/a')}{' (dirty)' if git.get('dirty') else ''}"],
        ["definition", manifest["definition"]],
        ["root", manifest["root"]],
    ]
    steps = [
        [
            i,
            s["name"],
            s["job"],
            s["status"],
            s["reason"],
            s.get("duration_s"),
            sum(o.get("rows") or 0 for o in s.get("outputs") or []),
        ]
        for i, s in enumerate(manifest["steps"], 1)
    ]
    key_header, key_rows = key_metrics(manifest["steps"])
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>Pipeline {_esc(manifest['pipeline'])} &mdash; run date {_esc(manifest['run_date'])} "
            f'<span class="status-{_esc(manifest["status"])}">{_esc(manifest["status"])}</span></h1>',
            table(["", ""], meta, "meta"),
            "<h2>Steps</h2>",
            table(["#", "step", "job", "status", "why", "duration (s)", "rows out"], steps, "steps"),
            *(["<h2>Key metrics</h2>", table(key_header, key_rows, "key-metrics")] if key_rows else []),
            *[_step_section(s, plots) for s in manifest["steps"]],
            "</body></html>",
            "",
        ]
    )


def write_report(manifest_path: str | os.PathLike) -> str:
    """Write ``report.html`` (and the plots it draws, under ``plots/``) beside the manifest, and add it to the run's
    MLflow run when the manifest names one; returns its path."""
    path = Path(manifest_path)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    out = path.with_name(REPORT_NAME)
    out.write_text(render_html(manifest, path.with_name(PLOTS_DIR)), encoding="utf-8")
    log_report(manifest, out)
    return str(out)
