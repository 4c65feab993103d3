"""Point-in-time features and what they mean, declared once.

Every feature is declared once in the registry below (:data:`DECLARATIONS`, expanded into
:data:`FEATURES`) with everything the project knows about it:

- the score **dimension** it belongs to and a one-line **description** a person understands;
- its **unit** (how its value reads) and its **range** (:class:`ValueRange`: the lowest and
  highest value it can take and whether it is a whole number; by default the unit's, see
  :data:`UNIT_RANGES`), which the API's request model and advice's bounds use;
- its **window**: how many days back the events it reads go (None for features of the
  whole history or of the profile); windowed templates (``n_late_{w}d``) take theirs from
  the configured windows, and :func:`feature_windows` recovers those from a feature list;
- its **risk direction** (LightGBM monotone constraints), whether it is **scored** and
  whether a person can change it (**actionable**, for advice);
- its **reason wording** (:class:`~credit_scoring.features.wording.Wording`, the sentence
  shown in adverse-action reasons) and an **example** value (the API documentation's
  example person).

Features are computed per row of ``outcomes`` (a person at an observation date) from
events strictly before the observation date (``event_time < observation_date``) and
contacts made at least ``MIN_LINK_AGE_DAYS`` before it. The same vectorised code serves
the whole table, a chunk of it and a single person in the service, so there is nothing
to keep in sync.

Conventions
-----------
- **Windows.** "In the last ``w`` days" means ``observation_date - w days <= event_time
  < observation_date``. Window-dependent features are named ``<stem>_<w>d`` (e.g.
  ``n_late_30p_90d``) and declared as templates; :func:`feature_specs` expands them for
  a tuple of windows. :data:`FEATURES` is that expansion for the default windows
  ``(30, 90, 180, 365)``, built once at import time. Features whose definition names a
  fixed period (``worst_dpd_90d``, ``ontime_rate_365d``, ...) do not depend on the
  configured windows; their ``window`` is that period.
- **Months.** The 365 days before the observation date are split into 12 equal
  buckets of about 30.4 days for regularity features ("months with a payment").
- **Missing values.** Counts and sums are 0 when nothing happened. Rates, ratios,
  "days since" and profile facts are NaN when undefined (no denominator, never
  happened, not provided); LightGBM routes NaN on its own.
- **Protected attributes.** Gender and birth year (age) are never features; they are
  returned separately by :func:`protected_attributes` for fairness measurement.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass

from credit_scoring.features.wording import FIELDS, Wording
from credit_scoring.schemas import (
    CHANNELS,
    EDUCATION_LEVELS,
    PRODUCTS,
    PURCHASE_CATEGORIES,
    Dimension,
)

DEFAULT_WINDOWS: tuple[int, ...] = (30, 90, 180, 365)
DAY_NS = 86_400 * 1_000_000_000
YEAR_DAYS = 365
SEVERE_DPD = 30  # a repayment this many days late or more is "seriously late"
CURRENT_ACCOUNT_DAYS = 90  # an account with a statement this recently is "current"
# A contact counts once the link is this old: linking to top-scored people the week
# before applying must not buy a network signal (see ``robustness``).
MIN_LINK_AGE_DAYS = 90
N_MONTHS = 12  # monthly buckets over the last 365 days
MONTH_DAYS = YEAR_DAYS / N_MONTHS  # one such bucket, about 30.4 days
RISKY_CATEGORIES: tuple[str, ...] = ("gaming", "luxury")
# Occupation as an ordinal stability code (higher = steadier income).
OCCUPATION_STABILITY: dict[str, int] = {
    "civil_servant": 4,
    "salaried": 3,
    "retired": 3,
    "self_employed": 2,
    "gig_worker": 1,
    "student": 1,
    "other": 1,
    "unemployed": 0,
}
#: Words for the stability codes 0..4 of :data:`OCCUPATION_STABILITY`.
OCCUPATION_LEVELS: tuple[str, ...] = (
    "unemployed",
    "irregular work (gig work, student or other)",
    "self-employed",
    "salaried or retired",
    "civil servant",
)
if set(OCCUPATION_STABILITY.values()) != set(range(len(OCCUPATION_LEVELS))):
    raise ValueError("OCCUPATION_LEVELS must name every code of OCCUPATION_STABILITY")
# Protected attributes: kept for fairness measurement, never features.
PROTECTED_ATTRIBUTES: tuple[str, ...] = ("gender", "birth_year", "age", "age_band")

_CH = Dimension.CREDIT_HISTORY
_FC = Dimension.FULFILMENT_CAPACITY
_BP = Dimension.BEHAVIOUR_PREFERENCES
_IT = Dimension.IDENTITY_TRAITS
_SC = Dimension.SOCIAL_CONNECTIONS
INF = math.inf


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ValueRange:
    """The values a feature can take: ``low <= value <= high`` (inclusive; an infinite end
    is unbounded), whole numbers only when ``integer``. Missing (NaN) is always allowed."""

    low: float = 0.0
    high: float = INF
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"a value range needs low <= high; got {self.low} > {self.high}")

    def __contains__(self, value: float) -> bool:
        ok = self.low <= value <= self.high
        return ok and (not self.integer or float(value).is_integer())


#: The range of each unit, unless a feature declares its own: counts are whole numbers
#: >= 0, shares lie in [0, 1], flags are 0 or 1, durations and money are >= 0. A level
#: has no default: it declares its ``levels``.
UNIT_RANGES: dict[str, ValueRange] = {
    "count": ValueRange(0, INF, integer=True),
    "share": ValueRange(0, 1),
    "flag": ValueRange(0, 1, integer=True),
    "days": ValueRange(0, INF, integer=True),
    "months": ValueRange(0, INF, integer=True),
    "years": ValueRange(0, INF),
    "CNY": ValueRange(0, INF),
    "ratio": ValueRange(0, INF),
}


def _value_range(
    name: str, unit: str, values: ValueRange | None, levels: tuple[str, ...]
) -> ValueRange:
    """A feature's range: declared, else one step per level word, else its unit's."""
    if values is not None:
        return values
    if levels:
        return ValueRange(0, len(levels) - 1, integer=True)
    if unit not in UNIT_RANGES:
        raise ValueError(f"{name!r}: unit {unit!r} has no default range; declare values=")
    return UNIT_RANGES[unit]


def _check_wording(name: str, reason: Wording, windowed: bool, window: int | None) -> None:
    used = reason.fields()
    unknown = sorted(used - FIELDS)
    if unknown:
        raise ValueError(f"{name!r}: unknown field(s) {unknown} in its wording")
    if "w" in used and not windowed:
        raise ValueError(f"{name!r}: {{w}} in the wording of a feature without a window")
    if window is not None and window <= 0:
        raise ValueError(f"{name!r}: window must be a positive number of days; got {window}")


@dataclass(frozen=True)
class FeatureSpec:
    """One model feature and what it means.

    ``risk_direction``: +1 when a higher value means more risk, -1 when a higher value
    means less risk, 0 when the relation is unknown or not monotone (no constraint).
    ``actionable``: the person can change it by their own behaviour (used for advice).
    ``scored``: False for features that are computed and carried (the credit-limit
    policy reads declared income) but that the model may never split on, because they
    are cheap to game and say little about risk (see ``robustness`` and the README).
    ``window``: days back the events it reads go (None: the whole history or the
    profile); ``stem`` is set for a windowed template's feature (its window is one of
    the configured windows). ``reason``: its sentence in adverse-action reasons.
    ``values``: its range when not the unit's (:data:`UNIT_RANGES`); ``levels``: words
    for the codes of a level. ``example``: a plausible value (API documentation).
    """

    name: str
    dimension: Dimension
    description: str
    risk_direction: int
    actionable: bool
    unit: str = ""
    scored: bool = True
    _: KW_ONLY
    window: int | None
    reason: Wording
    example: float
    values: ValueRange | None = None
    levels: tuple[str, ...] = ()
    stem: str | None = None

    def __post_init__(self) -> None:
        if self.risk_direction not in (-1, 0, 1):
            raise ValueError(
                f"risk_direction of {self.name!r} must be -1, 0 or 1; got {self.risk_direction}"
            )
        _check_wording(self.name, self.reason, self.window is not None, self.window)
        if self.example not in self.value_range:
            raise ValueError(f"example of {self.name!r} ({self.example}) is outside its range")

    @property
    def value_range(self) -> ValueRange:
        """The values it can take: its declared ``values`` or its unit's range."""
        return _value_range(self.name, self.unit, self.values, self.levels)


