"""The synthetic behaviour world: a seeded, vectorised population of platform users.

Every person has behavioural traits (payment discipline, financial capacity, leverage,
identity stability, shopping preferences), correlated through a general creditworthiness
``z``, plus a monthly financial-distress state. The events reveal each trait through
many noisy events (statements, repayments, bills, top-ups, purchases, profile facts),
and the true 12-month probability of default is driven by what those events show, not by
hidden person-level noise. It is a competing-risks truth: a person defaults if any of
four ways happens (``_channel_logits``):

1. arrears roll forward: poor discipline, late repayments in the last 90 days, the
   arrears on the latest statements, a young credit file (a flat risk for a first line);
2. over-indebtedness: a high utilisation *and* a low income (either alone is harmless);
3. income shock: a new job *and* no verified income (a verified payroll protects);
4. thin file: with little history, a recent late repayment or contacts in arrears.

So risk concentrates in pockets (AND) that combine by OR: trees can draw that, an
additive WoE scorecard cannot, and every effect is monotone in the direction the
feature registry declares. Only a small person-level logit shock is invisible. Thin
files stay harder to score: a few months of events say little.

The truth (``true_pd`` per outcome row) is returned separately and written to its own
file for evaluation only; it is never part of the four input tables.

How the world is built (all numpy, no per-person Python loops):

- People are generated in chunks of ``sim.chunk_size``; chunk ``k`` draws from
  ``SeedSequence(base.seed, spawn_key=(0, k))``, so the world depends on the parameters
  only. The intercept of the default logit is solved once, by Newton/bisection on a
  fixed reference sample (people, credit panel and contacts drawn by the same code from
  their own stream, ``spawn_key=(1,)``), so that the mean true PD hits
  ``sim.default_rate`` whatever ``n_users`` or the chunking.
- Each person belongs to one cohort (observation date); the history window is the
  ``sim.history_months`` months before it, split into monthly periods. Thin-file people
  joined 1-6 months before their observation date. Every event lies strictly before the
  person's observation date.
- ``sim.drift`` moves every trait of the newest cohort by ``drift`` SDs (negative =
  riskier). The intercept is solved without drift: drift changes the newest cohort's
  default rate, as a real shift in the population would, and nothing of the older
  cohorts' truth (every draw before the truth has a fixed shape per person, and
  contacts stay within a cohort).
- Contacts connect people of the same chunk and cohort (plus ~10% outside the platform,
  ``N...`` ids), with homophily in discipline, capacity and leverage.
- ``sim.performance_months`` names the label's window; the simulator draws the label
  directly from the true PD, so it does not change the world.
- ``sim.acceptance`` (off by default) applies a historical acceptance policy after the
  world is drawn (:mod:`credit_scoring.data.acceptance`): declined people keep their
  features but lose their outcome; outcomes and truth gain a ``decision`` column.
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
from credit_scoring.data import acceptance
from credit_scoring.io import atomic_path
from credit_scoring.schemas import BehaviourData

TRUTH_COLUMNS: tuple[str, ...] = ("person_id", "observation_date", "true_pd")

_DAY_NS = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1)
_NAT = np.iinfo(np.int64).min  # the int64 value numpy uses for NaT
_CHUNK_STREAM = 0
_REFERENCE_STREAM = 1
_REFERENCE_SIZE = 2**16
_OFF = -50.0  # logit of a way to default that does not apply (no credit account)
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
    """Structural coefficients of the world (not user parameters; see module docstring)."""

    # Behavioural traits: correlation of each with the general factor z.
    discipline_on_z: float = 0.6
    capacity_on_z: float = 0.3
    leverage_on_z: float = -0.3
    identity_on_z: float = 0.3
    preference_on_z: float = 0.5
    # Financial distress: a monthly two-state chain, entered more often by people with
    # little discipline or capacity.
    distress_enter_logit: float = -3.9
    distress_enter_on_discipline: float = 0.6
    distress_enter_on_capacity: float = 0.5
    distress_exit: float = 0.3
    # Credit accounts: utilisation follows leverage; paying late, or less than the full
    # balance, follows (a lack of) discipline.
    account_share_full: float = 0.8
    account_share_thin: float = 0.5
    late_logit: float = -3.7
    late_on_discipline: float = 1.3
    late_in_distress: float = 2.8
    full_on_discipline: float = 1.6
    util_logit: float = -0.8
    util_on_leverage: float = 1.0
    util_in_distress: float = 0.2
    # Social graph: within a cohort, sort by discipline + capacity - leverage + noise and
    # connect to near ranks.
    homophily_noise: float = 1.0
    contact_rank_scale: float = 15.0
    no_contacts_share: float = 0.08
    external_contact_share: float = 0.1
    # Monthly income (CNY) of a person with average capacity.
    median_income: float = 7000.0
    income_on_capacity: float = 0.5
    income_noise: float = 0.1
    inflation_sd: float = 0.1  # noise of the declared income's inflation (log scale)
    # The truth: four ways to default (see _channel_logits); logits before the intercept.
    # 1. Arrears roll forward. With a credit account: discipline, recent lateness, the
    #    arrears now and the account's age; without one, a flat first-credit risk.
    roll_discipline: float = 0.5  # times softplus(-1.5 discipline - 0.5)
    roll_late: float = 0.7  # per late repayment in the last 90 days (at most 4 count)
    roll_arrears: float = 0.03  # per day past due on the latest statements (at most 90)
    roll_new_credit: float = 1.0  # fades with the months since the first account opened
    roll_no_account: float = 1.2
    # 2. Over-indebtedness: utilisation above ~48% and an income below ~4,800 CNY.
    debt_risk: float = 5.5
    debt_utilisation: float = 0.48
    debt_utilisation_sharpness: float = 25.0  # per unit of utilisation
    debt_income: float = 4800.0
    debt_income_sharpness: float = 8.0  # per unit of log income
    # 3. Income shock: employed for less than about a year and income not verified.
    shock_risk: float = 5.5
    shock_base: float = -1.0
    shock_tenure_years: float = 1.0
    shock_tenure_sharpness: float = 4.0  # per year
    # 4. Thin file with a recent late payment, or contacts in arrears.
    thin_risk: float = 5.5
    thin_base: float = -1.0
    thin_contacts: float = 1.5  # per share of contacts with a 30+ days late repayment
    # Shared by every way: an unverified identity, and what no data shows.
    identity_unverified: float = 0.5
    unobserved_sd: float = 0.1


_W = _World()

# Seasonality by calendar month (index 0 = January).
# Spending: Spring Festival (Jan/Feb), 618 (June), Double 11 (November).
_SPEND_SEASON = np.array([1.3, 1.35, 1.0, 1.0, 1.0, 1.2, 1.0, 1.0, 1.0, 1.05, 1.9, 1.15])
# Extra logit of paying late: after Spring Festival (Feb/March).
_LATE_SEASON = np.array([0.15, 0.6, 0.45, 0.1, 0, 0, 0, 0, 0, 0, 0, 0.05])
_UTILITY_BASE = np.array([140.0, 55.0, 70.0, 100.0, 40.0])  # electricity water gas internet other
_UTILITY_OWN = np.array([0.8, 0.3, 0.15, 0.3, 0.05])
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


# --------------------------------------------------------------------------- latent state


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


@dataclass(frozen=True)
class _Latents:
    """Hidden state of each person: never written, only its consequences are."""

    z: np.ndarray  # general creditworthiness, higher is better
    discipline: np.ndarray  # pays on time and in full, higher is better
    capacity: np.ndarray  # income and savings, higher is better
    leverage: np.ndarray  # appetite for credit (uses more of the limit), higher is riskier
    identity: np.ndarray  # stable identity (moves rarely, keeps the profile), higher is better
    preference: np.ndarray  # sensible shopping, higher is better
    thin: np.ndarray  # joined the platform recently
    history: np.ndarray  # months of history on the platform (H for full-file people)
    distress: np.ndarray  # (n, H) bool: in financial distress in that month


def _trait(rng: np.random.Generator, z: np.ndarray, loading: float) -> np.ndarray:
    """A standard-normal trait with correlation ``loading`` to ``z`` (when z is N(0, 1))."""
    return loading * z + np.sqrt(1 - loading**2) * rng.standard_normal(len(z))


def _draw_latents(
    rng: np.random.Generator,
    n: int,
    thin_share: float,
    h: int,
    shift: np.ndarray | float,
) -> _Latents:
    """Latent state of ``n`` people with ``h`` months of history; traits moved by ``shift``."""
    z = rng.standard_normal(n)
    # A drift moves every trait by ``shift`` SDs towards (positive) or away from credit.
    discipline = _trait(rng, z, _W.discipline_on_z) + shift
    capacity = _trait(rng, z, _W.capacity_on_z) + shift
    leverage = _trait(rng, z, _W.leverage_on_z) - shift
    identity = _trait(rng, z, _W.identity_on_z) + shift
    preference = _trait(rng, z, _W.preference_on_z) + shift
    z = z + shift
    thin = rng.random(n) < thin_share
    history = np.where(thin, rng.integers(1, min(6, h) + 1, n), h)
    enter = _sigmoid(
        _W.distress_enter_logit
        - _W.distress_enter_on_discipline * discipline
        - _W.distress_enter_on_capacity * capacity
    )
    state = rng.random(n) < enter / (enter + _W.distress_exit)
    u = rng.random((n, h))
    distress = np.empty((n, h), dtype=bool)
    for m in range(h):  # a loop over months; every step is vectorised over people
        if m:
            state = np.where(state, u[:, m] >= _W.distress_exit, u[:, m] < enter)
        distress[:, m] = state
    return _Latents(
        z, discipline, capacity, leverage, identity, preference, thin, history, distress
    )


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


@dataclass(frozen=True)
class _Demographics:
    """Who a person is; drawn before income, which depends on occupation and education."""

    age: np.ndarray
    gender: np.ndarray  # codes into schemas.GENDERS
    education: np.ndarray  # codes into schemas.EDUCATION_LEVELS
    occupation: np.ndarray  # codes into schemas.OCCUPATIONS


@dataclass
class _Chunk:
    """Per-person arrays of one chunk, shared by the event generators and the truth."""

    n: int
    cohort: np.ndarray  # index of the person's observation date (0 = oldest)
    lat: _Latents
    demo: _Demographics
    pb: np.ndarray  # (n, H+1) period bounds in days
    month: np.ndarray  # (n, H) calendar month of each period
    active: np.ndarray  # (n, H) bool: period within the person's history on the platform
    first: np.ndarray  # first active period
    obs_day: np.ndarray
    income: np.ndarray  # true monthly income
    tenure: np.ndarray  # days in the current employment (0 when not employed)
    income_verified: np.ndarray  # bool: income verified from documents or payroll
    identity_verified: np.ndarray  # bool


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


def _draw_demographics(rng: np.random.Generator, lat: _Latents) -> _Demographics:
    n = len(lat.z)
    # Protected attributes: at most weakly related to z.
    age = np.clip(np.round(36 + 11 * _trait(rng, lat.z, 0.12)), 18, 75).astype(np.int64)
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


def _draw_chunk(
    rng: np.random.Generator, sim: SimulateParams, cal: _Calendar, n: int, drift: float
) -> _Chunk:
    """People, their traits and the facts about them that the truth depends on."""
    h = sim.history_months
    cohort = rng.integers(0, sim.n_cohorts, n)
    newest = cohort == sim.n_cohorts - 1
    lat = _draw_latents(rng, n, sim.thin_file_share, h, np.where(newest, drift, 0.0))
    demo = _draw_demographics(rng, lat)
    # Students, the unemployed and retired people earn less; education pays a little.
    income = _W.median_income * np.exp(
        _W.income_on_capacity * lat.capacity
        + _OCCUPATION_INCOME[demo.occupation]
        + 0.08 * (demo.education - 2)
        + _W.income_noise * rng.standard_normal(n)
    )
    employed = _EMPLOYED[demo.occupation]
    tenure = rng.exponential(365 * 4 * np.exp(0.25 * lat.z))
    tenure = np.clip(tenure, 30, np.maximum((demo.age - 16) * 365, 31)).astype(np.int64)
    tenure = np.where(employed, tenure, 0)
    p_verified = np.where(np.isin(demo.occupation, (0, 1)), 0.55, 0.2)
    pb = cal.bounds[cohort]
    first = (h - lat.history).astype(np.int64)
    return _Chunk(
        n=n,
        cohort=cohort,
        lat=lat,
        demo=demo,
        pb=pb,
        month=cal.month[cohort],
        active=np.arange(h)[None, :] >= first[:, None],
        first=first,
        obs_day=pb[:, h],
        income=income,
        tenure=tenure,
        income_verified=rng.random(n) < p_verified,
        identity_verified=rng.random(n) < _sigmoid(2.5 + 0.6 * lat.identity),
    )


# --------------------------------------------------------------------------- credit


@dataclass(frozen=True)
class _Credit:
    """Monthly panel of every credit account (rows) and what it says about each person."""

    person: np.ndarray  # (a,) owner
    number: np.ndarray  # (a,) account number of the owner (1 or 2)
    is_open: np.ndarray  # (a, H)
    limit: np.ndarray  # (a, H)
    balance: np.ndarray  # (a, H) statement balance
    stmt: np.ndarray  # (a, H) statement day
    due: np.ndarray  # (a, H) due day
    pay: np.ndarray  # (a, H) repayment day (only meaningful where billed)
    billed: np.ndarray  # (a, H) a balance was due
    status: np.ndarray  # (a, H) days past due shown on the statement
    paid: np.ndarray  # (a, H) amount repaid
    # Per person, as the truth sees them.
    has_account: np.ndarray  # bool
    util_now: np.ndarray  # mean balance / limit of the statements in the last 90 days
    late_recent: np.ndarray  # late repayments made in the last 90 days
    status_now: np.ndarray  # worst days past due on the latest statements
    credit_months: np.ndarray  # months since the first account opened (0: no account)
    severe_year: np.ndarray  # bool: a repayment 30+ days late in the last 365 days


def _credit_panel(rng: np.random.Generator, ch: _Chunk) -> _Credit:
    """Statements and repayments of each credit account, month by month.

    Every person has two account slots and every random draw is made for both slots,
    used or not: the draws of one person never depend on another's traits, so a drift
    of the newest cohort leaves the older cohorts' credit (and truth) unchanged.
    """
    lat, h, n = ch.lat, ch.active.shape[1], ch.n

    def per_slot(draw: Callable[[tuple[int, ...]], np.ndarray], *shape: int) -> np.ndarray:
        return draw((n, 2, *shape))[person, slot]

    share = np.where(lat.thin, _W.account_share_thin, _W.account_share_full)
    has = rng.random(n) < share
    # First account: open before the window (most full-file people) or within the history.
    within = lat.thin | (rng.random(n) < 0.4)
    offset = (rng.random(n) * lat.history).astype(np.int64)
    open_first = np.where(within, ch.first + offset, 0)
    # A second account for some full-file people (credit seeking: more for leveraged people).
    second = has & ~lat.thin & (rng.random(n) < _sigmoid(-2.2 + 0.6 * lat.leverage))
    open_second = rng.integers(1, h, n)
    person, slot = np.nonzero(np.stack([has, second], axis=1))
    number = slot + 1
    opened = np.where(slot == 0, open_first[person], open_second[person])
    disc, lev = lat.discipline[person], lat.leverage[person]
    distress = lat.distress[person].astype(float)
    months = np.arange(h)
    is_open = months[None, :] >= opened[:, None]

    limit0 = ch.income[person] * 1.5 * np.exp(0.2 * disc + 0.3 * per_slot(rng.standard_normal))
    limit0 = np.where(number == 2, limit0 * 0.5, limit0)
    limit0 = np.clip(np.round(limit0 / 500) * 500, 500, 50_000)
    raised = per_slot(rng.random) < _sigmoid(-1.0 + 0.8 * disc)
    raise_at = per_slot(lambda size: rng.integers(1, h, size))
    raise_by = per_slot(lambda size: rng.uniform(1.2, 1.6, size))
    limit1 = np.clip(np.round(limit0 * raise_by / 500) * 500, 500, 50_000)
    limit = np.where(
        raised[:, None] & (months[None, :] >= raise_at[:, None]),
        limit1[:, None],
        limit0[:, None],
    )

    util_base = _sigmoid(
        _W.util_logit + _W.util_on_leverage * lev + 0.3 * per_slot(rng.standard_normal)
    )
    season = np.sqrt(_SPEND_SEASON[ch.month[person]])
    util = util_base[:, None] * np.exp(0.3 * per_slot(rng.standard_normal, h)) * season
    util = np.clip(util + _W.util_in_distress * distress, 0.0, 1.05)
    p_idle = _sigmoid(-2.2 - 0.6 * lev + 0.5 * per_slot(rng.standard_normal))
    idle = per_slot(rng.random, h) < p_idle[:, None]
    balance = np.where(idle, 0.0, np.round(limit * util, 2))

    pb = ch.pb[person]
    length = pb[:, 1:] - pb[:, :-1]
    stmt_day = per_slot(lambda size: rng.integers(0, 28, size))
    stmt = pb[:, :-1] + np.minimum(stmt_day[:, None], length - 1)
    grace = per_slot(lambda size: rng.choice(np.array([9, 10, 15, 20]), size))
    due = stmt + grace[:, None]
    late_p = _sigmoid(
        _W.late_logit
        - _W.late_on_discipline * disc[:, None]
        + _LATE_SEASON[ch.month[person]]
        + _W.late_in_distress * distress
    )
    late = per_slot(rng.random, h) < late_p
    days = (4.0 + 22.0 * distress) * per_slot(rng.standard_exponential, h)
    raw_dpd = np.where(late, 1 + np.minimum(days, 119).astype(np.int64), 0)
    billed = is_open & (balance > 0)
    # Oldest dues are paid first: a very late payment delays the following ones too.
    pay = np.maximum.accumulate(np.where(billed, due + raw_dpd, _NAT), axis=1)

    # Delinquency status at each statement: age of the oldest due still unpaid then.
    status = np.zeros(late.shape, dtype=np.int64)
    for lag in range(1, min(h, 6)):
        unpaid = billed[:, :-lag] & (pay[:, :-lag] > stmt[:, lag:])
        age = np.where(unpaid, stmt[:, lag:] - due[:, :-lag], 0)
        status[:, lag:] = np.maximum(status[:, lag:], age)

    # Paying the full balance, or else a share of it, follows discipline.
    p_full = _sigmoid(0.8 + _W.full_on_discipline * disc - 0.4 * lev)[:, None]
    full = per_slot(rng.random, h) < p_full * (1 - 0.5 * distress)
    part = _sigmoid(-0.2 + 0.8 * disc[:, None] + 0.6 * per_slot(rng.standard_normal, h))
    paid = np.where(full, balance, np.round(balance * part, 2))

    # What the truth reads, per person, as the events show it before the observation
    # date: late repayments and utilisation in the last 90 days, the arrears on the
    # latest statements, seriously late repayments in the last year.
    obs = ch.obs_day[person][:, None]
    shown = billed & (pay < obs)
    days_late = pay - due
    recent_late = shown & (days_late > 0) & (pay >= obs - 90)
    late_recent = np.bincount(person, recent_late.sum(axis=1), minlength=n)
    severe = shown & (days_late >= 30) & (pay >= obs - 365)
    severe_year = np.bincount(person, severe.any(axis=1), minlength=n) > 0
    stated = is_open & (stmt >= obs - 90)
    ratio = np.where(stated, balance / limit, 0.0).sum(axis=1)
    n_stated = np.bincount(person, stated.sum(axis=1), minlength=n)
    util_now = np.full(n, np.nan)
    np.divide(
        np.bincount(person, ratio, minlength=n),
        n_stated,
        out=util_now,
        where=n_stated > 0,
    )
    status_now = np.zeros(n, dtype=np.int64)
    np.maximum.at(status_now, person, np.where(is_open[:, -1], status[:, -1], 0))
    credit_months = np.zeros(n, dtype=np.int64)
    np.maximum.at(credit_months, person, h - opened)
    return _Credit(
        person=person,
        number=number,
        is_open=is_open,
        limit=limit,
        balance=balance,
        stmt=stmt,
        due=due,
        pay=pay,
        billed=billed,
        status=status,
        paid=paid,
        has_account=np.bincount(person, minlength=n) > 0,
        credit_months=credit_months,
        util_now=util_now,
        late_recent=late_recent,
        status_now=status_now,
        severe_year=severe_year,
    )


def _credit_events(rng: np.random.Generator, ch: _Chunk, cr: _Credit) -> dict[str, np.ndarray]:
    """The panel as statement and repayment events (repayments made before the observation)."""
    obs = ch.obs_day[cr.person][:, None]
    srow, scol = np.nonzero(cr.is_open)
    rrow, rcol = np.nonzero(cr.billed & (cr.pay < obs))
    n_s, n_r = len(srow), len(rrow)
    pay_ns = cr.pay[rrow, rcol] * _DAY_NS + (rng.random(n_r) * _DAY_NS).astype(np.int64)
    return {
        "person": np.concatenate([cr.person[srow], cr.person[rrow]]),
        "time": np.concatenate([cr.stmt[srow, scol] * _DAY_NS, pay_ns]),
        "etype": np.concatenate(
            [
                np.full(n_s, _EVENT_CODE["statement"], np.int8),
                np.full(n_r, _EVENT_CODE["repayment"], np.int8),
            ]
        ),
        "account": np.concatenate([cr.number[srow], cr.number[rrow]]).astype(np.int8),
        "balance": np.concatenate([cr.balance[srow, scol], np.full(n_r, np.nan)]),
        "credit_limit": np.concatenate([cr.limit[srow, scol], np.full(n_r, np.nan)]),
        "amount": np.concatenate([np.full(n_s, np.nan), cr.paid[rrow, rcol]]),
        "amount_due": np.concatenate([np.full(n_s, np.nan), cr.balance[rrow, rcol]]),
        "due_date": np.concatenate([np.full(n_s, _NAT), cr.due[rrow, rcol]]),
        "dpd": np.concatenate([cr.status[srow, scol], cr.pay[rrow, rcol] - cr.due[rrow, rcol]]),
    }


# --------------------------------------------------------------------------- other events


def _utility_events(rng: np.random.Generator, ch: _Chunk) -> dict[str, np.ndarray]:
    """Utility bills paid through the platform: regular for disciplined payers, patchy else."""
    n_kinds = len(_UTILITY_BASE)
    lat = ch.lat
    user = rng.random(ch.n) < _sigmoid(0.3 + 0.4 * lat.capacity)
    owns = user[:, None] & (rng.random((ch.n, n_kinds)) < _UTILITY_OWN[None, :])
    person, kind = np.nonzero(owns)
    k = len(person)
    regular = _sigmoid(0.8 + 1.5 * lat.discipline + 0.3 * rng.standard_normal(ch.n))
    household = np.exp(
        0.3 * np.log(ch.income / _W.median_income) + 0.35 * rng.standard_normal(ch.n)
    )
    p_pay = regular[person][:, None] * _UTILITY_MONTHLY[kind][:, None]
    p_pay = p_pay * (1 - 0.5 * lat.distress[person])
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
    capacity = ch.lat.capacity
    rate = np.exp(np.log(0.45) + 0.5 * rng.standard_normal(ch.n) - 0.2 * capacity)
    distress = ch.lat.distress
    lam = np.where(ch.active & user[:, None], rate[:, None] * (1 + 0.8 * distress), 0.0)
    counts = rng.poisson(lam)
    person, period = np.nonzero(counts)
    reps = counts[person, period]
    person, period = np.repeat(person, reps), np.repeat(period, reps)
    level = (
        2.8
        + 0.5 * capacity[person]
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
    """Purchases: seasonal volume; impulsive shoppers buy more gaming/luxury, confirm less."""
    rate = np.exp(np.log(0.25) + 0.7 * rng.standard_normal(ch.n)) * np.where(ch.lat.thin, 1.3, 1.0)
    lam = np.where(ch.active, rate[:, None] * _SPEND_SEASON[ch.month], 0.0)
    counts = rng.poisson(lam)
    person, period = np.nonzero(counts)
    reps = counts[person, period]
    person, period = np.repeat(person, reps), np.repeat(period, reps)
    k = len(person)
    pref = ch.lat.preference[person]
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
    """Address changes (unstable people move more) and profile updates (stable people update)."""
    years = ch.lat.history / 12
    identity = ch.lat.identity
    moves = rng.poisson(years * 0.25 * np.exp(-0.6 * identity))
    updates = rng.poisson(years * 0.6 * np.exp(0.25 * identity))
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


# --------------------------------------------------------------------------- contacts


@dataclass(frozen=True)
class _Graph:
    """Directed contacts: ``src`` knows ``code`` (a person of the chunk, or ``n + k``:
    the k-th person outside the platform)."""

    src: np.ndarray
    code: np.ndarray
    n: int

    def exposure(self, flag: np.ndarray) -> np.ndarray:
        """Share of each person's contacts on the platform for whom ``flag`` holds (0: none)."""
        inside = self.code < self.n
        src, dst = self.src[inside], self.code[inside]
        known = np.bincount(src, minlength=self.n)
        hits = np.bincount(src, flag[dst].astype(np.float64), minlength=self.n)
        return np.divide(hits, known, out=np.zeros(self.n), where=known > 0)


