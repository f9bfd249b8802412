"""A synthetic click table shaped like the Criteo 45K sample, at any size, generated on the executors.

Same columns and types as ``benchmarks/criteo.py``'s ``read_arff``: ``Label``, thirteen heavy-tailed
counts ``I1..I13`` (lognormal or Poisson-like, zero-inflated, ``I2`` with some ``-1``; nulls in groups
of columns as in the real log) and seven categoricals of 8-hex-char tokens with Zipf-like frequencies.

The click logit has a base rate near the sample's 25%, thresholds and a bump on counts, a log effect,
a sign-dependent cross of ``I4`` and ``I9``, per-category effects, a per-``C17`` slope on ``I11``,
and a little signal in missingness. A latent row activity drives several counts and, with unobserved
noise, the logit too, so a good model stays near the real data's AUC instead of approaching 1. Trees
find the thresholds and crosses that a linear model on the raw (imputed) columns cannot.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from pipelines.datagen.chunks import generate
from pipelines.datagen.world import rng_for

NUMERIC = [f"I{i}" for i in range(1, 14)]
CATEGORICAL = ["C6", "C9", "C14", "C17", "C20", "C22", "C23"]
CRITEO_LIKE_SCHEMA = ", ".join(["Label INT", *[f"{n} DOUBLE" for n in NUMERIC], *[f"{c} STRING" for c in CATEGORICAL]])

# Columns missing together share a null group (as I1/I10, I4/I13 and I7/I9/I11 do in the real sample).
NULL_GROUPS: dict[str, tuple[float, list[str]]] = {
    "a": (0.45, ["I1", "I10"]),
    "b": (0.22, ["I4", "I13"]),
    "c": (0.06, ["I7", "I9", "I11"]),
    "d": (0.20, ["I3"]),
    "e": (0.22, ["I6"]),
    "f": (0.40, ["I12"]),
    "g": (0.05, ["I2"]),
    "h": (0.05, ["I5"]),
    "i": (0.05, ["I8"]),
}
NUMERIC_NULL_SHARE = {col: share for share, cols in NULL_GROUPS.values() for col in cols}

# (lognormal mu, sigma, share of extra zeros, loading on the latent activity); I10 is Poisson-like.
_COUNTS: dict[str, tuple[float, float, float, float]] = {
    "I1": (0.6, 1.1, 0.35, 0.5),
    "I2": (1.6, 2.0, 0.08, 0.3),
    "I3": (1.9, 1.2, 0.0, 0.4),
    "I4": (1.5, 0.9, 0.04, 0.2),
    "I5": (7.9, 1.9, 0.02, -0.3),
    "I6": (3.4, 1.4, 0.05, 0.6),
    "I7": (1.3, 1.6, 0.20, 0.7),
    "I8": (1.9, 0.9, 0.10, 0.1),
    "I9": (3.6, 1.2, 0.0, 0.5),
    "I11": (0.5, 1.0, 0.22, 0.6),
    "I12": (0.3, 1.3, 0.45, 0.5),
    "I13": (1.5, 0.9, 0.04, 0.2),
}
_I2_MINUS_ONE = 0.10

# Cardinality, null share, Zipf exponent and effect scale per categorical (cardinalities as in the sample).
_CATEGORIES: dict[str, tuple[int, float, float, float]] = {
    "C6": (12, 0.12, 1.3, 0.35),
    "C9": (3, 0.0, 2.5, 0.45),
    "C14": (25, 0.0, 1.2, 0.45),
    "C17": (9, 0.0, 1.4, 0.35),
    "C20": (3, 0.40, 0.3, 0.15),
    "C22": (10, 0.45, 2.0, 0.3),
    "C23": (14, 0.0, 1.3, 0.3),
}
CATEGORICAL_NULL_SHARE = {c: v[1] for c, v in _CATEGORIES.items()}


@lru_cache(maxsize=8)
def _world(seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Tokens, frequencies and effects of every categorical: a pure function of the seed."""
    rng = rng_for(seed, "criteo-like-world")
    world: dict[str, dict[str, np.ndarray]] = {}
    for col, (n, _, exponent, scale) in _CATEGORIES.items():
        codes = rng.choice(2**32, size=n, replace=False)
        p = 1.0 / np.arange(1, n + 1) ** exponent
        p /= p.sum()
        effect = rng.normal(0, scale, n)
        # Centred on the frequency-weighted mean, so that the base rate stays near 25% for every seed.
        world[col] = {
            "tokens": np.array([f"{c:08x}" for c in codes], dtype=object),
            "p": p,
            "effect": effect - p @ effect,
        }
    # Each C17 value changes the slope on log(I11): a category x numeric interaction.
    slope = rng.normal(0, 0.7, len(world["C17"]["p"]))
    world["C17"]["i11_slope"] = slope - world["C17"]["p"] @ slope
    # C9 (few values) decides whether a high I13 helps or hurts.
    world["C9"]["i13_step"] = np.array([0.6, -0.7, 0.3])
    return world