@dataclass(frozen=True)
class WindowedFeature:
    """A feature template over a look-back window: ``<stem>_<w>d`` for each window ``w``.

    ``description`` contains ``{w}``, filled with the window length in days; the wording
    may use ``{w}`` too. The example value of window ``w`` is ``example_per_day * w``
    (rounded half up for whole-number features).
    """

    stem: str
    dimension: Dimension
    description: str
    risk_direction: int
    actionable: bool
    unit: str = ""
    scored: bool = True
    _: KW_ONLY
    reason: Wording
    example_per_day: float
    values: ValueRange | None = None

    def __post_init__(self) -> None:
        _check_wording(self.stem, self.reason, True, None)

    def spec(self, window: int) -> FeatureSpec:
        example = self.example_per_day * window
        if _value_range(self.stem, self.unit, self.values, ()).integer:
            example = float(math.floor(example + 0.5))
        return FeatureSpec(
            name=window_feature_name(self.stem, window),
            dimension=self.dimension,
            description=self.description.format(w=window),
            risk_direction=self.risk_direction,
            actionable=self.actionable,
            unit=self.unit,
            scored=self.scored,
            window=window,
            reason=self.reason,
            example=example,
            values=self.values,
            stem=self.stem,
        )


def window_feature_name(stem: str, window: int) -> str:
    """Name of a windowed feature: ``n_late_30p`` and 90 give ``n_late_30p_90d``."""
    return f"{stem}_{window}d"


