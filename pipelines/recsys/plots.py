"""The recall@k curves of the compared methods as a PNG."""

from __future__ import annotations

import io

from matplotlib.figure import Figure


def recall_curve_png(curves: dict[str, list[float]], title: str) -> bytes:
    """Recall@k for k = 1..len(curve) of each method, one line each."""
    figure = Figure(figsize=(6.5, 4.2))
    axes = figure.subplots()
    for method, curve in sorted(curves.items(), key=lambda mc: -mc[1][-1]):
        axes.plot(range(1, len(curve) + 1), curve, label=f"{method} (@10 {curve[min(9, len(curve) - 1)]:.3f})")
    axes.set_xlabel("k")
    axes.set_ylabel("recall@k (held-out last item)")
    axes.set_title(title)
    axes.set_xscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()
