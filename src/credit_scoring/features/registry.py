"""Point-in-time features and their metadata, declared once.

Every feature is declared once in the registry below (:data:`FEATURES`), with the score
dimension it belongs to, a one-line description a person understands, its risk
direction (used for LightGBM monotone constraints), whether the person can change it
by their own behaviour (used for advice) and its unit (used for reason sentences).

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
  configured windows.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from credit_scoring.schemas import (
    Dimension,
)

DEFAULT_WINDOWS: tuple[int, ...] = (30, 90, 180, 365)
DAY_NS = 86_400 * 1_000_000_000
SEVERE_DPD = 30  # a repayment this many days late or more is "seriously late"
CURRENT_ACCOUNT_DAYS = 90  # an account with a statement this recently is "current"
# A contact counts once the link is this old: linking to top-scored people the week
# before applying must not buy a network signal (see ``robustness``).
MIN_LINK_AGE_DAYS = 90
N_MONTHS = 12  # monthly buckets over the last 365 days
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
# Protected attributes: kept for fairness measurement, never features.
PROTECTED_ATTRIBUTES: tuple[str, ...] = ("gender", "birth_year", "age", "age_band")

_CH = Dimension.CREDIT_HISTORY
_FC = Dimension.FULFILMENT_CAPACITY
_BP = Dimension.BEHAVIOUR_PREFERENCES
_IT = Dimension.IDENTITY_TRAITS
_SC = Dimension.SOCIAL_CONNECTIONS


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class FeatureSpec:
    """One model feature and what it means.

    ``risk_direction``: +1 when a higher value means more risk, -1 when a higher value
    means less risk, 0 when the relation is unknown or not monotone (no constraint).
    ``actionable``: the person can change it by their own behaviour (used for advice).
    ``scored``: False for features that are computed and carried (the credit-limit
    policy reads declared income) but that the model may never split on, because they
    are cheap to game and say little about risk (see ``robustness`` and the README).
    """

    name: str
    dimension: Dimension
    description: str
    risk_direction: int
    actionable: bool
    unit: str = ""
    scored: bool = True

    def __post_init__(self) -> None:
        if self.risk_direction not in (-1, 0, 1):
            raise ValueError(
                f"risk_direction of {self.name!r} must be -1, 0 or 1; got {self.risk_direction}"
            )


@dataclass(frozen=True)
class WindowedFeature:
    """A feature template over a look-back window: ``<stem>_<w>d`` for each window ``w``.

    ``description`` contains ``{w}``, filled with the window length in days.
    """

    stem: str
    dimension: Dimension
    description: str
    risk_direction: int
    actionable: bool
    unit: str = ""
    scored: bool = True

    def spec(self, window: int) -> FeatureSpec:
        return FeatureSpec(
            name=window_feature_name(self.stem, window),
            dimension=self.dimension,
            description=self.description.format(w=window),
            risk_direction=self.risk_direction,
            actionable=self.actionable,
            unit=self.unit,
            scored=self.scored,
        )


def window_feature_name(stem: str, window: int) -> str:
    """Name of a windowed feature: ``n_late_30p`` and 90 give ``n_late_30p_90d``."""
    return f"{stem}_{window}d"


F = FeatureSpec
W = WindowedFeature

# The declaration, in output-column order. Windowed templates expand in place.
# Fields in order: name (stem), dimension, description, risk_direction, actionable, unit.
DECLARATIONS: tuple[FeatureSpec | WindowedFeature, ...] = (
    # ---- credit history
    W("n_repayments", _CH, "Repayments made in the last {w} days", 0, True, "count"),
    W("n_late", _CH, "Repayments made late in the last {w} days", 1, True, "count"),
    W(
        "n_late_30p",
        _CH,
        f"Repayments made {SEVERE_DPD} or more days late in the last {{w}} days",
        1,
        True,
        "count",
    ),
    F(
        "ontime_rate_365d",
        _CH,
        "Share of repayments made on time in the last 365 days",
        -1,
        True,
        "share",
    ),
    F(
        "late_rate_trend",
        _CH,
        "Share of late repayments in the last 90 days minus that in the last 365 days",
        0,
        True,
        "share",
    ),
    F("worst_dpd_90d", _CH, "Most days late of any repayment in the last 90 days", 1, True, "days"),
    F(
        "worst_dpd_365d",
        _CH,
        "Most days late of any repayment in the last 365 days",
        1,
        True,
        "days",
    ),
    F("days_since_last_late", _CH, "Days since the last late repayment", -1, True, "days"),
    F(
        "credit_history_months",
        _CH,
        "Months since the first credit statement or repayment",
        -1,
        False,
        "months",
    ),
    F(
        "repaid_to_due_365d",
        _CH,
        "Amount repaid as a share of the amount due in the last 365 days",
        -1,
        True,
        "share",
    ),
    F(
        "current_dpd",
        _CH,
        "Days past due on the latest statement of any current account",
        1,
        True,
        "days",
    ),
    F(
        "n_delinquent_statements_365d",
        _CH,
        "Statements showing an overdue balance in the last 365 days",
        1,
        True,
        "count",
    ),
    F(
        "n_current_accounts",
        _CH,
        f"Credit accounts with a statement in the last {CURRENT_ACCOUNT_DAYS} days",
        0,
        False,
        "count",
    ),
    F(
        "utilisation_latest",
        _CH,
        "Balance as a share of the credit limit on the latest statements",
        1,
        True,
        "share",
    ),
    F(
        "utilisation_mean_90d",
        _CH,
        "Average balance as a share of the credit limit in the last 90 days",
        1,
        True,
        "share",
    ),
    F(
        "utilisation_mean_365d",
        _CH,
        "Average balance as a share of the credit limit in the last 365 days",
        1,
        True,
        "share",
    ),
    F(
        "utilisation_max_365d",
        _CH,
        "Highest balance as a share of the credit limit in the last 365 days",
        1,
        True,
        "share",
    ),
    F(
        "utilisation_trend",
        _CH,
        "Average credit utilisation in the last 90 days minus that in the last 365 days",
        1,
        True,
        "share",
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
    ),
    F("verified_income", _FC, "Monthly income verified from documents or payroll", -1, True, "CNY"),
    F("income_verified", _FC, "Whether the income is verified (1) or not (0)", -1, True, "flag"),
    F(
        "income_verified_ratio",
        _FC,
        "Verified income as a share of declared income",
        -1,
        True,
        "share",
    ),
    F("employment_years", _FC, "Years in the current employment", -1, True, "years"),
    F("credit_limit", _FC, "Total credit limit on current accounts", -1, False, "CNY"),
    F(
        "balance_to_income",
        _FC,
        "Balance owed on current accounts relative to verified monthly income",
        1,
        True,
        "ratio",
    ),
    F(
        "spend_to_income_90d",
        _FC,
        "Monthly spending in the last 90 days relative to verified monthly income",
        1,
        True,
        "ratio",
    ),
    F(
        "n_utility_payments_365d",
        _FC,
        "Utility bills paid through the platform in the last 365 days",
        -1,
        True,
        "count",
    ),
    F(
        "utility_months_12m",
        _FC,
        "Months with a utility bill paid in the last 12 months",
        -1,
        True,
        "months",
    ),
    # Stretched budgets top up often and in small amounts: more top-ups may not lower the
    # risk, and a smaller average may not either (20 tiny top-ups must not pay).
    F("n_phone_topups_365d", _FC, "Phone top-ups in the last 365 days", 1, True, "count"),
    F(
        "topup_months_12m",
        _FC,
        "Months with a phone top-up in the last 12 months",
        0,
        True,
        "months",
    ),
    F(
        "topup_mean_amount_365d",
        _FC,
        "Average phone top-up amount in the last 365 days",
        -1,
        True,
        "CNY",
    ),
    # ---- behaviour preferences
    # Purchase volume and recency: a burst of tiny orders moves them at almost no cost
    # and they carry little signal beyond the purchase-quality features below: not scored.
    W("n_purchases", _BP, "Purchases in the last {w} days", 0, True, "count", scored=False),
    W(
        "spend",
        _BP,
        "Amount spent on purchases in the last {w} days",
        0,
        True,
        "CNY",
        scored=False,
    ),
    F(
        "mean_purchase_amount_365d",
        _BP,
        "Average purchase amount in the last 365 days",
        0,
        True,
        "CNY",
        scored=False,
    ),
    F(
        "spend_cv_12m",
        _BP,
        "Month-to-month variation of spending over the last 12 months",
        1,
        True,
        "ratio",
        scored=False,
    ),
    F(
        "spend_trend",
        _BP,
        "Daily spending in the last 90 days relative to the last 365 days",
        0,
        True,
        "ratio",
        scored=False,
    ),
    F(
        "receipt_confirm_rate_365d",
        _BP,
        "Share of spending on orders whose receipt was confirmed in the last 365 days",
        -1,
        True,
        "share",
    ),
    F(
        "return_rate_365d",
        _BP,
        "Share of spending on orders returned in the last 365 days",
        0,
        True,
        "share",
        scored=False,  # diluted by a few cheap orders kept
    ),
    F(
        "review_rate_365d",
        _BP,
        "Share of spending on orders reviewed in the last 365 days",
        -1,
        True,
        "share",
    ),
    F(
        "category_diversity_365d",
        _BP,
        "Different purchase categories in the last 365 days",
        0,
        True,
        "count",
        scored=False,  # one cheap item per category buys it
    ),
    F(
        "gaming_luxury_share_365d",
        _BP,
        "Share of spending on gaming and luxury in the last 365 days",
        1,
        True,
        "share",
        scored=False,  # a small spender dilutes it with a few cheap groceries
    ),
    F(
        "days_since_last_purchase",
        _BP,
        "Days since the last purchase",
        0,
        True,
        "days",
        scored=False,
    ),
    # ---- identity traits
    F(
        "identity_verified",
        _IT,
        "Whether the identity is verified (1) or not (0)",
        -1,
        True,
        "flag",
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
    ),
    F(
        "occupation_stability",
        _IT,
        "Stability of the occupation (0 unemployed to 4 civil servant)",
        -1,
        False,
        "level",
    ),
    F("platform_months", _IT, "Months since joining the platform", -1, False, "months"),
    F("n_address_changes_365d", _IT, "Address changes in the last 365 days", 1, True, "count"),
    F("days_since_address_change", _IT, "Days since the last address change", -1, True, "days"),
    F(
        "n_profile_updates_365d",
        _IT,
        "Profile updates in the last 365 days",
        0,
        True,
        "count",
        scored=False,
    ),
    # ---- social connections
    F("n_contacts", _SC, f"Contacts linked {MIN_LINK_AGE_DAYS}+ days ago", 0, False, "count"),
    F(
        "n_contacts_known",
        _SC,
        f"Contacts linked {MIN_LINK_AGE_DAYS}+ days ago who are known to the platform",
        0,
        False,
        "count",
    ),
    F(
        "contacts_late30_share_365d",
        _SC,
        f"Share of known contacts with a repayment {SEVERE_DPD}+ days late in the last 365 days",
        1,
        False,
        "share",
    ),
    F(
        "contacts_late30_mean_365d",
        _SC,
        f"Average number of repayments {SEVERE_DPD}+ days late per known contact "
        "in the last 365 days",
        1,
        False,
        "count",
    ),
    F(
        "contacts_verified_share",
        _SC,
        "Share of known contacts whose identity is verified",
        -1,
        False,
        "share",
    ),
)
del F, W


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
