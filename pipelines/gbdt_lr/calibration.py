"""Scores as P(click), re-calibrated after negative downsampling (He et al., 2014, section 6.2).

Training on all positives and a share ``w`` of negatives inflates predictions; the calibrated score is
``q = p / (p + (1 - p) / w)``. Weighting positives by ``s`` (XGBoost's ``scale_pos_weight``) is the same in
expectation as keeping ``1 / s`` of the negatives.
"""

from __future__ import annotations

from pyspark.sql import Column


def recalibrate(p: Column | float, negative_rate: float) -> Column | float:
    """``q = p / (p + (1 - p) / w)`` for a model trained on a share ``w`` of the negatives (``w`` > 1: negatives
    weighted up)."""
    if not negative_rate > 0:
        raise ValueError(f"negative_rate must be positive, got {negative_rate}")
    return p / (p + (1 - p) / negative_rate)