def _counts(rng: np.random.Generator, activity: np.ndarray, col: str) -> np.ndarray:
    mu, sigma, zeros, loading = _COUNTS[col]
    values = np.floor(rng.lognormal(mu + loading * activity, sigma))
    return np.where(rng.random(len(activity)) < zeros, 0.0, values)


def _per_value(values: np.ndarray, index: np.ndarray, missing: float = 0.0) -> np.ndarray:
    """``values[index]``, and ``missing`` where the category is null (index -1)."""
    return np.where(index < 0, missing, values[index])


def criteo_like_chunk(seed: int, chunk: int, start: int, count: int, intercept: float = -2.0) -> pd.DataFrame:
    """Rows ``start .. start+count-1`` of the table (``start`` is unused: the chunk number seeds the rows)."""
    world = _world(seed)
    rng = rng_for(seed, "criteo-like", chunk)
    activity = rng.normal(0, 1, count)
    # Every count is drawn in full: the planted effects read it whether or not it is then reported missing.
    v = {col: _counts(rng, activity, col) for col in _COUNTS}
    v["I2"] = np.where(rng.random(count) < _I2_MINUS_ONE, -1.0, v["I2"])
    v["I8"] = np.minimum(v["I8"], 50.0)
    v["I10"] = rng.poisson(np.exp(-0.3 + 0.3 * activity)).astype(np.float64)
    missing = {col: np.zeros(count, dtype=bool) for col in NUMERIC}
    group_missing = {}
    for group, (share, cols) in NULL_GROUPS.items():
        group_missing[group] = rng.random(count) < share
        for col in cols:
            missing[col] = group_missing[group]
    cat_index = {}
    for col in CATEGORICAL:
        w = world[col]
        cat_index[col] = np.where(
            rng.random(count) < _CATEGORIES[col][1], -1, rng.choice(len(w["p"]), size=count, p=w["p"])
        )

    log_i6, log_i11 = np.log1p(v["I6"]), np.log1p(v["I11"])
    logit = (
        intercept
        + 0.55 * ((v["I1"] >= 1) & (v["I1"] <= 4))  # a bump on I1
        - 0.35 * (log_i6 - 3.0)  # log effect of I6
        + 0.6 * (v["I3"] < 3)
        - 0.3 * (v["I3"] > 60)  # thresholds on I3
        + 0.45 * np.where((v["I4"] > 5) == (v["I9"] > 40), 1.0, -1.0)  # I4 x I9 cross
        + 0.5 * (v["I2"] == -1)
        - 0.3 * (v["I2"] > 100)
        + 0.35 * (v["I7"] == 0)
        + _per_value(world["C17"]["i11_slope"], cat_index["C17"]) * (log_i11 - 0.8)  # C17 x I11
        + (v["I13"] > 6) * _per_value(world["C9"]["i13_step"], cat_index["C9"])  # C9 x I13
        + 0.25 * group_missing["a"]
        - 0.3 * group_missing["b"]
        + 0.2 * group_missing["f"]
        + 0.35 * activity
        + rng.normal(0, 0.8, count)
    )  # unobserved
    for col in CATEGORICAL:
        logit += _per_value(world[col]["effect"], cat_index[col], missing=-0.2)
    label = (rng.random(count) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)

    out = {"Label": label}
    for col in NUMERIC:
        out[col] = np.where(missing[col], np.nan, v[col])
    for col in CATEGORICAL:
        tokens = np.append(world[col]["tokens"], None)  # index -1 is the null
        out[col] = tokens[cat_index[col]]
    return pd.DataFrame(out)


def criteo_like(spark: SparkSession, rows: int, seed: int = 42, chunk_size: int = 50_000) -> DataFrame:
    """``rows`` rows of the Criteo-like table; the same seed, rows and chunk size give the same table."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    return generate(spark, criteo_like_chunk, CRITEO_LIKE_SCHEMA, seed, rows, chunk_size)