def _contact_graph(rng: np.random.Generator, ch: _Chunk, contacts_mean: float) -> _Graph:
    """Contacts with homophily: people know others of their cohort with similar means and
    habits (near ranks of discipline + capacity - leverage + noise).

    Within a cohort, so a drift of the newest cohort leaves the older cohorts' networks
    (and the truth, which reads them) unchanged.
    """
    n, lat = ch.n, ch.lat
    standing = lat.discipline + lat.capacity - lat.leverage
    key = standing + _W.homophily_noise * rng.standard_normal(n)
    by_rank = np.lexsort((key, ch.cohort))  # cohort by cohort, then by key
    rank = np.empty(n, dtype=np.int64)
    rank[by_rank] = np.arange(n)
    size = np.bincount(ch.cohort, minlength=int(ch.cohort.max(initial=0)) + 1)
    block_end = np.cumsum(size)
    block_start = block_end - size
    lam = contacts_mean / (1 - _W.no_contacts_share)
    counts = np.where(rng.random(n) < _W.no_contacts_share, 0, rng.poisson(lam, n))
    src = np.repeat(np.arange(n), counts)
    e = len(src)
    step = rng.geometric(1 / _W.contact_rank_scale, e) * np.where(rng.random(e) < 0.5, -1, 1)
    lo, hi = block_start[ch.cohort[src]], block_end[ch.cohort[src]]
    pos = rank[src] + step
    pos = np.where((pos < lo) | (pos >= hi), rank[src] - step, pos)
    dst = by_rank[np.clip(pos, lo, hi - 1)]
    external = rng.random(e) < _W.external_contact_share
    outside = rng.integers(0, 10**8, e)
    keep = external | (dst != src)
    # One code per (person, contact): internal contacts first, then outside ones.
    code = np.where(external, n + outside, dst)
    pair = np.unique(src[keep] * (n + 10**8) + code[keep])
    return _Graph(pair // (n + 10**8), pair % (n + 10**8), n)


def _contacts_frame(
    rng: np.random.Generator,
    ch: _Chunk,
    graph: _Graph,
    pid: pa.Array,
    registered: np.ndarray,
) -> pd.DataFrame:
    src, code, n = graph.src, graph.code, graph.n
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


# --------------------------------------------------------------------------- the truth


def _channel_logits(
    ch: _Chunk, cr: _Credit, exposure: np.ndarray, hidden: np.ndarray
) -> np.ndarray:
    """(n, 4) default logits (without the intercept) of the four ways to default.

    A person defaults if any way happens (competing risks), so the true PD is high when
    any one of them is, an OR of AND-shaped pockets that no additive scorecard can draw
    but trees can. Every term is monotone in the direction the feature registry
    declares, and every input is shown by the events or the profile (see _Credit).
    """
    lat = ch.lat
    thin = lat.thin.astype(np.float64)
    late = np.minimum(cr.late_recent, 4)
    # 1. Arrears roll forward: poor discipline (steep below average, flat above), recent
    #    late repayments, the arrears on the latest statements and a young credit file.
    #    A first credit line (no account yet) carries a flat risk of its own.
    roll = np.where(
        cr.has_account,
        _W.roll_discipline * _softplus(-1.5 * lat.discipline - 0.5)
        + _W.roll_late * late
        + _W.roll_arrears * np.minimum(cr.status_now, 90)
        + _W.roll_new_credit * _sigmoid(0.5 * (12 - cr.credit_months)),
        _W.roll_no_account,
    )
    # 2. Over-indebtedness: a high utilisation with a low income; either alone is harmless.
    high_use = _sigmoid(
        _W.debt_utilisation_sharpness * (np.nan_to_num(cr.util_now) - _W.debt_utilisation)
    )
    low_income = _sigmoid(_W.debt_income_sharpness * np.log(_W.debt_income / ch.income))
    debt = np.where(cr.has_account, _W.debt_risk * high_use * low_income, _OFF)
    # 3. Income shock: a new job and no verified income (a verified payroll protects).
    new_job = np.where(
        _EMPLOYED[ch.demo.occupation],
        _sigmoid(_W.shock_tenure_sharpness * (_W.shock_tenure_years - ch.tenure / 365)),
        0.0,
    )
    shock = _W.shock_base + _W.shock_risk * new_job * ~ch.income_verified
    # 4. Thin file: with little history, a recent late repayment weighs heavily (on a full
    #    file it is only part of the first way), and so do contacts in arrears.
    thin_way = _W.thin_base + thin * (
        _W.thin_risk * _sigmoid(4.0 * (late - 0.5)) + _W.thin_contacts * exposure
    )
    shared = _W.identity_unverified * ~ch.identity_verified + hidden
    return np.stack([roll, debt, shock, thin_way], axis=1) + shared[:, None]


def _true_pd(alpha: float, logits: np.ndarray) -> np.ndarray:
    """Probability that at least one way to default happens: 1 - prod(1 - p_k)."""
    return -np.expm1(np.log1p(-_sigmoid(alpha + logits)).sum(axis=1))


def _risk(
    rng: np.random.Generator, ch: _Chunk, contacts_mean: float
) -> tuple[_Credit, _Graph, np.ndarray]:
    """The credit panel, the contact graph and the default logits of a chunk."""
    credit = _credit_panel(rng, ch)
    graph = _contact_graph(rng, ch, contacts_mean)
    hidden = _W.unobserved_sd * rng.standard_normal(ch.n)
    logits = _channel_logits(ch, credit, graph.exposure(credit.severe_year), hidden)
    return credit, graph, logits


def _solve_alpha(sim: SimulateParams, base: BaseParams) -> float:
    """Intercept that makes the mean true PD equal ``sim.default_rate`` (no drift)."""
    return _alpha_for(
        sim.default_rate,
        sim.n_cohorts,
        sim.cohort_spacing_months,
        sim.history_months,
        sim.thin_file_share,
        sim.contacts_mean,
        base,
    )


@functools.lru_cache(maxsize=32)
def _alpha_for(
    default_rate: float,
    n_cohorts: int,
    cohort_spacing_months: int,
    history_months: int,
    thin_file_share: float,
    contacts_mean: float,
    base: BaseParams,
) -> float:
    """The intercept depends only on these parameters (the reference sample's, not the world's)."""
    sim = SimulateParams(
        default_rate=default_rate,
        n_cohorts=n_cohorts,
        cohort_spacing_months=cohort_spacing_months,
        history_months=history_months,
        thin_file_share=thin_file_share,
        contacts_mean=contacts_mean,
    )
    rng = np.random.default_rng(np.random.SeedSequence(base.seed, spawn_key=(_REFERENCE_STREAM,)))
    ch = _draw_chunk(rng, sim, _Calendar.build(sim, base), _REFERENCE_SIZE, 0.0)
    _, _, logits = _risk(rng, ch, contacts_mean)
    # Newton steps on the monotone mean PD, kept inside a shrinking bisection bracket.
    lo, hi = -30.0, 30.0
    alpha = float(np.log(default_rate / (1 - default_rate)) - np.median(logits.max(axis=1)))
    for _ in range(100):
        p = _sigmoid(alpha + logits)
        pd_ = _true_pd(alpha, logits)
        gap = pd_.mean() - default_rate
        if abs(gap) < 1e-12:
            break
        lo, hi = (lo, alpha) if gap > 0 else (alpha, hi)
        slope = ((1 - pd_) * p.sum(axis=1)).mean()  # d pd / d alpha = (1 - pd) sum_k p_k
        step = alpha - gap / slope
        alpha = step if lo < step < hi else (lo + hi) / 2
    return alpha


# --------------------------------------------------------------------------- profiles


def _profiles_frame(
    rng: np.random.Generator,
    ch: _Chunk,
    pid: pa.Array,
    missing_rate: float,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Profile facts as known at each person's observation date; also the registration day."""
    n, lat, demo = ch.n, ch.lat, ch.demo
    obs_year = ch.obs_day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    birth_year = np.clip(obs_year - demo.age - (rng.random(n) < 0.5), 1900, 2015)
    employment_start = np.where(_EMPLOYED[demo.occupation], ch.obs_day - ch.tenure, _NAT)

    income = ch.income
    inflation = np.abs(rng.normal(0.05 + 0.12 * np.maximum(-lat.z, 0), _W.inflation_sd))
    declared = np.round(income * np.exp(inflation), -2)
    verified = np.where(
        ch.income_verified,
        np.round(income * np.exp(rng.normal(-0.02, 0.04, n))),
        np.nan,
    )
    completeness = _sigmoid(
        1.0 + 0.6 * lat.identity - 0.8 * lat.thin + 0.5 * rng.standard_normal(n)
    )
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
            "identity_verified": pd.arrays.BooleanArray(ch.identity_verified, gone()),
            "profile_completeness": np.where(gone(), np.nan, completeness),
            "registered_date": _days_to_datetime(np.where(gone(), _NAT, registered)),
        }
    )
    return frame, registered


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
                _fixed_ids("A", person_numbers[person], width, suffix=account),
                account > 0,
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
    sim = ctx.sim
    rng = np.random.default_rng(
        np.random.SeedSequence(ctx.base.seed, spawn_key=(_CHUNK_STREAM, index))
    )
    ch = _draw_chunk(rng, sim, ctx.cal, n, sim.drift)
    credit, graph, logits = _risk(rng, ch, sim.contacts_mean)
    true_pd = _true_pd(ctx.alpha, logits)
    default = rng.random(n) < true_pd

    numbers = start + 1 + np.arange(n, dtype=np.int64)
    pid = _fixed_ids("P", numbers, ctx.person_width)
    profiles, registered = _profiles_frame(rng, ch, pid, sim.missing_rate)
    events = _concat_blocks(
        [
            _credit_events(rng, ch, credit),
            _utility_events(rng, ch),
            _topup_events(rng, ch),
            _purchase_events(rng, ch),
            _identity_events(rng, ch),
        ]
    )
    events_df = _events_frame(events, pid, numbers, first_event, ctx.person_width)
    contacts = _contacts_frame(rng, ch, graph, pid, registered)

    obs_dates = _days_to_datetime(ch.obs_day)
    outcomes = pd.DataFrame(
        {
            "person_id": _str_series(pid),
            "observation_date": obs_dates,
            "default_12m": _int_series(default.astype(np.int64), np.zeros(n, dtype=bool)),
        }
    )
    truth = pd.DataFrame(
        {
            "person_id": _str_series(pid),
            "observation_date": obs_dates,
            "true_pd": true_pd,
        }
    )
    if sim.acceptance.enabled:  # a historical policy hides the declined people's outcomes
        outcomes, truth = acceptance.apply_policy(
            outcomes, truth, sim.acceptance, ctx.base.seed, index
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

    Contacts connect people of the same chunk and cohort; event ids run on across chunks.
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
    policy = sim.acceptance.enabled
    if policy:  # the decision column, in outcomes (the lender's record) and in the truth
        arrow["truth"] = arrow["truth"].append(arrow["outcomes"].field(schemas.DECISION))
    else:  # no policy: the files of a world without the column, byte for byte
        arrow["outcomes"] = _arrow_schema(
            schemas.empty_table(schemas.OUTCOMES).drop(columns=[schemas.DECISION])
        )
    rows = dict.fromkeys(targets, 0)
    labels, pds, dates, decisions = [], [], [], []
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
            if policy:
                decisions.append(truth[schemas.DECISION].to_numpy(dtype=object))
            labels.append(data.outcomes["default_12m"].to_numpy(dtype=np.float64, na_value=np.nan))
            pds.append(truth["true_pd"].to_numpy())
            dates.append(truth["observation_date"].to_numpy())
            if progress is not None:
                progress(rows["truth"])
        for writer in writers.values():  # footers first, then the files move into place
            writer.close()
    y, p = np.concatenate(labels), np.concatenate(pds)
    by_cohort = pd.Series(y).groupby(np.concatenate(dates)).mean()
    known = ~np.isnan(y)
    y, p_known = y[known].astype(np.int8), p[known]
    extra = (
        {"acceptance": acceptance.policy_summary(np.concatenate(decisions), p)} if policy else {}
    )
    return {
        "people": rows["truth"],
        "rows": rows,
        "cohorts": [d.isoformat() for d in cohort_dates(sim, base)],
        "default_rate": float(y.mean()),
        "default_rate_by_cohort": {k.date().isoformat(): float(v) for k, v in by_cohort.items()},
        "mean_true_pd": float(p.mean()),
        "oracle_auc": _auc(y, p_known),
        "events_per_person": rows["events"] / rows["truth"],
        **extra,
    }