F = FeatureSpec
W = WindowedFeature
R = Wording
V = ValueRange
_SEVERE = f"{SEVERE_DPD} or more days late"
_YEAR = YEAR_DAYS
_CURRENT = CURRENT_ACCOUNT_DAYS

# The declaration, in output-column order. Windowed templates expand in place.
# Positional fields: name (stem), dimension, description, risk_direction, actionable,
# unit; then by keyword: window (fixed features), reason wording, example, and values
# (the range) where it is not the unit's.
DECLARATIONS: tuple[FeatureSpec | WindowedFeature, ...] = (
    # ---- credit history
    W(
        "n_repayments",
        _CH,
        "Repayments made in the last {w} days",
        0,
        True,
        "count",
        reason=R("{v} repayment{s} in the last {w} days", "", "No repayments in the last {w} days"),
        example_per_day=12 / 365,
    ),
    W(
        "n_late",
        _CH,
        "Repayments made late in the last {w} days",
        1,
        True,
        "count",
        reason=R(
            "{v} late repayment{s} in the last {w} days",
            "",
            "No late repayments in the last {w} days",
        ),
        example_per_day=1 / 365,
    ),
    W(
        "n_late_30p",
        _CH,
        f"Repayments made {SEVERE_DPD} or more days late in the last {{w}} days",
        1,
        True,
        "count",
        reason=R(
            f"{{v}} repayment{{s}} {_SEVERE} in the last {{w}} days",
            "",
            f"No repayments {_SEVERE} in the last {{w}} days",
        ),
        example_per_day=0,
    ),
    F(
        "ontime_rate_365d",
        _CH,
        "Share of repayments made on time in the last 365 days",
        -1,
        True,
        "share",
        window=_YEAR,
        reason=R(
            "{v} of your repayments in the last 365 days were on time",
            "No repayments in the last 365 days",
        ),
        example=0.92,
    ),
    F(
        "late_rate_trend",
        _CH,
        "Share of late repayments in the last 90 days minus that in the last 365 days",
        0,
        True,
        "share",
        window=_YEAR,
        values=V(-1, 1),  # a difference of two shares
        reason=R(
            "Share of late repayments is {pp} percentage points {hl} in the last 90 days than "
            "over the last 365 days",
            "Not enough repayment history to compare recent late payments",
            "Share of late repayments is the same in the last 90 days as over the last 365 days",
        ),
        example=-0.08,
    ),
    F(
        "worst_dpd_90d",
        _CH,
        "Most days late of any repayment in the last 90 days",
        1,
        True,
        "days",
        window=90,
        reason=R(
            "A repayment was {v} late in the last 90 days",
            "No repayments in the last 90 days",
            "No late repayments in the last 90 days",
        ),
        example=0,
    ),
    F(
        "worst_dpd_365d",
        _CH,
        "Most days late of any repayment in the last 365 days",
        1,
        True,
        "days",
        window=_YEAR,
        reason=R(
            "A repayment was {v} late in the last 365 days",
            "No repayments in the last 365 days",
            "No late repayments in the last 365 days",
        ),
        example=5,
    ),
    F(
        "days_since_last_late",
        _CH,
        "Days since the last late repayment",
        -1,
        True,
        "days",
        window=None,
        reason=R(
            "Your last late repayment was {v} ago",
            "No late repayment on record",
            "A repayment was late today",
        ),
        example=200,
    ),
    F(
        "credit_history_months",
        _CH,
        "Months since the first credit statement or repayment",
        -1,
        False,
        "months",
        window=None,
        reason=R(
            "Your credit history is {v} long",
            "No credit history on record",
            "Your credit history is less than a month long",
        ),
        example=24,
    ),
    F(
        "repaid_to_due_365d",
        _CH,
        "Amount repaid as a share of the amount due in the last 365 days",
        -1,
        True,
        "share",
        window=_YEAR,
        values=V(0, INF),  # more than due when paying ahead
        reason=R(
            "You repaid {v} of the amounts due in the last 365 days",
            "No repayments were due in the last 365 days",
        ),
        example=0.98,
    ),
    F(
        "current_dpd",
        _CH,
        "Days past due on the latest statement of any current account",
        1,
        True,
        "days",
        window=_CURRENT,
        reason=R(
            "Your latest statement shows a payment {v} overdue",
            "No credit account in current use",
            "Your latest statement shows no overdue payment",
        ),
        example=0,
    ),
    F(
        "n_delinquent_statements_365d",
        _CH,
        "Statements showing an overdue balance in the last 365 days",
        1,
        True,
        "count",
        window=_YEAR,
        reason=R(
            "{v} statement{s} showed an overdue balance in the last 365 days",
            "No statements in the last 365 days",
            "No statements showed an overdue balance in the last 365 days",
        ),
        example=0,
    ),
    F(
        "n_current_accounts",
        _CH,
        f"Credit accounts with a statement in the last {CURRENT_ACCOUNT_DAYS} days",
        0,
        False,
        "count",
        window=_CURRENT,
        reason=R(
            "{v} credit account{s} in current use",
            "No credit account in current use",
            "No credit account in current use",
        ),
        example=1,
    ),
    F(
        "utilisation_latest",
        _CH,
        "Balance as a share of the credit limit on the latest statements",
        1,
        True,
        "share",
        window=_CURRENT,
        values=V(0, INF),  # a balance can exceed its limit
        reason=R("Credit use is {v} of your limit", "No recent credit statement"),
        example=0.35,
    ),
    F(
        "utilisation_mean_90d",
        _CH,
        "Average balance as a share of the credit limit in the last 90 days",
        1,
        True,
        "share",
        window=90,
        values=V(0, INF),
        reason=R(
            "Credit use averaged {v} of your limit in the last 90 days",
            "No credit statements in the last 90 days",
        ),
        example=0.33,
    ),
    F(
        "utilisation_mean_365d",
        _CH,
        "Average balance as a share of the credit limit in the last 365 days",
        1,
        True,
        "share",
        window=_YEAR,
        values=V(0, INF),
        reason=R(
            "Credit use averaged {v} of your limit in the last 365 days",
            "No credit statements in the last 365 days",
        ),
        example=0.3,
    ),
    F(
        "utilisation_max_365d",
        _CH,
        "Highest balance as a share of the credit limit in the last 365 days",
        1,
        True,
        "share",
        window=_YEAR,
        values=V(0, INF),
        reason=R(
            "Credit use reached {v} of your limit in the last 365 days",
            "No credit statements in the last 365 days",
        ),
        example=0.52,
    ),
    F(
        "utilisation_trend",
        _CH,
        "Average credit utilisation in the last 90 days minus that in the last 365 days",
        1,
        True,
        "share",
        window=_YEAR,
        values=V(-INF, INF),  # a difference of two utilisations, each may exceed 1
        reason=R(
            "Credit use is {pp} percentage points {hl} in the last 90 days than over the last "
            "365 days",
            "Not enough statements to compare recent credit use",
            "Credit use is the same in the last 90 days as over the last 365 days",
        ),
        example=0.03,
    ),
    # ---- fulfilment capacity
    # Self-declared: a lie costs nothing, so it sets the credit limit (with a haircut) but
    # never the score; capacity in the score comes from verified income.
    F(
        "declared_income",
        _FC,
        "Monthly income the person declared",
        -1,
        True,
        "CNY",
        scored=False,
        window=None,
        reason=R("Declared monthly income is {v}", "Monthly income not provided"),
        example=8000,
    ),
    F(
        "verified_income",
        _FC,
        "Monthly income verified from documents or payroll",
        -1,
        True,
        "CNY",
        window=None,
        reason=R("Verified monthly income is {v}", "Income not verified"),
        example=7500,
    ),
    F(
        "income_verified",
        _FC,
        "Whether the income is verified (1) or not (0)",
        -1,
        True,
        "flag",
        window=None,
        reason=R("Income is verified", "Income not verified", "Income is not verified"),
        example=1,
    ),
    F(
        "income_verified_ratio",
        _FC,
        "Verified income as a share of declared income",
        -1,
        True,
        "share",
        scored=False,  # lowering declared income to the verified one raises it
        window=None,
        values=V(0, INF),  # more than declared when the person under-declared
        reason=R("Verified income is {v} of the declared income", "Income not verified"),
        example=0.9375,
    ),
    F(
        "employment_years",
        _FC,
        "Years in the current employment",
        -1,
        True,
        "years",
        window=None,
        reason=R("In your current job for {v}", "Employment not provided"),
        example=5.8,
    ),
    F(
        "credit_limit",
        _FC,
        "Total credit limit on current accounts",
        -1,
        False,
        "CNY",
        window=_CURRENT,
        reason=R(
            "Total credit limit on current accounts is {v}",
            "No credit account in current use",
            "No credit limit on current accounts",
        ),
        example=5000,
    ),
    F(
        "balance_to_income",
        _FC,
        "Balance owed on current accounts relative to verified monthly income",
        1,
        True,
        "ratio",
        window=_CURRENT,
        reason=R(
            "Balance owed is {v} times your monthly income",
            "Balance relative to income unknown (income not provided)",
            "No balance owed on current accounts",
        ),
        example=0.23,
    ),
    F(
        "spend_to_income_90d",
        _FC,
        "Monthly spending in the last 90 days relative to verified monthly income",
        1,
        True,
        "ratio",
        window=90,
        reason=R(
            "Monthly spending in the last 90 days is {v} times your monthly income",
            "Spending relative to income unknown (income not provided)",
            "No spending in the last 90 days",
        ),
        example=0.2,
    ),
    F(
        "n_utility_payments_365d",
        _FC,
        "Utility bills paid through the platform in the last 365 days",
        -1,
        True,
        "count",
        window=_YEAR,
        reason=R(
            "{v} utility bill{s} paid through the platform in the last 365 days",
            "",
            "No utility bills paid through the platform in the last 365 days",
        ),
        example=10,
    ),
    F(
        "utility_months_12m",
        _FC,
        "Months with a utility bill paid in the last 12 months",
        -1,
        True,
        "months",
        window=_YEAR,
        values=V(0, N_MONTHS, integer=True),
        reason=R(
            "Utility bills paid in {v} of the last 12 months",
            "",
            "No utility bills paid in the last 12 months",
        ),
        example=10,
    ),
    # Stretched budgets top up often and in small amounts: more top-ups may not lower the
    # risk, and a smaller average may not either (20 tiny top-ups must not pay).
    F(
        "n_phone_topups_365d",
        _FC,
        "Phone top-ups in the last 365 days",
        1,
        True,
        "count",
        window=_YEAR,
        reason=R(
            "{v} phone top-up{s} in the last 365 days", "", "No phone top-ups in the last 365 days"
        ),
        example=12,
    ),
    F(
        "topup_months_12m",
        _FC,
        "Months with a phone top-up in the last 12 months",
        0,
        True,
        "months",
        scored=False,  # unconstrained (no reason can be given) and a monthly token top-up buys it
        window=_YEAR,
        values=V(0, N_MONTHS, integer=True),
        reason=R(
            "Phone topped up in {v} of the last 12 months",
            "",
            "No phone top-ups in the last 12 months",
        ),
        example=11,
    ),
    F(
        "topup_mean_amount_365d",
        _FC,
        "Average phone top-up amount in the last 365 days",
        -1,
        True,
        "CNY",
        scored=False,  # a few large top-ups buy it: money spent, not risk
        window=_YEAR,
        reason=R(
            "Average phone top-up of {v} in the last 365 days",
            "No phone top-ups in the last 365 days",
        ),
        example=50,
    ),
    # ---- behaviour preferences
    # Purchase volume and recency: a burst of tiny orders moves them at almost no cost
    # and they carry little signal beyond the purchase-quality features below: not scored.
    W(
        "n_purchases",
        _BP,
        "Purchases in the last {w} days",
        0,
        True,
        "count",
        scored=False,
        reason=R("{v} purchase{s} in the last {w} days", "", "No purchases in the last {w} days"),
        example_per_day=0.1,
    ),
    W(
        "spend",
        _BP,
        "Amount spent on purchases in the last {w} days",
        0,
        True,
        "CNY",
        scored=False,
        reason=R(
            "{v} spent on purchases in the last {w} days", "", "No purchases in the last {w} days"
        ),
        example_per_day=50,
    ),
    F(
        "mean_purchase_amount_365d",
        _BP,
        "Average purchase amount in the last 365 days",
        0,
        True,
        "CNY",
        scored=False,
        window=_YEAR,
        reason=R(
            "Average purchase of {v} in the last 365 days", "No purchases in the last 365 days"
        ),
        example=490,
    ),
    F(
        "spend_cv_12m",
        _BP,
        "Month-to-month variation of spending over the last 12 months",
        1,
        True,
        "ratio",
        scored=False,
        window=_YEAR,
        reason=R(  # the "<description>: <value>" of a feature without a sentence of its own
            "Month-to-month variation of spending over the last 12 months: {v}",
            "Month-to-month variation of spending over the last 12 months: not on record",
        ),
        example=0.6,
    ),
    F(
        "spend_trend",
        _BP,
        "Daily spending in the last 90 days relative to the last 365 days",
        0,
        True,
        "ratio",
        scored=False,
        window=_YEAR,
        reason=R(
            "Daily spending in the last 90 days is {v} times that over the last 365 days",
            "No purchases in the last 365 days",
        ),
        example=1.0,
    ),
    F(
        "receipt_confirm_rate_365d",
        _BP,
        "Share of spending on orders whose receipt was confirmed in the last 365 days",
        -1,
        True,
        "share",
        window=_YEAR,
        reason=R(
            "You confirmed receipt of {v} of your orders in the last 365 days",
            "No orders in the last 365 days",
        ),
        example=0.9,
    ),
    F(
        "return_rate_365d",
        _BP,
        "Share of spending on orders returned in the last 365 days",
        0,
        True,
        "share",
        scored=False,  # diluted by a few cheap orders kept
        window=_YEAR,
        reason=R(
            "{v} of your orders were returned in the last 365 days",
            "No orders in the last 365 days",
        ),
        example=0.05,
    ),
    F(
        "review_rate_365d",
        _BP,
        "Share of spending on orders reviewed in the last 365 days",
        -1,
        True,
        "share",
        window=_YEAR,
        reason=R(
            "You reviewed {v} of your orders in the last 365 days",
            "No orders in the last 365 days",
        ),
        example=0.4,
    ),
    F(
        "category_diversity_365d",
        _BP,
        "Different purchase categories in the last 365 days",
        0,
        True,
        "count",
        scored=False,  # one cheap item per category buys it
        window=_YEAR,
        values=V(0, len(PURCHASE_CATEGORIES), integer=True),
        reason=R(
            "Purchases in {v} different categor{ies} in the last 365 days",
            "",
            "No purchases in the last 365 days",
        ),
        example=6,
    ),
    F(
        "gaming_luxury_share_365d",
        _BP,
        "Share of spending on gaming and luxury in the last 365 days",
        1,
        True,
        "share",
        scored=False,  # a small spender dilutes it with a few cheap groceries
        window=_YEAR,
        reason=R(
            "{v} of your spending went to gaming and luxury in the last 365 days",
            "No purchases in the last 365 days",
        ),
        example=0.05,
    ),
    F(
        "days_since_last_purchase",
        _BP,
        "Days since the last purchase",
        0,
        True,
        "days",
        scored=False,
        window=None,
        reason=R(
            "Your last purchase was {v} ago",
            "No purchases on record",
            "Your last purchase was today",
        ),
        example=3,
    ),
    # ---- identity traits
    F(
        "identity_verified",
        _IT,
        "Whether the identity is verified (1) or not (0)",
        -1,
        True,
        "flag",
        window=None,
        reason=R(
            "Identity is verified",
            "Identity verification not provided",
            "Identity is not verified",
        ),
        example=1,
    ),
    # Self-declared profile activity: filling fields and editing cost nothing, not scored.
    F(
        "profile_completeness",
        _IT,
        "Share of profile fields filled in",
        -1,
        True,
        "share",
        scored=False,
        window=None,
        reason=R("Your profile is {v} complete", "Profile not filled in"),
        example=0.8,
    ),
    # Self-declared and unverified here: a claimed degree must not buy points.
    F(
        "education_level",
        _IT,
        "Education level (0 primary to 5 doctorate)",
        -1,
        False,
        "level",
        scored=False,
        window=None,
        levels=EDUCATION_LEVELS,
        reason=R("Education level: {v}", "Education not provided"),
        example=3,
    ),
    F(
        "occupation_stability",
        _IT,
        "Stability of the occupation (0 unemployed to 4 civil servant)",
        -1,
        False,
        "level",
        window=None,
        levels=OCCUPATION_LEVELS,
        reason=R("Occupation: {v}", "Occupation not provided"),
        example=3,
    ),
    F(
        "platform_months",
        _IT,
        "Months since joining the platform",
        -1,
        False,
        "months",
        window=None,
        reason=R(
            "Member of the platform for {v}",
            "Platform membership date not provided",
            "Member of the platform for less than a month",
        ),
        example=54,
    ),
    F(
        "n_address_changes_365d",
        _IT,
        "Address changes in the last 365 days",
        1,
        True,
        "count",
        window=_YEAR,
        reason=R(
            "{v} address change{s} in the last 365 days",
            "",
            "No address changes in the last 365 days",
        ),
        example=0,
    ),
    F(
        "days_since_address_change",
        _IT,
        "Days since the last address change",
        -1,
        True,
        "days",
        window=None,
        reason=R(
            "Your last address change was {v} ago",
            "No address change on record",
            "Your address changed today",
        ),
        example=900,
    ),
    F(
        "n_profile_updates_365d",
        _IT,
        "Profile updates in the last 365 days",
        0,
        True,
        "count",
        scored=False,
        window=_YEAR,
        reason=R(
            "{v} profile update{s} in the last 365 days",
            "",
            "No profile updates in the last 365 days",
        ),
        example=2,
    ),
    # ---- social connections
    # Not scored (robustness `good_contacts`): the network's size has no monotone direction
    # (no reason can be stated) and five links to top-scored people bought +17 points at
    # p99; the contacts' behaviour and identity are other people's data (reason code SC90
    # is not permissible) and linking to good payers buys them.
    F(
        "n_contacts",
        _SC,
        f"Contacts linked {MIN_LINK_AGE_DAYS}+ days ago",
        0,
        False,
        "count",
        scored=False,  # unconstrained and bought by linking: see the comment above
        window=None,
        reason=R("{v} contact{s}", "", "No contacts"),
        example=5,
    ),
    F(
        "n_contacts_known",
        _SC,
        f"Contacts linked {MIN_LINK_AGE_DAYS}+ days ago who are known to the platform",
        0,
        False,
        "count",
        scored=False,  # unconstrained and bought by linking: see the comment above
        window=None,
        reason=R("{v} contact{s} known to the platform", "", "No contacts known to the platform"),
        example=4,
    ),
    F(
        "contacts_late30_share_365d",
        _SC,
        f"Share of known contacts with a repayment {SEVERE_DPD}+ days late in the last 365 days",
        1,
        False,
        "share",
        scored=False,  # other people's behaviour: no disclosable reason (SC90), linking buys it
        window=_YEAR,
        reason=R(
            f"{{v}} of your known contacts had a repayment {_SEVERE} in the last 365 days",
            "No contacts known to the platform",
        ),
        example=0,
    ),
    F(
        "contacts_late30_mean_365d",
        _SC,
        f"Average number of repayments {SEVERE_DPD}+ days late per known contact "
        "in the last 365 days",
        1,
        False,
        "count",
        scored=False,  # other people's behaviour: no disclosable reason (SC90), linking buys it
        window=_YEAR,
        values=V(0, INF),  # an average count: not a whole number
        reason=R(
            f"Your known contacts had {{v}} repayment{{s}} {_SEVERE} each, on average, in the "
            "last 365 days",
            "No contacts known to the platform",
        ),
        example=0,
    ),
    F(
        "contacts_verified_share",
        _SC,
        "Share of known contacts whose identity is verified",
        -1,
        False,
        "share",
        scored=False,  # other people's identity: no disclosable reason (SC90), linking buys it
        window=None,
        reason=R(
            "{v} of your known contacts have a verified identity",
            "No contacts known to the platform",
        ),
        example=0.75,
    ),
    # ---- from the optional inputs: current-account transactions, the application and
    # dated profile facts (docs/input-format.md). Declared last so that the columns of
    # the four required tables keep their order. Without those tables these features are
    # missing (or 0) for everyone and the model cannot split on them.
    F(
        "overdraft_days_365d",
        _CH,
        "Account-days with a negative end-of-day balance on current accounts in the last 365 days",
        1,
        True,
        "days",
        window=_YEAR,
        reason=R(
            "Your current account was overdrawn on {v} in the last 365 days",
            "No current-account balance on record in the last 365 days",
            "Your current account was not overdrawn in the last 365 days",
        ),
        example=0,
    ),
    F(
        "overdraft_share_90d",
        _CH,
        "Share of current-account days with a negative end-of-day balance in the last 90 days",
        1,
        True,
        "share",
        window=90,
        reason=R(
            "Your current account was overdrawn on {v} of days in the last 90 days",
            "No current-account balance on record in the last 90 days",
            "Your current account was not overdrawn in the last 90 days",
        ),
        example=0,
    ),
    F(
        "n_fees_365d",
        _CH,
        "Bank fees charged on current accounts in the last 365 days",
        1,
        True,
        "count",
        window=_YEAR,
        reason=R(
            "{v} bank fee{s} charged in the last 365 days",
            "",
            "No bank fees charged in the last 365 days",
        ),
        example=1,
    ),
    F(
        "income_monthly_90d",
        _FC,
        "Income credits (salary and other income) per month on current accounts, averaged "
        "over the last 90 days",
        -1,
        False,
        "CNY",
        window=90,
        reason=R(
            "Income credited to your account averaged {v} a month in the last 90 days",
            "No current-account transactions in the last 90 days",
            "No income credited to your account in the last 90 days",
        ),
        example=9000,
    ),
    F(
        "income_months_12m",
        _FC,
        "Months with an income credit on a current account in the last 12 months",
        -1,
        False,
        "months",
        window=_YEAR,
        values=V(0, N_MONTHS, integer=True),
        reason=R(
            "Income was credited to your account in {v} of the last 12",
            "No current-account transactions in the last 365 days",
            "No income credited to your account in the last 12 months",
        ),
        example=12,
    ),
    F(
        "min_balance_90d",
        _FC,
        "Lowest end-of-day balance of any current account in the last 90 days",
        -1,
        True,
        "CNY",
        window=90,
        values=V(-INF, INF),  # negative when overdrawn
        reason=R(
            "Your lowest account balance in the last 90 days was {v}",
            "No current-account balance on record in the last 90 days",
            "Your account balance fell to zero in the last 90 days",
        ),
        example=1200,
    ),
    F(
        "loan_amount",
        _FC,
        "Amount applied for",
        0,
        False,
        "CNY",
        window=None,
        reason=R("You applied for {v}", "No application on record"),
        example=20000,
    ),
    F(
        "loan_term_months",
        _FC,
        "Term of the loan applied for, in months",
        0,
        False,
        "months",
        window=None,
        reason=R("The loan applied for runs {v}", "Loan term not provided"),
        example=24,
    ),
    F(
        "instalment_to_income",
        _FC,
        "Monthly instalment of the loan applied for relative to monthly income (verified, "
        "else the income credits of the last 90 days)",
        1,
        False,
        "ratio",
        window=90,
        reason=R(
            "The instalment applied for is {v} times your monthly income",
            "Instalment relative to income unknown (no application or no income on record)",
        ),
        example=0.12,
    ),
    F(
        "loan_to_income",
        _FC,
        "Amount applied for in months of income (verified, else the income credits of the "
        "last 90 days)",
        1,
        False,
        "ratio",
        window=90,
        reason=R(
            "The amount applied for is {v} times your monthly income",
            "Amount relative to income unknown (no application or no income on record)",
        ),
        example=2.2,
    ),
    F(
        "debit_to_credit_90d",
        _BP,
        "Money out as a share of money in on current accounts in the last 90 days",
        1,
        True,
        "ratio",
        window=90,
        reason=R(
            "You paid out {v} times what came into your account in the last 90 days",
            "Nothing came into your current account in the last 90 days",
            "Nothing was paid out of your current account in the last 90 days",
        ),
        example=0.9,
    ),
    F(
        "application_product",
        _BP,
        "Product applied for (code in the order of docs/input-format.md)",
        0,
        False,
        "level",
        window=None,
        levels=PRODUCTS,
        reason=R("Product applied for: {v}", "Product applied for not provided"),
        example=0,
    ),
    F(
        "application_channel",
        _BP,
        "Channel the application came through (code in the order of docs/input-format.md)",
        0,
        False,
        "level",
        window=None,
        levels=CHANNELS,
        reason=R("Application channel: {v}", "Application channel not provided"),
        example=2,
    ),
    F(
        "bank_account_months",
        _IT,
        "Months since the first current-account transaction on record",
        -1,
        False,
        "months",
        window=None,
        reason=R(
            "Your current account history is {v} long",
            "No current-account transactions on record",
            "Your current account history is less than a month long",
        ),
        example=48,
    ),
    F(
        "days_since_profile_facts",
        _IT,
        "Days since the dated profile facts in use were recorded",
        0,
        True,
        "days",
        window=None,
        reason=R(
            "Your profile facts were last recorded {v} ago",
            "No dated profile facts on record",
            "Your profile facts were recorded today",
        ),
        example=120,
    ),
    F(
        "n_counterparties_365d",
        _SC,
        "Distinct counterparties (payers and payees) on current accounts in the last 365 days",
        0,
        False,
        "count",
        window=_YEAR,
        reason=R(
            "{v} distinct counterpart{ies} on your account in the last 365 days",
            "",
            "No counterparties on your account in the last 365 days",
        ),
        example=25,
    ),
)
del F, W, R, V


