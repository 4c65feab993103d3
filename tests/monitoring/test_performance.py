"""Outcomes joined to the decisions that preceded them, maturity respected; vintage
curves censored at the as-of date; the backtest acts when defaults outrun the PDs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from credit_scoring.monitoring.performance import backtest, join_outcomes, vintage_curves


def _world(n: int, shock: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    pd_ = np.clip(rng.beta(1, 18, n), 0.001, 0.9)
    start = pd.Timestamp("2025-01-01")
    dec = pd.DataFrame(
        {
            "person_id": [f"P{i}" for i in range(n)],
            "decided_at": start + pd.Timedelta(hours=10),
            "pd": pd_,
            "score": 600,
            "band": "good",
        }
    )
    true = 1 / (1 + np.exp(-(np.log(pd_ / (1 - pd_)) + shock)))
    y = rng.random(n) < true
    outcomes = pd.DataFrame(
        {
            "person_id": dec["person_id"],
            "observation_date": start,
            "default_12m": y.astype(int),
            "default_date": np.where(y, start + pd.Timedelta(days=100), pd.NaT),
        }
    )
    return dec, outcomes


def test_join_respects_the_outcome_window_and_the_decision_order() -> None:
    """Outcomes whose 12 months have not ended by as-of are left out; an outcome joins
    only a decision made on or before its start."""
    dec, out = _world(100, 0.0)
    assert join_outcomes(dec, out, 12, pd.Timestamp("2025-12-31")).empty
    assert len(join_outcomes(dec, out, 12, pd.Timestamp("2026-01-01"))) == 100
    later = dec.assign(decided_at=pd.Timestamp("2025-01-02"))
    assert join_outcomes(later, out, 12, pd.Timestamp("2026-06-01")).empty


def test_vintage_curves_are_censored_at_as_of() -> None:
    """Months on book after as-of are NaN; observed months accumulate the defaults."""
    dec, out = _world(500, 0.0)
    joined = join_outcomes(dec, out, 12, pd.Timestamp("2026-01-01"))
    curve = vintage_curves(joined, 12, pd.Timestamp("2026-01-01")).iloc[0]
    assert curve[3] == 0.0 and curve[4] == curve[12] == joined["label"].mean()
    early = vintage_curves(joined, 12, pd.Timestamp("2025-06-15")).iloc[0]
    assert np.isnan(early[6]) and early[5] == curve[5]


def test_backtest_acts_on_a_macro_shock_and_not_on_a_calibrated_model() -> None:
    """Labels drawn from the PDs: stable; from PDs with the logit raised by 1: act."""
    for shock, expected in ((0.0, "stable"), (1.0, "act")):
        dec, out = _world(4000, shock, seed=1)
        joined = join_outcomes(dec, out, 12, pd.Timestamp("2026-02-01"))
        result = backtest(joined, {}, min_outcomes=300, n_boot=100)
        assert result["status"] == expected, result["why"]
