"""PNG plots of evaluation results from small, already aggregated tables: ROC and precision-recall curves,
a reliability diagram (calibration), metrics at several cut-offs k (recall@k, NDCG@k, ...) and a multiclass
confusion matrix.

Uses matplotlib's object API with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

_TAB20 = colormaps["tab20"]


def _save(figure: Figure, path: str | os.PathLike) -> str:
    target = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    figure.savefig(target, dpi=100)
    return target


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(5, 5), layout="tight")
    axes = figure.subplots()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
    axes.grid(alpha=0.3)
    return figure, axes


def plot_roc(table: pd.DataFrame, path: str | os.PathLike, *, auc: float | None = None) -> str:
    """Draw ``table`` (columns fpr, tpr, as from ``roc_curve``) to a PNG at ``path``; returns the path."""
    title = "ROC curve" if auc is None else f"ROC curve (AUC {auc:.4f})"
    figure, axes = _axes(title, "false positive rate", "true positive rate")
    axes.plot(table["fpr"], table["tpr"], label="model")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_pr(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    average_precision: float | None = None,
    base_rate: float | None = None,
) -> str:
    """Draw ``table`` (columns recall, precision, as from ``pr_curve``) to a PNG at ``path``; returns the path.

    ``base_rate`` (the positive share) draws the precision of a random ranking.
    """
    title = "Precision-recall" if average_precision is None else f"Precision-recall (AP {average_precision:.4f})"
    figure, axes = _axes(title, "recall", "precision")
    axes.plot(table["recall"], table["precision"], drawstyle="steps-pre", label="model")
    if base_rate is not None:
        axes.axhline(base_rate, linestyle="--", color="grey", label="random")
    axes.legend(loc="lower left")
    return _save(figure, path)


def plot_calibration(
    points: Sequence[Mapping[str, float]], path: str | os.PathLike, *, calibration: float | None = None
) -> str:
    """Reliability diagram of ``points`` (dicts with low, high, weight, predicted, observed, as from
    ``calibration_bins_of``): observed positive rate against mean prediction per score bin, the diagonal
    being perfect calibration; bars show each bin's share of the weight. Returns the path."""
    title = "Calibration" if calibration is None else f"Calibration (predicted / observed {calibration:.3f})"
    figure, axes = _axes(title, "mean predicted probability", "observed positive rate")
    total = sum(p["weight"] for p in points) or 1.0
    share = axes.twinx()
    share.bar(
        [(p["low"] + p["high"]) / 2 for p in points],
        [p["weight"] / total for p in points],
        width=[0.9 * (p["high"] - p["low"]) for p in points],
        color="grey",
        alpha=0.2,
    )
    share.set(ylim=(0, 1), ylabel="share of rows (bars)")
    axes.set_zorder(share.get_zorder() + 1)
    axes.patch.set_visible(False)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.plot([p["predicted"] for p in points], [p["observed"] for p in points], marker="o", label="model")
    axes.legend(loc="upper left")
    return _save(figure, path)


_MEASURE = re.compile(r"recall|ndcg|precision|hit_?rate|mrr|map|(?<![A-Za-z])r(?=@k)", re.IGNORECASE)


def at_k_panels(curves: Mapping[str, Mapping[int, float]]) -> dict[str, dict[str, Mapping[int, float]]]:
    """Curves grouped by the measure their name holds (recall, ndcg, ...), each named by the rest of its name:
    ``{"recall@k": {"ours": ..., "popularity": ...}, "ndcg@k": {...}}``."""
    panels: dict[str, dict[str, Mapping[int, float]]] = {}
    for name, points in curves.items():
        found = _MEASURE.search(name)
        measure = f"{found.group().lower()}@k" if found else name
        series = re.sub(r"[._]+$|^[._]+", "", name[: found.start()] if found else "") or name
        panels.setdefault(measure, {})[series] = points
    dotted = [n for panel in panels.values() for n in panel if "." in n]
    common = os.path.commonprefix(dotted) if len(dotted) > 1 else ""
    common = common[: common.rfind(".") + 1]
    if common:  # a shared dotted prefix ("evaluation.") says nothing
        panels = {m: {n.removeprefix(common) or n: p for n, p in panel.items()} for m, panel in panels.items()}
    return panels


def plot_at_k(
    curves: Mapping[str, Mapping[int, float]], path: str | os.PathLike, *, title: str = "Metrics at k"
) -> str:
    """Metrics at each cut-off k (e.g. ``{"ours.recall@k": {1: 0.3, 10: 0.8}, "ours.ndcg@k": ...}``): one panel
    per measure, one colour per series across the panels, the legend below them; a log k axis when the cut-offs
    span a factor of 10 or more. Returns the path."""
    panels = at_k_panels(curves)
    names = list(dict.fromkeys(series for panel in panels.values() for series in panel))
    colours = {n: (f"C{i}" if len(names) <= 10 else _TAB20(i % 20)) for i, n in enumerate(names)}
    figure = Figure(figsize=(4.2 * len(panels) + 0.8, 4.6 + 0.25 * ((len(names) + 2) // 3)), layout="constrained")
    figure.suptitle(title)
    for axes, (measure, series) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels.items()):
        ks = sorted({k for points in series.values() for k in points})
        top = max((v for points in series.values() for v in points.values()), default=0)
        axes.set(title=measure, xlabel="k", ylim=(0, min(1.02, top * 1.1) if top > 0 else 1.02))
        if ks and ks[-1] >= 10 * max(ks[0], 1):
            axes.set_xscale("log")
        for name, points in series.items():
            order = sorted(points)
            axes.plot(order, [points[k] for k in order], marker="o", markersize=3, color=colours[name], label=name)
        axes.set_xticks(ks, [str(k) for k in ks])
        axes.grid(alpha=0.3)
    handles: dict[str, Any] = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside lower center",
        ncol=min(3, len(handles)),
        fontsize=8,
        frameon=False,
    )
    return _save(figure, path)


def confusion_png(labels: Sequence[Any], matrix: Sequence[Sequence[float]], title: str = "Confusion matrix") -> bytes:
    """The confusion matrix (rows: true class, columns: predicted) normalised by row, as PNG bytes: each row shows
    where a class's documents went (its diagonal cell is the class's recall). The figure grows with the number
    of classes so 20 names stay readable; cells carry their share when there are at most 30 classes."""
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(labels)
    side = min(max(5.0, 0.45 * n + 2.5), 30.0)
    figure = Figure(figsize=(side + 1.0, side), layout="tight")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    names = [str(label) for label in labels]
    font = 9 if n <= 12 else 7
    axes.set_xticks(range(n), names, rotation=90, fontsize=font)
    axes.set_yticks(range(n), names, fontsize=font)
    axes.set(title=title, xlabel="predicted class", ylabel="true class")
    if n <= 30:
        for (i, j), share in np.ndenumerate(shares):
            if share >= 0.005:
                axes.text(
                    j,
                    i,
                    f"{share:.2f}",
                    ha="center",
                    va="center",
                    fontsize=font - 1,
                    color="white" if share > 0.5 else "black",
                )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
