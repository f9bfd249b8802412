"""Measuring one benchmark stage on a live SparkSession, and reading how the figures grow with the data.

:class:`StageProbe` is a context manager around one stage: wall time; peak driver memory (the driver's
Python RSS and the JVM heap in use, both sampled by a background thread); shuffle bytes read and written
and task result bytes (what tasks send back to the driver: collects, counts, aggregates) summed over the
Spark stages that ran inside it; and bytes broadcast from Python.

Where the Spark figures come from: the driver's ``AppStatusStore`` through py4j, the same store the REST
endpoint ``/api/v1/applications/<app>/stages`` serves (``shuffleReadBytes``, ``shuffleWriteBytes``,
``resultSize``), read directly so that it also works with ``spark.ui.enabled=false`` (the tests' session).
Spark stages count when their id is above the highest id seen when the probe started, so one probe runs at
a time. The store keeps ``spark.ui.retainedStages`` stages (1000 by default): raise it for long stages.

Broadcast bytes count what Python broadcasts: every ``SparkContext.broadcast`` payload (pickled size)
during the probe, which includes PySpark's own broadcast of UDF commands over 1 MB. Broadcasts made
inside the JVM (broadcast joins, MLlib's) are not seen. In local mode the JVM heap is the executors' too.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pyspark import SparkContext
from pyspark.sql import SparkSession

PAGE = os.sysconf("SC_PAGE_SIZE")
FIGURES = (
    "seconds",
    "driver_peak_bytes",
    "shuffle_read_bytes",
    "shuffle_write_bytes",
    "broadcast_bytes",
    "collected_bytes",
)


@dataclass
class StageFigures:
    """What one stage cost; ``driver_peak_bytes`` is the Python RSS peak plus the JVM heap-used peak."""

    seconds: float = 0.0
    python_rss_peak_bytes: int = 0
    jvm_heap_peak_bytes: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    broadcast_bytes: int = 0
    collected_bytes: int = 0
    spark_stages: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def driver_peak_bytes(self) -> int:
        return self.python_rss_peak_bytes + self.jvm_heap_peak_bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "driver_peak_bytes": self.driver_peak_bytes,
            "python_rss_peak_bytes": self.python_rss_peak_bytes,
            "jvm_heap_peak_bytes": self.jvm_heap_peak_bytes,
            "shuffle_read_bytes": self.shuffle_read_bytes,
            "shuffle_write_bytes": self.shuffle_write_bytes,
            "broadcast_bytes": self.broadcast_bytes,
            "collected_bytes": self.collected_bytes,
            "spark_stages": self.spark_stages,
            **self.extra,
        }


def python_rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _stage_rows(sc: SparkContext) -> list[tuple[int, int, int, int]]:
    """``(stage id, shuffle read, shuffle write, result bytes)`` of every stage attempt the store keeps."""
    jsc = sc._jsc.sc()
    jsc.listenerBus().waitUntilEmpty()
    no_quantiles = sc._gateway.new_array(sc._jvm.double, 0)
    stages = jsc.statusStore().stageList(None, False, False, no_quantiles, sc._jvm.java.util.ArrayList())
    rows = []
    it = stages.iterator()
    while it.hasNext():
        s = it.next()
        rows.append((s.stageId(), s.shuffleReadBytes(), s.shuffleWriteBytes(), s.resultSize()))
    return rows


class _BroadcastCounter:
    """Adds up the pickled size of every ``SparkContext.broadcast`` made while installed."""

    def __init__(self) -> None:
        self.bytes = 0
        self._original = SparkContext.broadcast

    def __enter__(self) -> "_BroadcastCounter":
        original, counter = self._original, self

        def counting(sc: SparkContext, value: Any) -> Any:
            made = original(sc, value)
            path = getattr(made, "_path", None)
            if path and os.path.exists(path):
                counter.bytes += os.path.getsize(path)
            return made

        SparkContext.broadcast = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        SparkContext.broadcast = self._original  # type: ignore[method-assign]


class StageProbe:
    """``with StageProbe(spark) as probe: ...``; then ``probe.figures``. Not re-entrant."""

    def __init__(self, spark: SparkSession, interval_s: float = 0.05) -> None:
        self.sc = spark.sparkContext
        self.interval_s = interval_s
        self.figures = StageFigures()
        self._stop = threading.Event()
        self._runtime = self.sc._jvm.java.lang.Runtime.getRuntime()

    def _heap_used(self) -> int:
        return self._runtime.totalMemory() - self._runtime.freeMemory()

    def _sample(self) -> None:
        f = self.figures
        f.python_rss_peak_bytes = max(f.python_rss_peak_bytes, python_rss_bytes())
        f.jvm_heap_peak_bytes = max(f.jvm_heap_peak_bytes, self._heap_used())

    def _run_sampler(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "StageProbe":
        self._seen = max((row[0] for row in _stage_rows(self.sc)), default=-1)
        self._broadcasts = _BroadcastCounter().__enter__()
        self._sampler = threading.Thread(target=self._run_sampler, name="stage-probe", daemon=True)
        self._sample()
        self._sampler.start()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.figures.seconds = time.perf_counter() - self._started
        self._stop.set()
        self._sampler.join()
        self._sample()
        self._broadcasts.__exit__()
        self.figures.broadcast_bytes = self._broadcasts.bytes
        new = [row for row in _stage_rows(self.sc) if row[0] > self._seen]
        self.figures.spark_stages = len({row[0] for row in new})
        self.figures.shuffle_read_bytes = sum(row[1] for row in new)
        self.figures.shuffle_write_bytes = sum(row[2] for row in new)
        self.figures.collected_bytes = sum(row[3] for row in new)


def growth_exponent(factors: Sequence[float], values: Sequence[float]) -> float | None:
    """Log-log slope between the two largest factors: 1 means linear, 2 quadratic; None if undefined."""
    pairs = sorted(zip(factors, values))[-2:]
    if len(pairs) < 2:
        return None
    (f0, v0), (f1, v1) = pairs
    if f0 <= 0 or f1 <= f0 or v0 <= 0 or v1 <= 0:
        return None
    return math.log(v1 / v0) / math.log(f1 / f0)


def human_bytes(n: float) -> str:
    """``n`` bytes as B, KB, MB or GB (powers of 1024, at most three digits before the point)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _exponent_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(results: Mapping[str, Mapping[float, Mapping[str, Any]]]) -> str:
    """Per stage and factor the six figures, then per stage each figure's growth exponent, as plain text.

    ``results[stage][factor]`` holds :meth:`StageFigures.as_dict` (at least the keys in ``FIGURES``).
    """
    head = (
        f"{'stage':<10} {'factor':>6} {'seconds':>9} {'driver peak':>12} {'shuffle rd':>11} {'shuffle wr':>11} "
        f"{'broadcast':>10} {'collected':>10}"
    )
    lines = [head, "-" * len(head)]
    for stage, by_factor in results.items():
        for factor in sorted(by_factor):
            r = by_factor[factor]
            lines.append(
                f"{stage:<10} {factor:>5g}x {r['seconds']:>9.2f} "
                + " ".join(
                    f"{human_bytes(r[k]):>{w}}"
                    for k, w in (
                        ("driver_peak_bytes", 12),
                        ("shuffle_read_bytes", 11),
                        ("shuffle_write_bytes", 11),
                        ("broadcast_bytes", 10),
                        ("collected_bytes", 10),
                    )
                )
            )
    lines += [
        "",
        "growth exponents (log-log slope between the two largest factors)",
        f"{'stage':<10} " + " ".join(f"{k.replace('_bytes', ''):>19}" for k in FIGURES),
    ]
    for stage, by_factor in results.items():
        factors = sorted(by_factor)
        lines.append(
            f"{stage:<10} "
            + " ".join(
                f"{_exponent_text(growth_exponent(factors, [by_factor[f][k] for f in factors])):>19}" for k in FIGURES
            )
        )
    return "\n".join(lines)


def time_plot_png(results: Mapping[str, Mapping[float, Mapping[str, Any]]], path: str, title: str) -> None:
    """Seconds against factor, one line per stage, log-log, with a dashed slope-1 reference, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    every = sorted({f for by_factor in results.values() for f in by_factor})
    for stage, by_factor in results.items():
        factors = sorted(by_factor)
        ax.plot(factors, [by_factor[f]["seconds"] for f in factors], marker="o", label=stage)
    if len(every) > 1:
        lowest = min((by_factor[min(by_factor)]["seconds"] for by_factor in results.values()), default=1.0)
        ax.plot(every, [lowest * f / every[0] for f in every], "k--", linewidth=1, label="slope 1 (linear)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(every, [f"{f:g}x" for f in every])
    ax.set_xlabel("data size factor")
    ax.set_ylabel("wall time (s)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_factors(text: str) -> list[float]:
    """``"1,4,16"`` as [1.0, 4.0, 16.0] (sorted, each positive)."""
    values = sorted(float(x) for x in text.split(",") if x.strip())
    if not values or values[0] <= 0:
        raise ValueError(f"factors must be positive numbers, got {text!r}")
    return values