def _check_windows(windows: Iterable[int]) -> tuple[int, ...]:
    ws = tuple(int(w) for w in windows)
    if not ws:
        raise ValueError("windows must not be empty")
    if any(w <= 0 for w in ws):
        raise ValueError(f"windows must be positive numbers of days; got {list(ws)}")
    if len(set(ws)) != len(ws):
        raise ValueError(f"windows must be distinct; got {list(ws)}")
    return tuple(sorted(ws))


@functools.cache
def _specs_for(windows: tuple[int, ...]) -> tuple[FeatureSpec, ...]:
    out: list[FeatureSpec] = []
    for d in DECLARATIONS:
        if isinstance(d, WindowedFeature):
            out.extend(d.spec(w) for w in windows)
        else:
            out.append(d)
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"feature names must be unique; duplicated: {dupes}")
    return tuple(out)


def feature_specs(windows: Iterable[int] = DEFAULT_WINDOWS) -> tuple[FeatureSpec, ...]:
    """The registry expanded for ``windows`` (sorted), in output-column order."""
    return _specs_for(_check_windows(windows))


FEATURES: tuple[FeatureSpec, ...] = feature_specs(DEFAULT_WINDOWS)
_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in FEATURES}
_WINDOWED: dict[str, WindowedFeature] = {
    d.stem: d for d in DECLARATIONS if isinstance(d, WindowedFeature)
}
#: A plausible person, one example value per feature (the API documentation's example).
EXAMPLE_FEATURES: dict[str, float] = {s.name: float(s.example) for s in FEATURES}


