"""The synthetic behaviour world: a seeded, vectorised population of platform users.

Every person has a hidden creditworthiness ``z`` (N(0, 1), higher is better). Their true
12-month probability of default is a logistic function of ``z``, of a partly related
ability to pay (``capacity``), of being new to the platform and of being in financial
distress right now. Everything the platform sees (repayments and statements, utility
bills and phone top-ups, purchases, profile facts, contacts) is generated from ``z``
through *person-level* nuisance factors plus event-level noise, so behaviour carries a
noisy, partial picture of ``z``: a good model gets far, but not as far as the truth.

The truth (``true_pd`` per outcome row) is returned separately and written to its own
file for evaluation only; it is never part of the four input tables.

How the world is built (all numpy, no per-person Python loops):

- People are generated in chunks of ``sim.chunk_size``; chunk ``k`` draws from
  ``SeedSequence(base.seed, spawn_key=(0, k))``, so the world depends on the parameters
  only. The intercept of the default logit is solved once, by bisection on a fixed
  reference sample from its own stream (``spawn_key=(1,)``), so that the mean true PD hits
  ``sim.default_rate`` whatever ``n_users`` or the chunking.
- Each person belongs to one cohort (observation date); the history window is the
  ``sim.history_months`` months before it, split into monthly periods. Thin-file people
  joined 1-6 months before their observation date. Every event lies strictly before the
  person's observation date.
- ``sim.drift`` shifts ``z`` of the newest cohort (negative = riskier). The intercept is
  solved without drift: drift changes the newest cohort's default rate, as a real shift
  in the population would.
- Contacts connect people of the same chunk (plus ~10% outside the platform, ``N...``
  ids), so the graph's homophily holds within chunks of ``sim.chunk_size`` people.
- ``sim.performance_months`` names the label's window; the simulator draws the label
  directly from the true PD, so it does not change the world.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from credit_scoring import schemas
from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.io import atomic_path
from credit_scoring.schemas import BehaviourData

TRUTH_COLUMNS: tuple[str, ...] = ("person_id", "observation_date", "true_pd")

_DAY_NS = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1)
_NAT = np.iinfo(np.int64).min  # the int64 value numpy uses for NaT
_CHUNK_STREAM = 0
_REFERENCE_STREAM = 1
_REFERENCE_SIZE = 2**18
_EVENT_ID_WIDTH = 10
_PERSON_ID_MIN_WIDTH = 7

_EVENT_CODE = {t: i for i, t in enumerate(schemas.EVENT_TYPES)}
# One vocabulary for the `category` column: purchase categories, then utility kinds.
_CATEGORY_VOCAB: tuple[str, ...] = schemas.PURCHASE_CATEGORIES + tuple(
    c for c in schemas.UTILITY_CATEGORIES if c not in schemas.PURCHASE_CATEGORIES
)
_UTILITY_CODES = np.array([_CATEGORY_VOCAB.index(c) for c in schemas.UTILITY_CATEGORIES])


@dataclass(frozen=True)
class _World:
    """Structural coefficients of the world (not user parameters; see module docstring).

    Chosen so that the oracle AUC (true PD vs label) is about 0.87 and behaviour reveals
    ``z`` only partly (each dimension through its own person-level nuisance factor): a
    LightGBM on point-in-time features reaches about 0.79-0.81 out of time. What happens
    after the observation date (job loss, illness: the unobservable future) is the
    Bernoulli draw of the label itself; an extra logit shock integrated out would only
    change the link function, so ``true_pd`` is already the best any model could do.
    """

    # True default logit: alpha - beta_z*z - beta_capacity*capacity + small effects.
    beta_z: float = 1.45
    beta_capacity: float = 0.35
    beta_thin: float = 0.15
    beta_distress_now: float = 0.6
    beta_distress_before: float = 0.3
    capacity_on_z: float = 0.45
    # How strongly each observable dimension's propensity follows z (rest is nuisance).
    credit_on_z: float = 0.75
    capacity_signal_on_capacity: float = 0.75
    preference_on_z: float = 0.45
    identity_on_z: float = 0.35
    # Financial distress: a monthly two-state chain, entered more often by risky people.
    distress_enter_logit: float = -4.0
    distress_enter_on_z: float = 1.0
    distress_exit: float = 0.3
    # Credit accounts.
    account_share_full: float = 0.7
    account_share_thin: float = 0.5
    late_logit: float = -4.0
    late_on_credit: float = 1.5
    late_in_distress: float = 2.8
    # Social graph: sort by z + noise, connect to near ranks.
    homophily_noise: float = 1.0
    contact_rank_scale: float = 15.0
    no_contacts_share: float = 0.08
    external_contact_share: float = 0.1
    # Monthly income (CNY) of a person with average capacity.
    median_income: float = 7000.0


_W = _World()

# Seasonality by calendar month (index 0 = January).
# Spending: Spring Festival (Jan/Feb), 618 (June), Double 11 (November).
_SPEND_SEASON = np.array([1.3, 1.35, 1.0, 1.0, 1.0, 1.2, 1.0, 1.0, 1.0, 1.05, 1.9, 1.15])
# Extra logit of paying late: after Spring Festival (Feb/March).
_LATE_SEASON = np.array([0.15, 0.6, 0.45, 0.1, 0, 0, 0, 0, 0, 0, 0, 0.05])
_UTILITY_BASE = np.array([140.0, 55.0, 70.0, 100.0, 40.0])  # electricity water gas internet other
_UTILITY_OWN = np.array([0.85, 0.4, 0.25, 0.35, 0.05])
_UTILITY_MONTHLY = np.array([1.0, 0.55, 0.9, 1.0, 0.6])  # water is often paid bi-monthly
_UTILITY_SEASON = np.array(
    [
        [1.25, 1.2, 1.0, 0.9, 0.9, 1.1, 1.4, 1.45, 1.1, 0.9, 0.95, 1.15],
        [1.0] * 12,
        [1.6, 1.5, 1.2, 1.0, 0.8, 0.7, 0.7, 0.7, 0.8, 1.0, 1.2, 1.5],
        [1.0] * 12,
        [1.0] * 12,
    ]
)
_TOPUP_LEVELS = np.array([10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 300.0])
# Purchases, in the order of schemas.PURCHASE_CATEGORIES.
_PURCHASE_SHARE = np.array([0.22, 0.18, 0.10, 0.12, 0.05, 0.03, 0.02, 0.04, 0.08, 0.06, 0.01, 0.09])
_PURCHASE_RISK_TILT = np.array([-0.1, 0.0, 0.0, 0.05, 0.1, 0.0, -0.25, -0.1, 0.15, 0.55, 0.55, 0.0])
_PURCHASE_MEDIAN = np.array(
    [80.0, 60.0, 30.0, 250.0, 1200.0, 1500.0, 800.0, 200.0, 150.0, 100.0, 5000.0, 100.0]
)
_PURCHASE_SEASON_TILT = np.zeros((12, len(schemas.PURCHASE_CATEGORIES)))
_PURCHASE_SEASON_TILT[10, [3, 4]] = (0.4, 0.5)  # Double 11: apparel, electronics
_PURCHASE_SEASON_TILT[0:2, [0, 3, 5]] = (0.3, 0.2, 0.4)  # Spring Festival
_EDUCATION_CUTS = np.cumsum([0.08, 0.30, 0.22, 0.32, 0.07])  # doctorate takes the rest
_OCCUPATION_INCOME = np.array([0.1, 0.2, 0.15, -0.2, -1.2, -0.4, -1.0, -0.1])
_OCCUPATION_ON_CAPACITY = np.array([0.3, 0.6, 0.0, -0.4, 0.0, 0.0, -0.9, -0.1])
_OCCUPATION_BASE = np.log(np.array([0.45, 0.10, 0.15, 0.12, 1e-9, 1e-9, 0.06, 0.12]))
_EMPLOYED = np.array([True, True, True, True, False, False, False, True])


# --------------------------------------------------------------------------- calendar


def _add_months(day: dt.date, months: int) -> dt.date:
    """Move by whole months, keeping the day of month (clipped to the month's length)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def cohort_dates(sim: SimulateParams, base: BaseParams) -> list[dt.date]:
    """Observation dates of the cohorts, oldest first; the newest is ``base.observation_date``.

    Consecutive cohorts lie ``sim.cohort_spacing_months`` calendar months apart.
    """
    return [
        _add_months(base.observation_date, -sim.cohort_spacing_months * i)
        for i in reversed(range(sim.n_cohorts))
    ]


@dataclass(frozen=True)
class _Calendar:
    """Monthly periods of the history window of each cohort (days since 1970-01-01).

    ``bounds[c, m]`` is the first day of period ``m`` of cohort ``c`` and
    ``bounds[c, H]`` its observation date; ``month[c, m]`` the calendar month (0-11).
    """

    dates: list[dt.date]
    bounds: np.ndarray
    month: np.ndarray

    @classmethod
    def build(cls, sim: SimulateParams, base: BaseParams) -> _Calendar:
        dates = cohort_dates(sim, base)
        h = sim.history_months
        starts = [[_add_months(d, -(h - m)) for m in range(h + 1)] for d in dates]
        bounds = np.array([[(s - _EPOCH).days for s in row] for row in starts], dtype=np.int64)
        month = np.array([[s.month - 1 for s in row[:h]] for row in starts], dtype=np.int64)
        return cls(dates, bounds, month)


# --------------------------------------------------------------------------- latent risk


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class _Latents:
    """Hidden state of each person: never written, only its consequences are."""

    z: np.ndarray  # creditworthiness, higher is better
    capacity: np.ndarray  # ability to pay, partly z
    thin: np.ndarray  # joined the platform recently
    history: np.ndarray  # months of history on the platform (H for full-file people)
    distress: np.ndarray  # (n, H) bool: in financial distress in that month


def _draw_latents(
    rng: np.random.Generator, n: int, thin_share: float, h: int, shift: np.ndarray | float
) -> _Latents:
    """Latent state of ``n`` people with ``h`` months of history; ``z`` shifted by ``shift``."""
    z = rng.standard_normal(n) + shift
    capacity = _W.capacity_on_z * z + np.sqrt(1 - _W.capacity_on_z**2) * rng.standard_normal(n)
    thin = rng.random(n) < thin_share
    history = np.where(thin, rng.integers(1, min(6, h) + 1, n), h)
    enter = _sigmoid(_W.distress_enter_logit - _W.distress_enter_on_z * z)
    state = rng.random(n) < enter / (enter + _W.distress_exit)
    u = rng.random((n, h))
    distress = np.empty((n, h), dtype=bool)
    for m in range(h):  # a loop over months; every step is vectorised over people
        if m:
            state = np.where(state, u[:, m] >= _W.distress_exit, u[:, m] < enter)
        distress[:, m] = state
    return _Latents(z, capacity, thin, history, distress)


def _risk_index(lat: _Latents) -> np.ndarray:
    """Default logit without the intercept."""
    return (
        -_W.beta_z * lat.z
        - _W.beta_capacity * lat.capacity
        + _W.beta_thin * lat.thin
        + _W.beta_distress_now * lat.distress[:, -1]
        + _W.beta_distress_before * lat.distress[:, -2]
    )


def _solve_alpha(sim: SimulateParams, base: BaseParams) -> float:
    """Intercept that makes the mean true PD equal ``sim.default_rate`` (no drift)."""
    return _alpha_for(sim.default_rate, sim.thin_file_share, sim.history_months, base.seed)


@functools.lru_cache(maxsize=32)
def _alpha_for(
    default_rate: float, thin_file_share: float, history_months: int, seed: int
) -> float:
    """The intercept depends only on these parameters (the reference sample's, not the world's)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_REFERENCE_STREAM,)))
    index = _risk_index(_draw_latents(rng, _REFERENCE_SIZE, thin_file_share, history_months, 0))
    # Newton steps on the monotone mean PD, kept inside a shrinking bisection bracket.
    lo, hi = -30.0, 30.0
    alpha = float(np.log(default_rate / (1 - default_rate)) - np.median(index))
    for _ in range(100):
        pd_ = _sigmoid(alpha + index)
        gap = pd_.mean() - default_rate
        if abs(gap) < 1e-12:
            break
        lo, hi = (lo, alpha) if gap > 0 else (alpha, hi)
        step = alpha - gap / (pd_ * (1 - pd_)).mean()
        alpha = step if lo < step < hi else (lo + hi) / 2
    return alpha


# --------------------------------------------------------------------------- string columns


# "0000".."9999" as ASCII, one uint32 per number (a fast lookup for id strings).
_DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint32)


def _fixed_ids(prefix: str, numbers: np.ndarray, width: int, suffix: np.ndarray | None = None):
    """``prefix`` + zero-padded ``numbers`` (+ ``-`` + one-digit ``suffix``) as an Arrow array.

    Built byte by byte in numpy: much faster than formatting millions of Python strings.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(
            f"ids {prefix}...: numbers must lie in [0, 10**{width}); got {numbers.max()}"
        )
    head = prefix.encode()
    row = len(head) + width + (2 if suffix is not None else 0)
    n = len(numbers)
    data = np.empty((n, row), dtype=np.uint8)
    for i, byte in enumerate(head):
        data[:, i] = byte
    rest = numbers.copy()
    for right in range(width, 0, -4):  # four digits per step, from a lookup table
        left = max(right - 4, 0)
        rest, group = np.divmod(rest, 10 ** (right - left))
        digits = _DIGITS4[group].view(np.uint8).reshape(n, 4)
        data[:, len(head) + left : len(head) + right] = digits[:, 4 - (right - left) :]
    if suffix is not None:
        data[:, -2] = ord("-")
        data[:, -1] = 48 + np.asarray(suffix, dtype=np.int64) % 10
    offsets = np.arange(n + 1, dtype=np.int64) * row
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _str_series(arr: pa.Array, valid: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
    if valid is not None:
        arr = pc.if_else(pa.array(valid), arr, pa.scalar(None, arr.type))
    return pd.arrays.ArrowStringArray(arr.cast(pa.large_string()))


def _vocab_series(codes: np.ndarray, vocab: tuple[str, ...]) -> pd.arrays.ArrowStringArray:
    """Strings from integer codes into ``vocab``; negative codes become missing."""
    codes = np.asarray(codes, dtype=np.int32)
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array(codes, mask=codes < 0), pa.array(vocab, type=pa.large_string())
    )
    return pd.arrays.ArrowStringArray(dictionary.cast(pa.large_string()))


def _int_series(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _bool_series(codes: np.ndarray) -> pd.arrays.BooleanArray:
    """Booleans from int8 codes (-1 missing, 0 false, 1 true)."""
    return pd.arrays.BooleanArray(codes == 1, codes < 0)


def _days_to_datetime(days: np.ndarray) -> np.ndarray:
    days = np.asarray(days, dtype=np.int64)
    return np.where(days == _NAT, _NAT, days * _DAY_NS).view("datetime64[ns]")


# --------------------------------------------------------------------------- one chunk


@dataclass(frozen=True)
class _Context:
    """What every chunk needs, computed once per world."""

    sim: SimulateParams
    base: BaseParams
    cal: _Calendar
    alpha: float
    person_width: int


@dataclass
class _Chunk:
    """Per-person arrays of one chunk, shared by the event generators."""

    n: int
    lat: _Latents
    pb: np.ndarray  # (n, H+1) period bounds in days
    month: np.ndarray  # (n, H) calendar month of each period
    active: np.ndarray  # (n, H) bool: period within the person's history on the platform
    first: np.ndarray  # first active period
    obs_day: np.ndarray
    income: np.ndarray  # true monthly income
    credit: np.ndarray  # credit-behaviour propensity (higher = better)
    capacity_signal: np.ndarray
    preference: np.ndarray
    identity: np.ndarray


def _propensity(rng: np.random.Generator, driver: np.ndarray, loading: float) -> np.ndarray:
    return loading * driver + np.sqrt(1 - loading**2) * rng.standard_normal(len(driver))


def _times_in_periods(
    rng: np.random.Generator, pb: np.ndarray, rows: np.ndarray, periods: np.ndarray
) -> np.ndarray:
    """Uniform timestamps (ns) inside period ``periods`` of person ``rows``."""
    start = pb[rows, periods]
    length = pb[rows, periods + 1] - start
    day = start + (rng.random(len(rows)) * length).astype(np.int64)
    return day * _DAY_NS + (rng.random(len(rows)) * _DAY_NS).astype(np.int64)


def _times_between(
    rng: np.random.Generator, start_day: np.ndarray, end_day: np.ndarray
) -> np.ndarray:
    """Uniform timestamps (ns) in ``[start_day, end_day)``."""
    span = (end_day - start_day) * _DAY_NS
    return start_day * _DAY_NS + (rng.random(len(start_day)) * span).astype(np.int64)


def _credit_events(rng: np.random.Generator, ch: _Chunk) -> dict[str, np.ndarray]:
    """Statements and repayments of each credit account, month by month."""
    lat, h = ch.lat, ch.active.shape[1]
    share = np.where(lat.thin, _W.account_share_thin, _W.account_share_full)
    has = rng.random(ch.n) < share
    # First account: open before the window (most full-file people) or within the history.
    within = lat.thin | (rng.random(ch.n) < 0.4)
    offset = (rng.random(ch.n) * lat.history).astype(np.int64)
    open_first = np.where(within, ch.first + offset, 0)
    # A second account for some full-file people (credit seeking: more for risky people).
    second = has & ~lat.thin & (rng.random(ch.n) < _sigmoid(-2.2 - 0.6 * ch.credit))
    person = np.concatenate([np.flatnonzero(has), np.flatnonzero(second)])
    number = np.concatenate([np.ones(has.sum(), np.int64), np.full(second.sum(), 2)])
    opened = np.concatenate([open_first[has], rng.integers(1, h, second.sum())])
    a = len(person)
    cred = ch.credit[person]
    distress = lat.distress[person].astype(float)
    months = np.arange(h)
    is_open = months[None, :] >= opened[:, None]

    limit0 = ch.income[person] * 1.5 * np.exp(0.2 * cred + 0.35 * rng.standard_normal(a))
    limit0 = np.where(number == 2, limit0 * 0.5, limit0)
    limit0 = np.clip(np.round(limit0 / 500) * 500, 500, 50_000)
    raised = rng.random(a) < _sigmoid(-1.0 + 0.8 * cred)
    raise_at = rng.integers(1, h, a)
    limit1 = np.clip(np.round(limit0 * rng.uniform(1.2, 1.6, a) / 500) * 500, 500, 50_000)
    limit = np.where(
        raised[:, None] & (months[None, :] >= raise_at[:, None]), limit1[:, None], limit0[:, None]
    )

    util_base = _sigmoid(-0.9 - 0.8 * cred + 0.6 * rng.standard_normal(a))
    season = np.sqrt(_SPEND_SEASON[ch.month[person]])
    util = util_base[:, None] * np.exp(0.35 * rng.standard_normal((a, h))) * season
    util = np.clip(util + 0.15 * distress, 0.0, 1.05)
    idle = rng.random((a, h)) < _sigmoid(-2.0 + 0.5 * cred + 0.5 * rng.standard_normal(a))[:, None]
    balance = np.where(idle, 0.0, np.round(limit * util, 2))

    pb = ch.pb[person]
    length = pb[:, 1:] - pb[:, :-1]
    stmt = pb[:, :-1] + np.minimum(rng.integers(0, 28, a)[:, None], length - 1)
    due = stmt + rng.choice(np.array([9, 10, 15, 20]), a)[:, None]
    late_p = _sigmoid(
        _W.late_logit
        - _W.late_on_credit * cred[:, None]
        + _LATE_SEASON[ch.month[person]]
        + _W.late_in_distress * distress
    )
    late = rng.random((a, h)) < late_p
    scale = 4.0 + 22.0 * distress
    raw_dpd = np.where(late, 1 + np.minimum(rng.exponential(scale), 119).astype(np.int64), 0)
    billed = is_open & (balance > 0)
    # Oldest dues are paid first: a very late payment delays the following ones too.
    pay = np.maximum.accumulate(np.where(billed, due + raw_dpd, _NAT), axis=1)
    dpd = pay - due

    # Delinquency status at each statement: age of the oldest due still unpaid then.
    status = np.zeros((a, h), dtype=np.int64)
    for lag in range(1, min(h, 6)):
        unpaid = billed[:, :-lag] & (pay[:, :-lag] > stmt[:, lag:])
        age = np.where(unpaid, stmt[:, lag:] - due[:, :-lag], 0)
        status[:, lag:] = np.maximum(status[:, lag:], age)

    full = rng.random((a, h)) < _sigmoid(2.0 + 1.0 * cred)[:, None] * (1 - 0.5 * distress)
    paid = np.where(full, balance, np.round(balance * rng.uniform(0.1, 0.9, (a, h)), 2))

    obs = ch.obs_day[person][:, None]
    srow, scol = np.nonzero(is_open)
    rrow, rcol = np.nonzero(billed & (pay < obs))
    n_s, n_r = len(srow), len(rrow)
    pay_ns = pay[rrow, rcol] * _DAY_NS + (rng.random(n_r) * _DAY_NS).astype(np.int64)
    return {
        "person": np.concatenate([person[srow], person[rrow]]),
        "time": np.concatenate([stmt[srow, scol] * _DAY_NS, pay_ns]),
        "etype": np.concatenate(
            [
                np.full(n_s, _EVENT_CODE["statement"], np.int8),
                np.full(n_r, _EVENT_CODE["repayment"], np.int8),
            ]
        ),
        "account": np.concatenate([number[srow], number[rrow]]).astype(np.int8),
        "balance": np.concatenate([balance[srow, scol], np.full(n_r, np.nan)]),
        "credit_limit": np.concatenate([limit[srow, scol], np.full(n_r, np.nan)]),
        "amount": np.concatenate([np.full(n_s, np.nan), paid[rrow, rcol]]),
        "amount_due": np.concatenate([np.full(n_s, np.nan), balance[rrow, rcol]]),
        "due_date": np.concatenate([np.full(n_s, _NAT), due[rrow, rcol]]),
        "dpd": np.concatenate([status[srow, scol], dpd[rrow, rcol]]),
    }


def _utility_events(rng: np.random.Generator, ch: _Chunk) -> dict[str, np.ndarray]:
    """Utility bills paid through the platform: regular for good payers, patchy for others."""
    n_kinds = len(_UTILITY_BASE)
    user = rng.random(ch.n) < _sigmoid(-0.7 + 0.4 * ch.capacity_signal)
    owns = user[:, None] & (rng.random((ch.n, n_kinds)) < _UTILITY_OWN[None, :])
    person, kind = np.nonzero(owns)
    k = len(person)
    regular = _sigmoid(2.2 + 0.9 * ch.capacity_signal + 0.4 * rng.standard_normal(ch.n))
    household = np.exp(
        0.3 * np.log(ch.income / _W.median_income) + 0.35 * rng.standard_normal(ch.n)
    )
    p_pay = regular[person][:, None] * _UTILITY_MONTHLY[kind][:, None]
    p_pay = p_pay * (1 - 0.5 * ch.lat.distress[person])
    paid = ch.active[person] & (rng.random((k, ch.active.shape[1])) < p_pay)
    row, period = np.nonzero(paid)
    who, what = person[row], kind[row]
    amount = (
        _UTILITY_BASE[what]
        * household[who]
        * _UTILITY_SEASON[what, ch.month[who, period]]
        * np.exp(0.15 * rng.standard_normal(len(row)))
    )
    return {
        "person": who,
        "time": _times_in_periods(rng, ch.pb, who, period),
        "etype": np.full(len(row), _EVENT_CODE["utility_payment"], np.int8),
        "amount": np.round(amount, 2),
        "category": _UTILITY_CODES[what].astype(np.int8),
    }


def _topup_events(rng: np.random.Generator, ch: _Chunk) -> dict[str, np.ndarray]:
    """Phone top-ups: stretched budgets top up often and in small amounts."""
    user = rng.random(ch.n) < 0.5
    rate = np.exp(np.log(0.45) + 0.5 * rng.standard_normal(ch.n) - 0.2 * ch.capacity_signal)
    distress = ch.lat.distress
    lam = np.where(ch.active & user[:, None], rate[:, None] * (1 + 0.8 * distress), 0.0)
    counts = rng.poisson(lam)
    person, period = np.nonzero(counts)
    reps = counts[person, period]
    person, period = np.repeat(person, reps), np.repeat(period, reps)
    level = (
        2.8
        + 0.8 * ch.capacity_signal[person]
        + 0.5 * np.log(ch.income[person] / _W.median_income)
        - 1.0 * distress[person, period]
        + 0.8 * rng.standard_normal(len(person))
    )
    idx = np.clip(np.round(level), 0, len(_TOPUP_LEVELS) - 1).astype(np.int64)
    return {
        "person": person,
        "time": _times_in_periods(rng, ch.pb, person, period),
        "etype": np.full(len(person), _EVENT_CODE["phone_topup"], np.int8),
        "amount": _TOPUP_LEVELS[idx],
    }


def _purchase_events(rng: np.random.Generator, ch: _Chunk) -> dict[str, np.ndarray]:
    """Purchases: seasonal volume; risky people buy more gaming/luxury and confirm less."""
    rate = np.exp(np.log(0.25) + 0.7 * rng.standard_normal(ch.n)) * np.where(ch.lat.thin, 1.3, 1.0)
    lam = np.where(ch.active, rate[:, None] * _SPEND_SEASON[ch.month], 0.0)
    counts = rng.poisson(lam)
    person, period = np.nonzero(counts)
    reps = counts[person, period]
    person, period = np.repeat(person, reps), np.repeat(period, reps)
    k = len(person)
    pref = ch.preference[person]
    logits = (
        np.log(_PURCHASE_SHARE)[None, :]
        - pref[:, None] * _PURCHASE_RISK_TILT[None, :]
        + _PURCHASE_SEASON_TILT[ch.month[person, period]]
        + rng.gumbel(size=(k, len(_PURCHASE_SHARE)))
    )
    category = np.argmax(logits, axis=1)
    amount = (
        _PURCHASE_MEDIAN[category]
        * (ch.income[person] / _W.median_income) ** 0.35
        * np.exp(0.6 * rng.standard_normal(k))
    )
    confirmed = rng.random(k) < _sigmoid(1.8 + 0.8 * pref)
    returned = rng.random(k) < _sigmoid(-2.7 - 0.4 * pref)
    review = rng.random(k) < _sigmoid(-0.6 + 0.6 * pref)
    return {
        "person": person,
        "time": _times_in_periods(rng, ch.pb, person, period),
        "etype": np.full(k, _EVENT_CODE["purchase"], np.int8),
        "amount": np.clip(np.round(amount, 2), 0.01, 1_000_000),
        "category": category.astype(np.int8),
        "receipt_confirmed": confirmed.astype(np.int8),
        "returned": returned.astype(np.int8),
        "review_left": review.astype(np.int8),
    }


def _identity_events(rng: np.random.Generator, ch: _Chunk) -> dict[str, np.ndarray]:
    """Address changes (risky people move more) and profile updates (good people update)."""
    years = ch.lat.history / 12
    moves = rng.poisson(years * 0.25 * np.exp(-0.45 * ch.identity))
    updates = rng.poisson(years * 0.6 * np.exp(0.25 * ch.identity))
    person = np.concatenate(
        [np.repeat(np.arange(ch.n), moves), np.repeat(np.arange(ch.n), updates)]
    )
    etype = np.concatenate(
        [
            np.full(moves.sum(), _EVENT_CODE["address_change"], np.int8),
            np.full(updates.sum(), _EVENT_CODE["profile_update"], np.int8),
        ]
    )
    start = ch.pb[person, ch.first[person]]
    return {
        "person": person,
        "time": _times_between(rng, start, ch.obs_day[person]),
        "etype": etype,
    }


# Columns of an event block and the value that means "missing" in each.
_EVENT_FILL: dict[str, tuple[type, object]] = {
    "person": (np.int64, None),
    "time": (np.int64, None),
    "etype": (np.int8, None),
    "account": (np.int8, 0),
    "amount": (np.float64, np.nan),
    "balance": (np.float64, np.nan),
    "credit_limit": (np.float64, np.nan),
    "amount_due": (np.float64, np.nan),
    "due_date": (np.int64, _NAT),
    "dpd": (np.int64, -1),
    "category": (np.int8, -1),
    "receipt_confirmed": (np.int8, -1),
    "returned": (np.int8, -1),
    "review_left": (np.int8, -1),
}


def _concat_blocks(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out = {}
    for name, (dtype, fill) in _EVENT_FILL.items():
        parts = []
        for b in blocks:
            size = len(b["person"])
            parts.append(b[name].astype(dtype) if name in b else np.full(size, fill, dtype))
        out[name] = np.concatenate(parts)
    return out


@dataclass(frozen=True)
class _Demographics:
    """Who a person is; drawn before income, which depends on occupation and education."""

    age: np.ndarray
    gender: np.ndarray  # codes into schemas.GENDERS
    education: np.ndarray  # codes into schemas.EDUCATION_LEVELS
    occupation: np.ndarray  # codes into schemas.OCCUPATIONS


def _draw_demographics(rng: np.random.Generator, lat: _Latents) -> _Demographics:
    n = len(lat.z)
    # Protected attributes: at most weakly related to z.
    age = np.clip(np.round(36 + 11 * _propensity(rng, lat.z, 0.12)), 18, 75).astype(np.int64)
    gender_u = rng.random(n)
    p_female = 0.495 * (1 + 0.04 * np.tanh(lat.z))
    gender = np.where(gender_u < 0.01, 2, np.where(gender_u < 0.01 + p_female, 0, 1))
    edu_latent = _sigmoid(1.6 * (0.2 * lat.z + 0.2 * lat.capacity + 0.95 * rng.standard_normal(n)))
    education = np.searchsorted(_EDUCATION_CUTS, edu_latent)
    occ_logits = (
        _OCCUPATION_BASE[None, :]
        + lat.capacity[:, None] * _OCCUPATION_ON_CAPACITY[None, :]
        + rng.gumbel(size=(n, len(_OCCUPATION_BASE)))
    )
    occupation = np.argmax(occ_logits, axis=1)
    student = (age < 23) & (rng.random(n) < 0.6)
    retired = (age >= 60) & (rng.random(n) < 0.7)
    occupation = np.where(student, 4, np.where(retired, 5, occupation))
    return _Demographics(age, gender, education, occupation)


def _profiles_frame(
    rng: np.random.Generator,
    ch: _Chunk,
    demo: _Demographics,
    pid: pa.Array,
    missing_rate: float,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Profile facts as known at each person's observation date; also the registration day."""
    n, lat = ch.n, ch.lat
    obs_year = ch.obs_day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    birth_year = np.clip(obs_year - demo.age - (rng.random(n) < 0.5), 1900, 2015)
    tenure = rng.exponential(365 * 4 * np.exp(0.25 * lat.z))
    tenure = np.clip(tenure, 30, np.maximum((demo.age - 16) * 365, 31)).astype(np.int64)
    employment_start = np.where(_EMPLOYED[demo.occupation], ch.obs_day - tenure, _NAT)

    income = ch.income
    inflation = np.abs(rng.normal(0.05 + 0.12 * np.maximum(-lat.z, 0), 0.1))
    declared = np.round(income * np.exp(inflation), -2)
    p_verified = np.where(np.isin(demo.occupation, (0, 1)), 0.55, 0.2)
    verified = np.where(
        rng.random(n) < p_verified,
        np.round(income * np.exp(rng.normal(-0.02, 0.04, n))),
        np.nan,
    )
    identity_verified = rng.random(n) < _sigmoid(2.5 + 0.5 * ch.identity)
    completeness = _sigmoid(1.0 + 0.6 * ch.identity - 0.8 * lat.thin + 0.5 * rng.standard_normal(n))
    completeness = np.round(completeness * 20) / 20
    registered = np.where(
        lat.thin,
        ch.pb[np.arange(n), ch.first] - rng.integers(0, 15, n),
        ch.pb[:, 0] - rng.integers(1, 6 * 365, n),
    )

    def gone() -> np.ndarray:
        return rng.random(n) < missing_rate

    frame = pd.DataFrame(
        {
            "person_id": _str_series(pid),
            "gender": _vocab_series(np.where(gone(), -1, demo.gender), schemas.GENDERS),
            "birth_year": _int_series(birth_year, gone()),
            "education": _vocab_series(
                np.where(gone(), -1, demo.education), schemas.EDUCATION_LEVELS
            ),
            "occupation": _vocab_series(np.where(gone(), -1, demo.occupation), schemas.OCCUPATIONS),
            "employment_start_date": _days_to_datetime(np.where(gone(), _NAT, employment_start)),
            "declared_income": np.where(gone(), np.nan, declared),
            "verified_income": np.where(gone(), np.nan, verified),
            "identity_verified": pd.arrays.BooleanArray(identity_verified, gone()),
            "profile_completeness": np.where(gone(), np.nan, completeness),
            "registered_date": _days_to_datetime(np.where(gone(), _NAT, registered)),
        }
    )
    return frame, registered


def _contacts_frame(
    rng: np.random.Generator,
    ch: _Chunk,
    pid: pa.Array,
    registered: np.ndarray,
    contacts_mean: float,
) -> pd.DataFrame:
    """Directed contacts with homophily: people connect to others of similar risk."""
    n, z = ch.n, ch.lat.z
    key = z + _W.homophily_noise * rng.standard_normal(n)
    by_rank = np.argsort(key, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_rank] = np.arange(n)
    weight = np.exp(0.08 * z)
    lam = contacts_mean * weight / weight.mean() / (1 - _W.no_contacts_share)
    counts = np.where(rng.random(n) < _W.no_contacts_share, 0, rng.poisson(lam))
    src = np.repeat(np.arange(n), counts)
    e = len(src)
    step = rng.geometric(1 / _W.contact_rank_scale, e) * np.where(rng.random(e) < 0.5, -1, 1)
    pos = rank[src] + step
    pos = np.where((pos < 0) | (pos >= n), rank[src] - step, pos)
    dst = by_rank[np.clip(pos, 0, n - 1)]
    external = rng.random(e) < _W.external_contact_share
    outside = rng.integers(0, 10**8, e)
    keep = external | (dst != src)
    # One code per (person, contact): internal contacts first, then outside ones.
    code = np.where(external, n + outside, dst)
    pair = src[keep] * (n + 10**8) + code[keep]
    pair = np.unique(pair)
    src, code = pair // (n + 10**8), pair % (n + 10**8)
    is_out = code >= n
    contact = pc.if_else(
        pa.array(is_out),
        _fixed_ids("N", np.where(is_out, code - n, 0), 8),
        pc.take(pid, pa.array(np.where(is_out, 0, code))),
    )
    obs = ch.obs_day[src]
    start = np.maximum(registered[src], obs - 8 * 365)
    since = start + (rng.random(len(src)) * (obs - start)).astype(np.int64)
    return pd.DataFrame(
        {
            "person_id": _str_series(pc.take(pid, pa.array(src))),
            "contact_id": _str_series(contact),
            "since_date": _days_to_datetime(since),
        }
    )


def _events_frame(
    ev: dict[str, np.ndarray],
    pid: pa.Array,
    person_numbers: np.ndarray,
    first_event: int,
    width: int,
) -> pd.DataFrame:
    # By person, then time (to the second; ties keep generation order): one int64 key.
    seconds = ev["time"] // 10**9
    seconds = seconds - (seconds.min() if len(seconds) else 0)
    key = ev["person"] * (int(seconds.max(initial=0)) + 1) + seconds
    order = np.argsort(key, kind="stable")
    ev = {k: v[order] for k, v in ev.items()}
    m = len(order)
    person = ev["person"]
    account = ev["account"]
    return pd.DataFrame(
        {
            "event_id": _str_series(
                _fixed_ids("E", first_event + 1 + np.arange(m), _EVENT_ID_WIDTH)
            ),
            "person_id": _str_series(pc.take(pid, pa.array(person))),
            "event_time": ev["time"].view("datetime64[ns]"),
            "event_type": _vocab_series(ev["etype"], schemas.EVENT_TYPES),
            "account_id": _str_series(
                _fixed_ids("A", person_numbers[person], width, suffix=account), account > 0
            ),
            "amount": ev["amount"],
            "balance": ev["balance"],
            "credit_limit": ev["credit_limit"],
            "amount_due": ev["amount_due"],
            "due_date": _days_to_datetime(ev["due_date"]),
            "days_past_due": _int_series(ev["dpd"], ev["dpd"] < 0),
            "category": _vocab_series(ev["category"], _CATEGORY_VOCAB),
            "receipt_confirmed": _bool_series(ev["receipt_confirmed"]),
            "returned": _bool_series(ev["returned"]),
            "review_left": _bool_series(ev["review_left"]),
        }
    )


def _simulate_chunk(
    ctx: _Context, index: int, start: int, n: int, first_event: int
) -> tuple[BehaviourData, pd.DataFrame]:
    """People ``start .. start+n-1`` (0-based), drawn from chunk ``index``'s own stream."""
    sim, cal = ctx.sim, ctx.cal
    rng = np.random.default_rng(
        np.random.SeedSequence(ctx.base.seed, spawn_key=(_CHUNK_STREAM, index))
    )
    h = sim.history_months
    cohort = rng.integers(0, sim.n_cohorts, n)
    newest = cohort == sim.n_cohorts - 1
    lat = _draw_latents(rng, n, sim.thin_file_share, h, np.where(newest, sim.drift, 0.0))
    true_pd = _sigmoid(ctx.alpha + _risk_index(lat))
    default = rng.random(n) < true_pd

    pb = cal.bounds[cohort]
    first = (h - lat.history).astype(np.int64)
    demo = _draw_demographics(rng, lat)
    # Students, the unemployed and retired people earn less; education pays a little.
    income = _W.median_income * np.exp(
        0.4 * lat.capacity
        + _OCCUPATION_INCOME[demo.occupation]
        + 0.08 * (demo.education - 2)
        + 0.3 * rng.standard_normal(n)
    )
    ch = _Chunk(
        n=n,
        lat=lat,
        pb=pb,
        month=cal.month[cohort],
        active=np.arange(h)[None, :] >= first[:, None],
        first=first,
        obs_day=pb[:, h],
        income=income,
        credit=_propensity(rng, lat.z, _W.credit_on_z),
        capacity_signal=_propensity(rng, lat.capacity, _W.capacity_signal_on_capacity),
        preference=_propensity(rng, lat.z, _W.preference_on_z),
        identity=_propensity(rng, lat.z, _W.identity_on_z),
    )
    numbers = start + 1 + np.arange(n, dtype=np.int64)
    pid = _fixed_ids("P", numbers, ctx.person_width)

    profiles, registered = _profiles_frame(rng, ch, demo, pid, sim.missing_rate)
    events = _concat_blocks(
        [
            _credit_events(rng, ch),
            _utility_events(rng, ch),
            _topup_events(rng, ch),
            _purchase_events(rng, ch),
            _identity_events(rng, ch),
        ]
    )
    events_df = _events_frame(events, pid, numbers, first_event, ctx.person_width)
    contacts = _contacts_frame(rng, ch, pid, registered, sim.contacts_mean)

    obs_dates = _days_to_datetime(ch.obs_day)
    outcomes = pd.DataFrame(
        {
            "person_id": _str_series(pid),
            "observation_date": obs_dates,
            "default_12m": _int_series(default.astype(np.int64), np.zeros(n, dtype=bool)),
        }
    )
    truth = pd.DataFrame(
        {"person_id": _str_series(pid), "observation_date": obs_dates, "true_pd": true_pd}
    )
    data = BehaviourData(
        profiles=schemas.conform(profiles, schemas.PROFILES),
        outcomes=schemas.conform(outcomes, schemas.OUTCOMES),
        events=schemas.conform(events_df, schemas.EVENTS),
        contacts=schemas.conform(contacts, schemas.CONTACTS),
    )
    return data, truth


# --------------------------------------------------------------------------- public API


def _context(sim: SimulateParams, base: BaseParams) -> _Context:
    return _Context(
        sim=sim,
        base=base,
        cal=_Calendar.build(sim, base),
        alpha=_solve_alpha(sim, base),
        person_width=max(_PERSON_ID_MIN_WIDTH, len(str(sim.n_users))),
    )


def iter_world_chunks(
    sim: SimulateParams, base: BaseParams
) -> Iterator[tuple[BehaviourData, pd.DataFrame]]:
    """The world chunk by chunk (``sim.chunk_size`` people each) with each chunk's truth.

    Contacts connect people of the same chunk; event ids run on across chunks.
    """
    ctx = _context(sim, base)
    first_event = 0
    for index, start in enumerate(range(0, sim.n_users, sim.chunk_size)):
        n = min(sim.chunk_size, sim.n_users - start)
        data, truth = _simulate_chunk(ctx, index, start, n, first_event)
        first_event += len(data.events)
        yield data, truth


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def simulate_world(sim: SimulateParams, base: BaseParams) -> tuple[BehaviourData, pd.DataFrame]:
    """The whole world in memory: the four conformed tables and the truth table.

    Equal to the concatenation of :func:`iter_world_chunks`; use :func:`write_world` for
    large populations.
    """
    parts = list(iter_world_chunks(sim, base))
    data = BehaviourData(
        **{
            name: _concat([getattr(p[0], name) for p in parts])
            for name in ("profiles", "outcomes", "events", "contacts")
        }
    )
    return data, _concat([p[1] for p in parts])


def _arrow_schema(frame: pd.DataFrame) -> pa.Schema:
    """Arrow schema of a frame with canonical dtypes (the same for every chunk)."""
    return pa.Schema.from_pandas(frame, preserve_index=False)


def _empty_truth() -> pd.DataFrame:
    dtypes = ("string", "datetime64[ns]", "float64")
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in zip(TRUTH_COLUMNS, dtypes, strict=True)})


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged; None for one class."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based rank, averaged over ties
    rank_sum = mean_rank[inverse][y.astype(bool)].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def write_world(
    sim: SimulateParams,
    base: BaseParams,
    out_dir: Path,
    truth_path: Path,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Stream the world to ``out_dir/{profiles,outcomes,events,contacts}.parquet`` and the
    truth to ``truth_path``, chunk by chunk (one row group per chunk).

    Every file is written to a temporary file beside it and moved into place only when
    all chunks succeeded. ``progress(people_done)`` is called after each chunk. Returns a
    summary: rows per table, the default rate (overall and per cohort), the mean true PD,
    the oracle AUC (true PD vs label: the best any model could do) and the cohorts.
    """
    out_dir, truth_path = Path(out_dir), Path(truth_path)
    targets = {name: out_dir / f"{name}.parquet" for name in schemas.TABLES}
    targets["truth"] = truth_path
    arrow = {name: _arrow_schema(schemas.empty_table(t)) for name, t in schemas.TABLES.items()}
    arrow["truth"] = _arrow_schema(_empty_truth())
    rows = dict.fromkeys(targets, 0)
    labels, pds, dates = [], [], []
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(path)) for name, path in targets.items()}
        writers = {
            name: stack.enter_context(pq.ParquetWriter(tmp[name], arrow[name], compression="zstd"))
            for name in targets
        }
        for data, truth in iter_world_chunks(sim, base):
            frames = {name: getattr(data, name) for name in schemas.TABLES}
            frames["truth"] = truth
            for name, frame in frames.items():
                table = pa.Table.from_pandas(frame, schema=arrow[name], preserve_index=False)
                writers[name].write_table(table, row_group_size=max(len(frame), 1))
                rows[name] += len(frame)
            labels.append(data.outcomes["default_12m"].to_numpy(dtype=np.int8))
            pds.append(truth["true_pd"].to_numpy())
            dates.append(truth["observation_date"].to_numpy())
            if progress is not None:
                progress(rows["truth"])
        for writer in writers.values():  # footers first, then the files move into place
            writer.close()
    y, p = np.concatenate(labels), np.concatenate(pds)
    by_cohort = pd.Series(y).groupby(np.concatenate(dates)).mean()
    return {
        "people": rows["truth"],
        "rows": rows,
        "cohorts": [d.isoformat() for d in cohort_dates(sim, base)],
        "default_rate": float(y.mean()),
        "default_rate_by_cohort": {k.date().isoformat(): float(v) for k, v in by_cohort.items()},
        "mean_true_pd": float(p.mean()),
        "oracle_auc": _auc(y, p),
        "events_per_person": rows["events"] / rows["truth"],
    }
