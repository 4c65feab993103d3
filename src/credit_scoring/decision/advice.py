"""Advice: the few changes within a person's power that would raise their score most.

A catalogue of actions (:data:`ACTIONS`) is declared once. Each action names the sentence
shown to the person, how long it takes (``horizon_days``), the features it changes and a
vectorised transform from today's feature values to the values the person would have
after doing it. Candidates are then scored by the real model, in one batched call, and
the ones with the largest gains are returned, each with the new score and, where it
crosses one, the new band, credit limit and tiers. The gain reported is exactly the
model's score of the changed features minus today's score: nothing is estimated after
the features have been changed.

Plausibility rules, enforced for every action:

- Only features the registry marks ``actionable`` are changed (never education,
  occupation, platform tenure, contacts, credit history length or any protected
  attribute); declared income is never raised (that would be advice to misstate it).
- Time moves the related features together. After ``h`` clean days a ``w``-day window
  holds the new days plus the old days ``1 .. w - h``; old events in those days are read
  off the person's own cumulative window counts (linear between the windows), so the
  90-day late count becomes 0, the 180-day count becomes the old 90-day count and the
  windows stay nested. Activity keeps its current pace (repayments, purchases, bills), so
  shares and rates change only through the quality of the new activity.
- After each transform every value lies in its feature's range in the registry (counts
  whole and >= 0, shares in [0, 1] unless they can exceed 1, as utilisation can when a
  balance exceeds its limit, 12-month counts of months in [0, 12]), windowed counts stay
  nested, a known value never becomes missing, and a missing value stays missing unless
  the action creates the fact (verifying an income or an identity). How features age
  over time reads their windows from the registry.
- Each action changes only its own features; everything else is taken as it is today
  (also when several actions are done together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.config import AdviceParams, TierParams
from credit_scoring.decision.bundle import CreditModel, decision_records
from credit_scoring.features.registry import (
    DEFAULT_WINDOWS,
    MONTH_DAYS,
    N_MONTHS,
    PROTECTED_ATTRIBUTES,
    feature_spec,
    feature_windows,
    window_feature_name,
)
from credit_scoring.features.wording import format_value

UTILISATION_TARGET = 0.30  # the share of the limit advised as the most to use


class Columns:
    """Feature columns as float64 arrays by name: what transforms read (no pandas
    overhead, which would dominate advice for one person)."""

    def __init__(self, cols: dict[str, np.ndarray], n: int) -> None:
        self.cols, self.n = cols, n

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Columns:
        """The numeric columns of ``frame`` (ids and dates are not features)."""
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        return cls(
            {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in numeric},
            len(frame),
        )

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __len__(self) -> int:
        return self.n

    @property
    def columns(self) -> list[str]:
        return list(self.cols)

    def take(self, rows: Sequence[int] | np.ndarray) -> Columns:
        return Columns({k: v[rows] for k, v in self.cols.items()}, len(rows))

    def with_values(self, values: dict[str, np.ndarray]) -> Columns:
        return Columns({**self.cols, **values}, self.n)


Transform = Callable[[Columns, tuple[int, ...]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Action:
    """One change a person can make, declared once.

    ``changes`` lists the features the transform may return; ``{w}`` in a name expands
    over the feature windows (``n_late_{w}d``). ``creates`` lists those it may turn from
    missing into a value (all others stay missing when they are).
    """

    id: str
    text: str
    horizon_days: int
    changes: tuple[str, ...]
    transform: Transform
    creates: tuple[str, ...] = ()

    def features(self, windows: Iterable[int] = DEFAULT_WINDOWS) -> tuple[str, ...]:
        out: list[str] = []
        for name in self.changes:
            if "{w}" in name:
                out.extend(name.format(w=w) for w in sorted(windows))
            else:
                out.append(name)
        return tuple(out)


# --------------------------------------------------------------------------- helpers


def _v(X: Columns, name: str) -> np.ndarray:
    return X[name]


def _window(name: str) -> int:
    """The days a feature looks back over, from the registry."""
    window = feature_spec(name).window
    if window is None:
        raise ValueError(f"{name!r} has no window: its value does not age")
    return window


def _round(x: np.ndarray) -> np.ndarray:
    """Half up (monotone, so nested windows stay nested)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _cumulative(X: Columns, stem: str, windows: tuple[int, ...], days: float) -> np.ndarray:
    """Events of ``stem`` in the ``days`` most recent days, read off the window counts.

    Exact at a window length, linear between windows (and from 0 at day 0).
    """
    ws = [0, *sorted(windows)]
    if days <= 0:
        return np.zeros(len(X))
    days = min(days, ws[-1])
    k = next(i for i in range(1, len(ws)) if ws[i] >= days)
    hi = _v(X, window_feature_name(stem, ws[k]))
    lo = np.zeros(len(X)) if k == 1 else _v(X, window_feature_name(stem, ws[k - 1]))
    return lo + (hi - lo) * (days - ws[k - 1]) / (ws[k] - ws[k - 1])


