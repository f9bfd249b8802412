"""PNG plots of ROC and precision-recall curves from their (already downsampled) point tables.

Uses matplotlib's object API with the Agg canvas: no pyplot state, no display needed.
"""
from __future__ import annotations

import os

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


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


def plot_pr(table: pd.DataFrame, path: str | os.PathLike, *, average_precision: float | None = None,
            base_rate: float | None = None) -> str:
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
