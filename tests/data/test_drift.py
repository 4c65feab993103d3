"""Production-stream months: each drift kind changes what it says and nothing else."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.data.drift import stream_month

SIM = SimulateParams(n_users=1500, chunk_size=1500)


def test_month_dates_follow_the_training_outcomes_and_defaulters_get_dates() -> None:
    """Month 0 starts the month after the newest training cohort's outcomes matured; every
    defaulter (and only they) has a default date within the 12-month window."""
    m = stream_month(SIM, BaseParams(), 0, 1500)
    assert m.date == dt.date(2026, 2, 1) and not m.drifted
    out = m.outcomes
    default = out["default_12m"].to_numpy(dtype=int) == 1
    assert (out["default_date"].notna().to_numpy() == default).all()
    lag = (out["default_date"] - out["observation_date"]).dt.days.dropna()
    assert lag.min() >= 0 and lag.max() <= 366


def test_macro_raises_defaults_and_income_lowers_incomes_only_from_start_month() -> None:
    """Same seed and month: macro keeps the applicants and raises the default rate; income
    scales declared income by exp(-0.5); a month before start_month is left as drawn."""
    base = stream_month(SIM, BaseParams(), 1, 1500, seed=3)
    macro = stream_month(SIM, BaseParams(), 1, 1500, "macro", seed=3)
    assert macro.data.profiles.equals(base.data.profiles)
    assert macro.outcomes["default_12m"].mean() > 1.5 * base.outcomes["default_12m"].mean()
    income = stream_month(SIM, BaseParams(), 1, 1500, "income", seed=3)
    ratio = income.data.profiles["declared_income"] / base.data.profiles["declared_income"]
    assert np.allclose(ratio.dropna(), np.exp(-0.5))
    early = stream_month(SIM, BaseParams(), 0, 1500, "income", start_month=1, seed=3)
    assert not early.drifted


def test_unknown_kind_is_refused() -> None:
    """A typo in the kind is a one-line error naming the kinds."""
    with pytest.raises(ValueError, match="drift kind must be one of"):
        stream_month(SIM, BaseParams(), 0, 100, "seasonal")