def _shift(
    X: Columns, stem: str, windows: tuple[int, ...], days: int, per_day: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Windowed counts ``days`` later: old events still inside plus ``per_day`` new ones."""
    out = {}
    for w in windows:
        kept = _cumulative(X, stem, windows, w - days)
        new = 0.0 if per_day is None else per_day * min(w, days)
        out[window_feature_name(stem, w)] = kept + new
    return out


def _kept_share(
    X: Columns, stem: str, windows: tuple[int, ...], rate: str, days: int
) -> np.ndarray:
    """Of the events of ``stem`` in the window of the feature ``rate``, how many stay
    inside it after ``days``."""
    return _cumulative(X, stem, windows, _window(rate) - days)


def _pace(X: Columns, name: str, days: int) -> np.ndarray:
    """Events (or amounts) in ``days`` at the pace of the windowed count ``name``."""
    return _v(X, name) * days / _window(name)


def _aged(X: Columns, name: str, days: int) -> np.ndarray:
    """A count over its window ``days`` later with nothing new: its events are taken as
    spread evenly over the window, so those of the oldest ``days`` days age out."""
    window = _window(name)
    return _v(X, name) * (window - days) / window


def _blend(rate: np.ndarray, kept: np.ndarray, new: np.ndarray) -> np.ndarray:
    """A rate over kept old events (at ``rate``) plus new ones that all count (rate 1)."""
    den = kept + new
    out = rate.copy()
    ok = ~np.isnan(rate) & (den > 0)
    out[ok] = (rate[ok] * kept[ok] + new[ok]) / den[ok]
    return out


# --------------------------------------------------------------------------- actions

CLEAN_DAYS = 90


def _on_time_in_full(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Every repayment on time and in full for ``CLEAN_DAYS`` days, at the current pace."""
    h = CLEAN_DAYS
    out = {
        **_shift(X, "n_late", windows, h, None),
        **_shift(X, "n_late_30p", windows, h, None),
    }
    late365 = _round(out["n_late_365d"])
    rate = _v(X, "ontime_rate_365d")
    # Repayments with a known lateness in 365 days: on time + late = late / (1 - rate).
    # The pace stays, so that number stays; the late ones that age out become on time.
    with np.errstate(divide="ignore", invalid="ignore"):
        known = np.where(rate < 1, _v(X, "n_late_365d") / (1 - rate), np.nan)
        new_rate = np.where(known > 0, 1 - late365 / known, rate)
    out["ontime_rate_365d"] = np.fmax(rate, new_rate)
    # Late share over 90 days becomes 0 (when there are repayments to share over).
    trend = _v(X, "late_rate_trend")
    out["late_rate_trend"] = np.where(np.isnan(trend), np.nan, -(1 - out["ontime_rate_365d"]))
    out["worst_dpd_90d"] = np.zeros(len(X))
    out["worst_dpd_365d"] = np.where(late365 == 0, 0.0, _v(X, "worst_dpd_365d"))
    out["days_since_last_late"] = _v(X, "days_since_last_late") + h
    out["current_dpd"] = np.zeros(len(X))
    out["n_delinquent_statements_365d"] = _aged(X, "n_delinquent_statements_365d", h)
    repaid = _v(X, "repaid_to_due_365d")
    blended = _blend(
        repaid,
        _kept_share(X, "n_repayments", windows, "repaid_to_due_365d", h),
        _pace(X, "n_repayments_90d", h),
    )
    out["repaid_to_due_365d"] = np.where(repaid < 1, blended, repaid)
    return out


UTILISATION_DAYS = 90


def _lower_utilisation(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Balances paid down to at most the target share of the limits, kept there
    ``UTILISATION_DAYS`` days (at least the short window, so it holds only new days)."""
    h, cap = UTILISATION_DAYS, UTILISATION_TARGET
    short, long = _window("utilisation_mean_90d"), _window("utilisation_mean_365d")
    if not short <= h <= long - short:
        raise ValueError(f"{h} days must cover the {short}-day window and leave {short} old days")
    latest, m90, m365 = (
        _v(X, n) for n in ("utilisation_latest", "utilisation_mean_90d", "utilisation_mean_365d")
    )
    new_latest = np.fmin(latest, cap)
    new_m90 = np.fmin(m90, cap)
    # With short = 90 and long = 365: old days 91..365 average `rest`; the new year keeps
    # old days 1..365 - h (1..90 at `m90`, the others at `rest`) and adds h new days.
    rest = np.clip((m365 * long - m90 * short) / (long - short), 0, None)
    new_m365 = (new_m90 * h + m90 * short + rest * (long - h - short)) / long
    ratio = np.divide(new_latest, latest, out=np.ones(len(X)), where=latest > 0)
    return {
        "utilisation_latest": new_latest,
        "utilisation_mean_90d": new_m90,
        "utilisation_mean_365d": new_m365,
        "utilisation_trend": new_m90 - new_m365,
        "utilisation_max_365d": np.fmax(_v(X, "utilisation_max_365d"), new_m365),
        "balance_to_income": _v(X, "balance_to_income") * ratio,
    }


UTILITY_MONTHS = 6


def _pay_utilities(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Utility bills paid through the platform every month for ``UTILITY_MONTHS`` months.

    Both features cover the registry's ``N_MONTHS`` monthly buckets (the last 365 days);
    the oldest ``UTILITY_MONTHS`` of them age out, at the person's own pace.
    """
    k, m = UTILITY_MONTHS, N_MONTHS
    n, months = _v(X, "n_utility_payments_365d"), _v(X, "utility_months_12m")
    per_month = np.fmax(1.0, np.divide(n, months, out=np.ones(len(X)), where=months > 0))
    todo = months < m
    new_n = n * (m - k) / m + k * per_month
    new_months = np.fmin(m, _round(months * (m - k) / m) + k)
    return {
        "n_utility_payments_365d": np.where(todo, new_n, n),
        "utility_months_12m": np.where(todo, np.fmax(new_months, months), months),
    }


#: Verification is advised on a condition: the outcome shown is the policy's decision when
#: the income is confirmed *at the declared amount* (a lower verified income replaces the
#: declared one and may lower the limit: see :mod:`credit_scoring.decision.limits`).
VERIFY_INCOME_TEXT = (
    "Verify your declared income (payslip, tax record or payroll link); if it is confirmed "
    "at the declared amount"
)


def _verify_income(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The declared income verified at the declared amount (documents or payroll)."""
    declared, verified = _v(X, "declared_income"), _v(X, "income_verified")
    todo = (verified != 1) & ~np.isnan(declared) & (declared > 0)
    return {
        "income_verified": np.where(todo, 1.0, verified),
        "verified_income": np.where(todo, declared, _v(X, "verified_income")),
        "income_verified_ratio": np.where(todo, 1.0, _v(X, "income_verified_ratio")),
    }


def _verify_identity(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"identity_verified": np.ones(len(X))}


ADDRESS_DAYS = 180


def _keep_address(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """No move for ``ADDRESS_DAYS`` days: older changes age out of the year."""
    h = ADDRESS_DAYS
    return {
        "n_address_changes_365d": _aged(X, "n_address_changes_365d", h),
        "days_since_address_change": _v(X, "days_since_address_change") + h,
    }


ORDER_DAYS = 90


def _confirm_receipts(X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The receipt of every order confirmed for 90 days, at the current pace of spending.

    The rate is a share of spending (so a burst of tiny confirmed orders cannot move it),
    hence the blend weighs kept and new spending, not order counts.
    """
    h = ORDER_DAYS
    return {
        "receipt_confirm_rate_365d": _blend(
            _v(X, "receipt_confirm_rate_365d"),
            _kept_share(X, "spend", windows, "receipt_confirm_rate_365d", h),
            _pace(X, "spend_90d", h),
        )
    }


ACTIONS: tuple[Action, ...] = (
    Action(
        "repay_on_time",
        f"Make every repayment on time and in full for the next {CLEAN_DAYS} days",
        CLEAN_DAYS,
        (
            "n_late_{w}d",
            "n_late_30p_{w}d",
            "ontime_rate_365d",
            "late_rate_trend",
            "worst_dpd_90d",
            "worst_dpd_365d",
            "days_since_last_late",
            "current_dpd",
            "n_delinquent_statements_365d",
            "repaid_to_due_365d",
        ),
        _on_time_in_full,
    ),
    Action(
        "lower_utilisation",
        f"Pay your credit balances down to at most {UTILISATION_TARGET:.0%} of your limits "
        f"and keep them there for {UTILISATION_DAYS} days",
        UTILISATION_DAYS,
        (
            "utilisation_latest",
            "utilisation_mean_90d",
            "utilisation_mean_365d",
            "utilisation_trend",
            "utilisation_max_365d",
            "balance_to_income",
        ),
        _lower_utilisation,
    ),
    Action(
        "pay_utilities",
        f"Pay your utility bills through the platform every month for the next "
        f"{UTILITY_MONTHS} months",
        round(UTILITY_MONTHS * MONTH_DAYS),
        ("n_utility_payments_365d", "utility_months_12m"),
        _pay_utilities,
    ),
    Action(
        "verify_income",
        VERIFY_INCOME_TEXT,
        7,
        ("income_verified", "verified_income", "income_verified_ratio"),
        _verify_income,
        creates=("income_verified", "verified_income", "income_verified_ratio"),
    ),
    Action(
        "verify_identity",
        "Verify your identity (real-name check)",
        1,
        ("identity_verified",),
        _verify_identity,
        creates=("identity_verified",),
    ),
    Action(
        "keep_address",
        f"Keep your current address for the next {ADDRESS_DAYS} days",
        ADDRESS_DAYS,
        ("n_address_changes_365d", "days_since_address_change"),
        _keep_address,
    ),
    Action(
        "confirm_receipts",
        f"Confirm the receipt of every order for the next {ORDER_DAYS} days",
        ORDER_DAYS,
        ("receipt_confirm_rate_365d",),
        _confirm_receipts,
    ),
)
ACTION_BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}


def check_actions(actions: Sequence[Action], windows: Iterable[int] = DEFAULT_WINDOWS) -> None:
    """Refuse a catalogue that could change what a person cannot (or must not) change."""
    ids = [a.id for a in actions]
    if len(set(ids)) != len(ids):
        raise ValueError(f"action ids must be unique; got {ids}")
    for a in actions:
        for name in a.features(windows):
            if name in PROTECTED_ATTRIBUTES or name == "declared_income":
                raise ValueError(f"action {a.id!r} changes {name!r}, which advice never changes")
            if not feature_spec(name).actionable:
                raise ValueError(f"action {a.id!r} changes {name!r}, which is not actionable")
        if not any(feature_spec(name).scored for name in a.features(windows)):
            raise ValueError(f"action {a.id!r} changes only unscored features: it cannot pay")
        if not set(a.creates) <= set(a.changes):
            raise ValueError(f"action {a.id!r}: creates must be among its changes")


check_actions(ACTIONS)


# --------------------------------------------------------------------------- applying


def _bounds(name: str) -> tuple[float, float, bool]:
    """(lowest, highest, whole number) a changed feature may take: its registry range."""
    r = feature_spec(name).value_range
    return r.low, r.high, r.integer


def _nest(action: Action, out: dict[str, np.ndarray], windows: tuple[int, ...]) -> None:
    """Windowed counts of one stem never fall as the window grows."""
    for pattern in action.changes:
        if not pattern.endswith("_{w}d"):
            continue
        names = [pattern.format(w=w) for w in windows]
        if all(n in out for n in names):
            nested = np.fmax.accumulate(np.column_stack([out[n] for n in names]), axis=1)
            for j, n in enumerate(names):
                out[n] = nested[:, j]


def changed_values(action: Action, X: Columns, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The new values of the features ``action`` changes, with every bound enforced."""
    allowed = set(action.features(windows))
    raw = action.transform(X, windows)
    extra = sorted(set(raw) - allowed)
    if extra:
        raise RuntimeError(f"action {action.id!r} changed undeclared features {extra}")
    out: dict[str, np.ndarray] = {}
    for name, values in raw.items():
        lo, hi, whole = _bounds(name)
        v = np.asarray(values, dtype=np.float64)
        v = np.clip(_round(v) if whole else v, lo, hi)
        old = _v(X, name)
        v = np.where(np.isclose(v, old, rtol=1e-12, atol=1e-12), old, v)  # float noise
        v = np.where(np.isnan(v), old, v)  # a known value never becomes unknown
        if name not in action.creates:
            v = np.where(np.isnan(old), np.nan, v)
        out[name] = v
    _nest(action, out, windows)
    return out


def apply_action(action: Action, X: pd.DataFrame) -> pd.DataFrame:
    """``X`` after ``action``: only its declared features change, within their bounds."""
    out = changed_values(action, Columns.of(X), feature_windows(X.columns))
    changed = X.copy()
    for name, v in out.items():
        changed[name] = v
    return changed


def apply_actions(actions: Sequence[Action], X: pd.DataFrame) -> pd.DataFrame:
    """Several actions done together (their features do not overlap)."""
    for a in actions:
        X = apply_action(a, X)
    return X


# --------------------------------------------------------------------------- advice


@dataclass
class FeatureChange:
    feature: str
    description: str
    old: float | None
    new: float | None
    text: str  # "late repayments in the last 90 days: 2 -> 0"


@dataclass
class Outcome:
    """The decision after a change, with what differs from today's."""

    score: int
    gain: int
    band: str | None  # only when it differs from today's
    credit_limit: float | None  # only when it differs from today's
    new_tiers: list[str] = field(default_factory=list)


@dataclass
class AdviceItem:
    action: str
    text: str
    horizon_days: int
    changes: list[FeatureChange]
    outcome: Outcome
    sentence: str


@dataclass
class Advice:
    """Today's decision, the advised actions (largest gain first) and all of them together."""

    current: dict[str, Any]
    items: list[AdviceItem]
    combined: Outcome | None
    combined_sentence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _describe(name: str) -> str:
    return feature_spec(name).description.replace(" (1) or not (0)", "")


def _show(name: str, v: float) -> str:
    if np.isnan(v):
        return "not on record"
    if name.endswith("_trend") and feature_spec(name).unit == "share":
        return f"{100 * v:+.0f} percentage points"
    return format_value(feature_spec(name), v)


def _changes(old: dict[str, float], new: dict[str, float]) -> list[FeatureChange]:
    """The features whose value differs (old -> new), in the action's order."""
    out = []
    for name, a in old.items():
        b = new[name]
        if (np.isnan(a) and np.isnan(b)) or a == b:
            continue
        text = f"{_describe(name)}: {_show(name, a)} -> {_show(name, b)}"
        out.append(FeatureChange(name, _describe(name), _num(a), _num(b), text))
    return out


def _tier_words(name: str, tiers: Sequence[TierParams]) -> str:
    for t in tiers:
        if t.name == name and t.description:
            d = t.description.rstrip(".")
            return d[0].lower() + d[1:]
    return name.replace("_", " ")


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def sentence(text: str, outcome: Outcome, tiers: Sequence[TierParams] = ()) -> str:
    """'<action>: about +35 points (to 662), reaching very good and a credit limit of
    CNY 8,000; unlocks car rental without a deposit'."""
    unit = "point" if outcome.gain == 1 else "points"
    s = f"{text}: about +{outcome.gain} {unit} (to {outcome.score})"
    reach = []
    if outcome.band is not None:
        reach.append(outcome.band)
    if outcome.credit_limit is not None:
        reach.append(f"a credit limit of CNY {outcome.credit_limit:,.0f}")
    if reach:
        s += ", reaching " + _join(reach)
    if outcome.new_tiers:
        s += "; unlocks " + _join([_tier_words(t, tiers) for t in outcome.new_tiers])
    return s


def _outcome(cols: dict[str, Any], i: int, now: dict[str, Any]) -> Outcome:
    score = int(cols["score"][i])
    band = str(cols["band"][i])
    limit = float(cols["credit_limit"][i])
    tiers = [str(t) for t in cols["tiers"][i]]
    return Outcome(
        score=score,
        gain=score - now["score"],
        band=None if band == now["band"] else band,
        credit_limit=None if limit == now["credit_limit"] else limit,
        new_tiers=[t for t in tiers if t not in now["tiers"]],
    )


def complete_frame(features: pd.DataFrame, model: CreditModel) -> pd.DataFrame:
    """The model's features plus every feature an action reads (NaN when not given)."""
    windows = feature_windows(model.feature_names)
    wanted = list(model.feature_names)
    for a in ACTIONS:
        wanted += [n for n in a.features(windows) if n not in wanted]
    for stem in ("n_repayments", "n_purchases", "spend"):
        wanted += [window_feature_name(stem, w) for w in windows]
    wanted += ["declared_income", "n_late_365d"]
    frame = features.reindex(columns=list(dict.fromkeys(wanted)))
    return frame.astype(np.float64).reset_index(drop=True)


#: The fields of today's decision that advice compares against (``Advice.current``).
_NOW_KEYS = ("pd", "score", "band", "credit_limit", "tiers")


def advise(
    model: CreditModel,
    features: pd.DataFrame,
    params: AdviceParams | None = None,
    actions: Sequence[Action] = ACTIONS,
    today: Sequence[Mapping[str, Any]] | None = None,
) -> list[Advice]:
    """Advice for each row of ``features`` (one person at an observation date each).

    Every action is applied to every row and all candidates are scored in one batched
    call; per person, actions whose gain is at least ``min_gain_points`` are kept,
    largest gain first (then higher limit, then catalogue order), at most ``max_actions``
    of them. ``combined`` is the outcome of doing all advised actions together (scored by
    the model too; None with fewer than two).

    ``today``: the bundle's decision records of these rows
    (:meth:`~credit_scoring.decision.bundle.CreditModel.decide_records`), when the caller
    has already decided them (the service, which may also want reasons); without it,
    today's rows are decided here, in the same batched call as the candidates. Either way
    each row is decided once.
    """
    params = params or AdviceParams()
    n, k = len(features), len(actions)
    if n == 0:
        return []
    if today is not None and len(today) != n:
        raise ValueError(f"today has {len(today)} decisions for {n} rows of features")
    X = Columns.of(complete_frame(features, model))
    windows = feature_windows(model.feature_names)
    names = model.feature_names
    base = np.column_stack([X[c] for c in names])
    col = {c: j for j, c in enumerate(names)}

    def matrix(values: dict[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
        M = base.copy() if rows is None else base[rows]
        for name, v in values.items():
            if name in col:
                M[:, col[name]] = v
        return M

    changed = [changed_values(a, X, windows) for a in actions]
    blocks = [matrix(c) for c in changed]
    first = 0  # row of the first candidate in the batched call
    if today is None:  # today's rows first, in the same call
        blocks.insert(0, base)
        first = n
    cols = model.decide_matrix(np.vstack(blocks), with_reasons=False)
    if today is None:
        today = decision_records({c: v[:n] for c, v in cols.items()}, with_reasons=False)
    now_all = [{key: t[key] for key in _NOW_KEYS} for t in today]
    score = np.asarray(cols["score"])[first:].reshape(k, n)
    limit = np.asarray(cols["credit_limit"])[first:].reshape(k, n)
    gains = score - np.array([now["score"] for now in now_all], dtype=np.int64)
    declared = [a.features(windows) for a in actions]

    results: list[Advice] = []
    chosen_all: list[tuple[int, ...]] = []
    for i, now in enumerate(now_all):
        order = sorted(range(k), key=lambda j: (-gains[j, i], -limit[j, i], j))
        chosen = [j for j in order if gains[j, i] >= params.min_gain_points][: params.max_actions]
        items = []
        for j in chosen:
            a = actions[j]
            out = _outcome(cols, first + j * n + i, now)
            old = {f: float(X[f][i]) for f in declared[j]}
            new = {f: float(changed[j][f][i]) if f in changed[j] else old[f] for f in declared[j]}
            items.append(
                AdviceItem(
                    action=a.id,
                    text=a.text,
                    horizon_days=a.horizon_days,
                    changes=_changes(old, new),
                    outcome=out,
                    sentence=sentence(a.text, out, model.decision_params.tiers),
                )
            )
        results.append(Advice(current=now, items=items, combined=None))
        chosen_all.append(tuple(chosen))

    # All advised actions together: applied one after the other, one decision call.
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, chosen in enumerate(chosen_all):
        if len(chosen) >= 2:
            groups.setdefault(chosen, []).append(i)
    if groups:
        rows, blocks = [], []
        for chosen, members in groups.items():
            idx = np.asarray(members)
            sub, values = X.take(idx), {}
            for j in chosen:
                step = changed_values(actions[j], sub, windows)
                sub, values = sub.with_values(step), {**values, **step}
            rows += members
            blocks.append(matrix(values, idx))
        both = model.decide_matrix(np.vstack(blocks), with_reasons=False)
        for r, i in enumerate(rows):
            res = results[i]
            res.combined = _outcome(both, r, res.current)
            res.combined_sentence = sentence(
                f"All {len(res.items)} together", res.combined, model.decision_params.tiers
            )
    return results
