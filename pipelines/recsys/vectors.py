"""Array-column vector arithmetic in the JVM (no Python UDF): norms, unit vectors, dot products, means."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def dot(a: Column, b: Column) -> Column:
    """``sum(a[i] * b[i])`` of two equally long numeric arrays; null when either is null."""
    return F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0), lambda acc, x: acc + x)


def unit(v: Column) -> Column:
    """``v / ||v||`` as ``array<double>`` (a zero vector stays zero)."""
    norm = F.sqrt(dot(v, v))
    return F.transform(v, lambda x: F.when(norm > 0, x / norm).otherwise(F.lit(0.0)))


def weighted_mean(parts: Column) -> Column:
    """``sum(w * v) / sum(w)`` over an array of ``struct<w: double, v: array>`` (one group's vectors)."""
    zero = F.transform(parts[0]["v"], lambda x: F.lit(0.0))
    total = F.aggregate(parts, zero, lambda acc, p: F.zip_with(acc, p["v"], lambda a, b: a + p["w"] * b))
    weight = F.aggregate(parts, F.lit(0.0), lambda acc, p: acc + p["w"])
    return F.transform(total, lambda x: x / weight)
