"""A click log whose click probability has non-linear effects and feature interactions.

Trees should find the thresholds and crosses (device x ad category, the i3 step on mobile,
i2 x i5) that a linear model on raw features cannot, which is what GBDT+LR exploits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.datagen.world import rng_for

CLICKS_SCHEMA = (
    "click_id BIGINT, label INT, i1 INT, i2 DOUBLE, i3 DOUBLE, i4 INT, i5 DOUBLE, i6 DOUBLE, "
    "c1 STRING, c2 STRING, c3 STRING, c4 STRING"
)
DEVICES = np.array(["mobile", "desktop", "tablet", "tv"])
_N_SITES, _N_ADS, _N_USERS = 60, 20, 5000


def _effects(seed: int) -> dict[str, np.ndarray]:
    rng = rng_for(seed, "click-effects")
    return {
        "site": rng.normal(0, 0.5, _N_SITES),
        "ad": rng.normal(0, 0.4, _N_ADS),
        "mobile_ad": rng.normal(0, 0.8, _N_ADS),
        "user": rng.normal(0, 0.3, _N_USERS),
    }


def _zipf_index(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.choice(n, size=size, p=p / p.sum())


def clicks_chunk(seed: int, chunk: int, start: int, count: int, intercept: float = -1.9) -> pd.DataFrame:
    """Rows ``start .. start+count-1`` of the click log (features typed, some values missing)."""
    fx = _effects(seed)
    rng = rng_for(seed, "clicks", chunk)
    device = rng.choice(4, size=count, p=[0.55, 0.3, 0.1, 0.05])
    site = _zipf_index(rng, _N_SITES, count, 1.0)
    ad = rng.integers(0, _N_ADS, count)
    user = _zipf_index(rng, _N_USERS, count, 1.1)
    i1 = np.floor(rng.lognormal(1.0, 1.0, count)).astype(np.int64)
    i2 = rng.normal(0, 1, count)
    i3 = rng.random(count)
    i4 = rng.poisson(3, count)
    i5 = rng.exponential(1.0, count)
    i5_missing = rng.random(count) < 0.15
    i6 = rng.normal(0, 1, count)
    mobile = device == 0
    logit = (
        intercept
        - 0.3 * np.log1p(i1)
        + 0.8 * np.sin(1.5 * i2)
        + 1.2 * ((i3 > 0.7) & mobile)
        - 0.4 * (i3 < 0.2)
        + 0.5 * ((i4 >= 2) & (i4 <= 4))
        + np.where(i5_missing, 0.3, 0.4 * i2 * np.minimum(i5, 3.0))
        + fx["site"][site]
        + fx["ad"][ad]
        + mobile * fx["mobile_ad"][ad]
        + fx["user"][user]
    )
    label = (rng.random(count) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
    return pd.DataFrame(
        {
            "click_id": np.arange(start, start + count, dtype=np.int64),
            "label": label,
            "i1": i1.astype(np.int32),
            "i2": i2,
            "i3": i3,
            "i4": i4.astype(np.int32),
            "i5": np.where(i5_missing, np.nan, i5),
            "i6": i6,
            "c1": DEVICES[device],
            "c2": np.char.add("site", site.astype(str)),
            "c3": np.char.add("ad", ad.astype(str)),
            "c4": np.char.add("u", user.astype(str)),
        }
    )
