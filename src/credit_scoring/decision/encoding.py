"""Missing values that mean "none": placed at the risky end of the monotone curve.

LightGBM sends a missing value (NaN) down a branch of its own in every split, and monotone
constraints do not bind that branch: "no phone top-ups" (an undefined average top-up
amount) can sit anywhere, and one 100 CNY top-up moves a person from the NaN branch onto
the curve, a jump no monotone bound limits (issue 13: +9 points on average, +25 at p99).

For the features listed in :data:`ABSENCE_MEANS_NONE`, absence *is* a value on the
feature's own scale ("no top-ups" is an average top-up of 0 CNY, "no credit history" is a
history of 0 months), and that value is the risky end of the feature's monotone direction.
Encoding NaN as that value puts the people without the fact on the curve, so a token
action (one small top-up) gains only what the monotone curve gives between 0 and the new
value. The encoding is applied by the bundle (:class:`~credit_scoring.decision.bundle.
CreditModel`) to every matrix it trains on, calibrates on and scores, so training, batch
scoring, advice, robustness and the service share it; the mapping is saved in the bundle.

Reasons keep reading the raw value: a missing value still gives a reason only through an
absence code (:mod:`credit_scoring.decision.reason_codes`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from credit_scoring.features.registry import feature_spec

#: Feature -> the value a missing one means ("none" on the feature's scale).
ABSENCE_MEANS_NONE: dict[str, float] = {
    "topup_mean_amount_365d": 0.0,  # no top-ups: an average top-up of nothing
    "credit_history_months": 0.0,  # no statement or repayment yet: no history
}


def check_missing_as(mapping: Mapping[str, float]) -> dict[str, float]:
    """Refuse a mapping that is not "the risky end of a scored, constrained feature"."""
    out = {}
    for name, value in mapping.items():
        spec = feature_spec(name)
        if not spec.scored or spec.risk_direction == 0:
            raise ValueError(f"{name!r}: only scored, constrained features can be encoded")
        r = spec.value_range
        end = r.low if spec.risk_direction < 0 else r.high
        if not math.isfinite(end) or float(value) != end:
            raise ValueError(
                f"{name!r}: a missing value must mean the risky end {end} of its range; got {value}"
            )
        out[name] = float(value)
    return out


def missing_as(feature_names: Sequence[str]) -> dict[str, float]:
    """The default encoding for a feature list: :data:`ABSENCE_MEANS_NONE` of its features."""
    names = set(feature_names)
    return check_missing_as({k: v for k, v in ABSENCE_MEANS_NONE.items() if k in names})


def encode_matrix(
    X: np.ndarray, feature_names: Sequence[str], mapping: Mapping[str, float]
) -> np.ndarray:
    """``X`` with NaN replaced by the mapped value in the mapped columns (a copy when any
    value changes; ``X`` itself otherwise)."""
    if not mapping:
        return X
    col = {n: j for j, n in enumerate(feature_names)}
    out = X
    for name, value in mapping.items():
        j = col.get(name)
        if j is None:
            continue
        nan = np.isnan(X[:, j])
        if nan.any():
            if out is X:
                out = np.array(X, dtype=np.float64, copy=True)
            out[nan, j] = value
    return out


def encode_frame(frame: pd.DataFrame, mapping: Mapping[str, float]) -> pd.DataFrame:
    """``frame`` with NaN replaced by the mapped value in the mapped columns (a copy)."""
    present = {k: v for k, v in mapping.items() if k in frame.columns}
    return frame.fillna(present) if present else frame