def feature_names(windows: Iterable[int] = DEFAULT_WINDOWS) -> list[str]:
    """Feature column names in registry order (for the default windows unless given)."""
    return [s.name for s in feature_specs(windows)]


def feature_spec(name: str) -> FeatureSpec:
    """Metadata of a feature; windowed names work for any window (``n_late_60d``)."""
    spec = _BY_NAME.get(name)
    if spec is not None:
        return spec
    stem, _, suffix = name.rpartition("_")
    if stem in _WINDOWED and suffix.endswith("d") and suffix[:-1].isdigit():
        window = int(suffix[:-1])
        if window > 0:
            return _WINDOWED[stem].spec(window)
    raise KeyError(f"unknown feature {name!r}")


def feature_windows(names: Iterable[str]) -> tuple[int, ...]:
    """The windows a feature list was computed with: those of its windowed features.

    Sorted; :data:`DEFAULT_WINDOWS` for a list without windowed features. Names outside
    the registry are ignored (a frame may carry ids, dates and labels).
    """
    windows = set()
    for name in names:
        try:
            spec = feature_spec(str(name))
        except KeyError:
            continue
        if spec.stem is not None and spec.window is not None:
            windows.add(spec.window)
    return tuple(sorted(windows)) or DEFAULT_WINDOWS


def split_gain_weights(names: Sequence[str]) -> list[float]:
    """LightGBM ``feature_contri`` for ``names``: 0 for unscored features, else 1.

    LightGBM multiplies each feature's split gain by its weight, so a feature with 0 is
    never split on: it stays a model input (the limit policy reads it) but cannot move
    the score. Names outside the registry get 1.
    """
    out = []
    for n in names:
        try:
            out.append(1.0 if feature_spec(n).scored else 0.0)
        except KeyError:
            out.append(1.0)
    return out


def monotone_constraints(names: Sequence[str]) -> list[int]:
    """LightGBM ``monotone_constraints`` for ``names``: the features' risk directions.

    The model predicts the probability of default, so +1 (more risk) is an increasing
    constraint, -1 a decreasing one and 0 none.
    """
    return [feature_spec(n).risk_direction for n in names]
