"""Production streams for monitoring: month after month of new applicants from the
simulated world, optionally drifting, and their outcomes once they mature.

Each month is its own small world (:func:`credit_scoring.data.simulate.simulate_world`
with one cohort observed on the month's first day, its own seed), so months are
independent draws of the same population unless a drift kind changes them from
``start_month`` on:

- ``none``: the stable stream (the control: monitoring must stay quiet on it);
- ``shift``: the simulator's ``simulate.drift``: every trait moves by ``-strength`` SDs
  (riskier people; features, scores and defaults all move);
- ``macro``: a macro shock that raises defaults: the behaviour the model sees is
  unchanged at decision time, the default logit of every person rises by ``strength``
  afterwards (only the outcomes move: the backtest must catch it, not the drift table);
- ``income``: declared and verified incomes fall by the factor ``exp(-strength)``
  (the income features move; the truth is left as drawn, so the model over-predicts risk);
- ``channel``: a new product channel brings people new to the platform: the thin-file
  share becomes ``strength`` (history-length and activity features move).

The simulator's outcomes carry only the 12-month label; monitoring's vintage curves need
*when* a person defaulted, so each defaulter gets a simulated ``default_date`` within the
performance window (months on book drawn from a hump-shaped hazard, :data:`DEFAULT_MONTH_WEIGHTS`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.data.simulate import simulate_world
from credit_scoring.schemas import BehaviourData

DRIFT_KINDS = ("none", "shift", "macro", "income", "channel")
#: The strength each kind uses when none is given (see the module docstring for units).
DEFAULT_STRENGTH = {"none": 0.0, "shift": 0.5, "macro": 1.0, "income": 0.5, "channel": 0.6}
#: Relative chance of defaulting in months on book 1..12 (arrears build up, then fade).
DEFAULT_MONTH_WEIGHTS = np.array([1, 3, 5, 7, 8, 8, 7, 6, 5, 4, 3, 2], dtype=np.float64)


@dataclass(frozen=True)
class StreamMonth:
    """One month of the stream: the applicants' raw tables, their truth and outcomes
    (``person_id, observation_date, default_12m, default_date``)."""

    index: int
    date: dt.date
    drifted: bool
    data: BehaviourData
    truth: pd.DataFrame
    outcomes: pd.DataFrame


def first_of_month(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month0 + 1, 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def default_dates(
    rng: np.random.Generator, start: pd.Series, default: np.ndarray, horizon_months: int
) -> pd.Series:
    """A default date within ``horizon_months`` of ``start`` for each defaulter (NaT else)."""
    w = np.resize(DEFAULT_MONTH_WEIGHTS, horizon_months)[:horizon_months]
    months = rng.choice(horizon_months, size=len(start), p=w / w.sum())
    offsets = pd.to_timedelta(months * 30.44 + rng.uniform(0, 30, len(start)), unit="D")
    dates = pd.to_datetime(start).dt.normalize() + offsets
    return dates.where(pd.Series(default, index=dates.index), pd.NaT)


def stream_month(
    sim: SimulateParams,
    base: BaseParams,
    index: int,
    people: int,
    kind: str = "none",
    strength: float | None = None,
    start_month: int = 0,
    seed: int = 1,
) -> StreamMonth:
    """Month ``index`` of a stream starting the month after the training outcomes matured
    (``base.observation_date`` + ``sim.performance_months``)."""
    if kind not in DRIFT_KINDS:
        raise ValueError(f"drift kind must be one of {DRIFT_KINDS}; got {kind!r}")
    s = DEFAULT_STRENGTH[kind] if strength is None else float(strength)
    drifted = kind != "none" and index >= start_month
    date = first_of_month(base.observation_date, sim.performance_months + 1 + index)
    month_sim = sim.model_copy(
        update={
            "n_users": people,
            "chunk_size": max(people, 1000),
            "n_cohorts": 1,
            "drift": -s if drifted and kind == "shift" else 0.0,
            "thin_file_share": s if drifted and kind == "channel" else sim.thin_file_share,
        }
    )
    month_base = BaseParams(seed=seed * 10_000 + index, observation_date=date)
    data, truth = simulate_world(month_sim, month_base)
    rng = np.random.default_rng(np.random.SeedSequence(month_base.seed, spawn_key=(7,)))
    outcomes = data.outcomes.copy()
    if drifted and kind == "macro":
        logit = np.log(truth["true_pd"] / (1 - truth["true_pd"])).to_numpy()
        shocked = _sigmoid(logit + s)
        outcomes["default_12m"] = pd.array(rng.random(len(shocked)) < shocked, dtype="Int64")
        truth = truth.assign(true_pd=shocked)
    if drifted and kind == "income":
        profiles = data.profiles.copy()
        for col in ("declared_income", "verified_income"):
            profiles[col] = profiles[col] * np.exp(-s)
        data = dataclasses.replace(data, profiles=profiles)
    default = outcomes["default_12m"].to_numpy(dtype=np.int64) == 1
    outcomes["default_date"] = default_dates(
        rng, outcomes["observation_date"], default, sim.performance_months
    )
    return StreamMonth(index, date, drifted, data, truth, outcomes)
