"""The versioned table of adverse-action reason codes and of credit-limit reason codes.

One row per code: the code, its sentence, the feature(s) it covers and whether it is
**permissible** (may be stated to the applicant and used as a principal reason). The table
is the one place where reason wording for notices lives; the registry's own wording
(:mod:`credit_scoring.features.wording`) describes features, this table speaks to the
applicant about *their* record. Decisions carry :data:`REASON_CODES_VERSION`, and so does
the bundle (the version it was fitted with), so every notice can be traced to the exact
table that worded it; :func:`table_digest` pins the table's content to that version (a test
fails when the table changes without a new version).

Rules the reasons follow (:func:`credit_scoring.decision.explain.adverse_reasons`):

- Only features that are **scored**, **constrained** (a monotone risk direction in the
  registry) and covered here by a **permissible** code give reasons. Unconstrained
  features (``risk_direction == 0``) never do: their effect has no direction a person can
  be told about. Social features that describe *other people* (contacts' late
  repayments, contacts' identity state) are not permissible: a notice cannot state them
  without revealing other people's data, and the applicant cannot dispute them. The codes
  of the applicant's own network (how many contacts, linked how long ago) are worded
  about the applicant only.
- A **missing value** gives a reason only through a code with ``on_missing=True``:
  where absence is itself the stated reason ("No repayment history in the last 365
  days", "Income not verified"), worded as such. Any other missing value gives no reason
  (no "No late repayment on record" as something that lowered a score).
- Several features with one code give one reason (their contributions add up).

Limit reasons (:data:`LIMIT_CODES`) explain every limit below the maximum: the income the
capacity is based on, the capacity floor, verification, the score's multiple, the
expected-loss cap and, for a decline, the cut-off.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from credit_scoring.config import LimitParams
from credit_scoring.decision import limits
from credit_scoring.features.registry import SEVERE_DPD, FeatureSpec, feature_spec
from credit_scoring.features.wording import Wording, reason_text

#: Bump when any code, sentence, feature list or permissibility changes (and update
#: ``TABLE_DIGEST`` in the test that pins it).
REASON_CODES_VERSION = "2026-11-29.5"

_SEVERE = f"{SEVERE_DPD} or more days late"


@dataclass(frozen=True)
class ReasonCode:
    """One adverse-action reason.

    ``features``: registry names, or stems of windowed features (``n_late`` covers
    ``n_late_30d`` ... ``n_late_365d``). ``text``: the sentence, with the fields of
    :data:`credit_scoring.features.wording.FIELDS` filled from the covered feature with
    the largest contribution (``zero``: the sentence when that value is 0).
    ``on_missing``: the code is given when the features are *missing* (absence is the
    stated reason; ``text`` is then a fixed sentence). ``permissible``: it may be stated
    and used as a principal reason; ``note`` says why not, when not.
    """

    code: str
    text: str
    features: tuple[str, ...]
    permissible: bool = True
    on_missing: bool = False
    zero: str | None = None
    note: str = ""


def _c(code: str, features: str | tuple[str, ...], text: str, **kw: object) -> ReasonCode:
    return ReasonCode(code, text, (features,) if isinstance(features, str) else features, **kw)


_OTHERS = (
    "describes other people (the applicant's contacts): a notice cannot state it without "
    "revealing their data, and the applicant cannot dispute it"
)

#: The adverse-action table, by dimension. Value codes first, then absence codes (x9x).
REASON_CODES: tuple[ReasonCode, ...] = (
    # ---- credit history
    _c("CH01", "n_late", "{v} late repayment{s} in the last {w} days"),
    _c("CH02", "n_late_30p", f"{{v}} repayment{{s}} {_SEVERE} in the last {{w}} days"),
    _c("CH03", "ontime_rate_365d", "Only {v} of your repayments in the last 365 days were on time"),
    _c("CH04", "worst_dpd_90d", "A repayment was {v} late in the last 90 days"),
    _c("CH05", "worst_dpd_365d", "A repayment was {v} late in the last 365 days"),
    _c("CH06", "days_since_last_late", "Your last late repayment was only {v} ago"),
    _c(
        "CH07",
        "credit_history_months",
        "Length of your credit history: {v}",
    ),
    _c("CH08", "repaid_to_due_365d", "You repaid {v} of the amounts due in the last 365 days"),
    _c("CH09", "current_dpd", "Your latest statement shows a payment {v} overdue"),
    _c(
        "CH10",
        "n_delinquent_statements_365d",
        "{v} statement{s} showed an overdue balance in the last 365 days",
    ),
    _c("CH11", "utilisation_latest", "Credit use is {v} of your limit on your latest statements"),
    _c(
        "CH12",
        ("utilisation_mean_90d", "utilisation_mean_365d"),
        "Credit use averaged {v} of your limit",
    ),
    _c("CH13", "utilisation_max_365d", "Credit use reached {v} of your limit in the last year"),
    _c(
        "CH14",
        "utilisation_trend",
        "Credit use is {pp} percentage points {hl} in the last 90 days than over the last year",
    ),
    _c(
        "CH90",
        ("ontime_rate_365d", "worst_dpd_365d", "repaid_to_due_365d"),
        "No repayment history in the last 365 days",
        on_missing=True,
    ),
    _c("CH91", "worst_dpd_90d", "No repayments in the last 90 days", on_missing=True),
    _c("CH92", "credit_history_months", "No credit history on record", on_missing=True),
    _c(
        "CH93",
        ("utilisation_latest", "utilisation_mean_90d", "current_dpd", "credit_limit"),
        "No credit account in current use",
        on_missing=True,
    ),
    _c(
        "CH94",
        ("utilisation_mean_365d", "utilisation_max_365d", "n_delinquent_statements_365d"),
        "No credit statements in the last 365 days",
        on_missing=True,
    ),
    # ---- fulfilment capacity
    _c("FC01", "verified_income", "Verified monthly income of {v}"),
    _c("FC02", "income_verified", "Income is verified", zero="Income is not verified"),
    _c("FC04", "employment_years", "Time in your current job: {v}"),
    _c(
        "FC05",
        "credit_limit",
        "Total credit limit on your current accounts is {v}",
        zero="No credit limit on your current accounts",
    ),
    _c("FC06", "balance_to_income", "Balance owed is {v} times your monthly income"),
    _c(
        "FC07",
        "spend_to_income_90d",
        "Monthly spending in the last 90 days is {v} times your monthly income",
    ),
    _c(
        "FC08",
        "n_utility_payments_365d",
        "{v} utility bill{s} paid through the platform in the last 365 days",
        zero="No utility bills paid through the platform in the last 365 days",
    ),
    _c(
        "FC11",
        "utility_months_12m",
        "Utility bills paid through the platform in {v} of the last 12 months",
        zero="No utility bills paid through the platform in the last 12 months",
    ),
    _c("FC09", "n_phone_topups_365d", "{v} phone top-up{s} in the last 365 days (frequent)"),
    _c(
        "FC90",
        (
            "verified_income",
            "income_verified",
            "balance_to_income",
            "spend_to_income_90d",
        ),
        "Income not verified",
        on_missing=True,
    ),
    # ---- current accounts and the loan applied for (optional tables, docs/input-format.md)
    _c(
        "CH20",
        "overdraft_days_365d",
        "Your current account was overdrawn on {v} in the last 365 days",
    ),
    _c(
        "CH21",
        "overdraft_share_90d",
        "Your current account was overdrawn on {v} of days in the last 90 days",
    ),
    _c("CH22", "n_fees_365d", "{v} bank fee{s} charged in the last 365 days"),
    _c(
        "FC20",
        "income_monthly_90d",
        "Income credited to your account averaged {v} a month in the last 90 days",
        zero="No income credited to your account in the last 90 days",
    ),
    _c(
        "FC21",
        "income_months_12m",
        "Income was credited to your account in {v} of the last 12",
        zero="No income credited to your account in the last 12 months",
    ),
    _c("FC22", "min_balance_90d", "Your lowest account balance in the last 90 days was {v}"),
    _c(
        "FC23",
        "instalment_to_income",
        "The instalment applied for is {v} times your monthly income",
    ),
    _c("FC24", "loan_to_income", "The amount applied for is {v} times your monthly income"),
    _c(
        "FC91",
        ("income_monthly_90d", "income_months_12m", "min_balance_90d", "overdraft_share_90d"),
        "No current-account history on record",
        on_missing=True,
    ),
    _c(
        "BP20",
        "debit_to_credit_90d",
        "You paid out {v} times what came into your account in the last 90 days",
    ),
    _c("IT20", "bank_account_months", "Your current account history is {v} long"),
    # ---- behaviour preferences
    _c(
        "BP01",
        "receipt_confirm_rate_365d",
        "You confirmed receipt of only {v} of your orders (by value) in the last 365 days",
    ),
    _c(
        "BP02",
        "review_rate_365d",
        "You reviewed only {v} of your orders (by value) in the last 365 days",
    ),
    # ---- identity traits
    _c("IT01", "identity_verified", "Identity is verified", zero="Identity is not verified"),
    _c("IT02", "occupation_stability", "Occupation: {v}"),
    _c("IT03", "platform_months", "Time as a member of the platform: {v}"),
    _c("IT04", "n_address_changes_365d", "{v} address change{s} in the last 365 days"),
    _c("IT05", "days_since_address_change", "Your last address change was only {v} ago"),
    _c("IT90", "identity_verified", "Identity not verified", on_missing=True),
    # ---- social connections: only the applicant's own network is worded
    _c("SC01", "n_contacts", "You have {v} contact{s} linked to you for 90 days or more"),
    _c(
        "SC02",
        "n_contacts_known",
        "You have {v} contact{s} on the platform linked to you for 90 days or more",
    ),
    _c(
        "SC90",
        ("contacts_late30_share_365d", "contacts_late30_mean_365d", "contacts_verified_share"),
        "Your network of contacts on the platform (its size and how long you have been linked)",
        permissible=False,
        note=_OTHERS,
    ),
)


#: The last resort for a declined person none of whose factors passes the rules above
#: (a decline is never left without a reason): stated, not attributed to a feature.
FALLBACK_CODE = ReasonCode(
    "GN01",
    "Your record as a whole does not yet reach the approval score; no single factor on "
    "record stands out",
    (),
)


@dataclass(frozen=True)
class LimitCode:
    """One credit-limit reason: fields ``{income}``, ``{weight}``, ``{floor}``,
    ``{multiple}``, ``{top_multiple}``, ``{top_score}``, ``{budget}``, ``{cutoff}``,
    ``{score}`` are filled from the decision and the policy."""

    code: str
    text: str


#: Limit reasons, in the order they are listed on a decision.
LIMIT_CODES: tuple[LimitCode, ...] = (
    LimitCode("LM00", "No credit line: your score {score} is below the approval score {cutoff}"),
    LimitCode("LM01", "Limit based on your verified monthly income of CNY {income}"),
    LimitCode(
        "LM02",
        "Limit based on {weight} of your declared monthly income of CNY {income}, as it is "
        "not verified",
    ),
    LimitCode(
        "LM03",
        "No income on record: the limit assumes the minimum monthly capacity of CNY {floor}",
    ),
    LimitCode(
        "LM04",
        "Your income counts for less than the minimum monthly capacity of CNY {floor}, so "
        "the limit uses that minimum",
    ),
    LimitCode("LM05", "Income not verified: a verified income counts in full"),
    LimitCode(
        "LM06",
        "At your score the limit is {multiple} times your monthly capacity ({top_multiple} "
        "from a score of {top_score})",
    ),
    LimitCode(
        "LM07",
        "Limit capped so that the expected loss at your score stays within CNY {budget}",
    ),
    LimitCode(
        "LM08",
        "An income that is not verified counts for at most CNY {unverified_cap} a month",
    ),
)
LIMIT_CODE: dict[str, LimitCode] = {c.code: c for c in LIMIT_CODES}


def check_table(codes: tuple[ReasonCode, ...] = REASON_CODES) -> None:
    """Refuse a table with duplicate codes, unknown features, or a feature covered by two
    value codes (or two absence codes); check that every sentence fills."""
    seen: set[str] = set()
    covered: dict[tuple[str, bool], str] = {}
    for c in codes:
        if c.code in seen:
            raise ValueError(f"reason code {c.code!r} is declared twice")
        seen.add(c.code)
        if not c.features:
            raise ValueError(f"reason code {c.code!r} covers no feature")
        for f in c.features:
            key = (f, c.on_missing)
            if key in covered:
                raise ValueError(f"{f!r} is covered by {covered[key]} and {c.code}")
            covered[key] = c.code
            spec = spec_of(f)
            text(c, spec, None if c.on_missing else float(spec.example))


def spec_of(name_or_stem: str) -> FeatureSpec:
    try:
        return feature_spec(name_or_stem)
    except KeyError:
        return feature_spec(f"{name_or_stem}_90d")  # a windowed stem: any window will do


@functools.cache
def _index() -> dict[tuple[str, bool], ReasonCode]:
    check_table()
    return {(f, c.on_missing): c for c in REASON_CODES for f in c.features}


def code_for(name: str, missing: bool) -> ReasonCode | None:
    """The code covering feature ``name`` for a missing or a known value (None: no reason
    can come from it in that state)."""
    index = _index()
    code = index.get((name, missing))
    if code is None:
        stem = feature_spec(name).stem
        code = index.get((stem, missing)) if stem else None
    return code


def text(code: ReasonCode, spec: FeatureSpec, value: float | None) -> str:
    """The code's sentence for ``spec``'s feature at ``value`` (None: missing)."""
    if code.on_missing:
        return code.text
    return reason_text(_worded(code, spec), value)


@functools.lru_cache(maxsize=4096)
def _worded(code: ReasonCode, spec: FeatureSpec) -> FeatureSpec:
    """``spec`` worded by ``code`` (built and validated once per pair, not per reason)."""
    return dataclasses.replace(spec, reason=Wording(code.text, code.text, code.zero))


def can_give_reason(spec: FeatureSpec) -> bool:
    """Scored, constrained and covered by a permissible value or absence code."""
    if not spec.scored or spec.risk_direction == 0:
        return False
    codes = [code_for(spec.name, m) for m in (False, True)]
    return any(c is not None and c.permissible for c in codes)


def limit_text(code: str, **fields: float | str) -> str:
    """A limit reason's sentence (numbers as shown to people: CNY with separators)."""
    shown = {
        k: (f"{v:,.0f}" if isinstance(v, float) and not math.isnan(v) else v)
        for k, v in fields.items()
    }
    return LIMIT_CODE[code].text.format(**shown)


def table_digest() -> str:
    """SHA-256 of the tables' content (pinned to :data:`REASON_CODES_VERSION` in a test)."""
    content = {
        "reasons": [dataclasses.asdict(c) for c in (*REASON_CODES, FALLBACK_CODE)],
        "limits": [dataclasses.asdict(c) for c in LIMIT_CODES],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def table_rows() -> list[dict[str, object]]:
    """The table as plain rows (code, text, features, permissible, on_missing, note), for
    documentation and the model card."""
    return [
        {
            "code": c.code,
            "text": c.text,
            "features": list(c.features),
            "permissible": c.permissible,
            "on_missing": c.on_missing,
            "note": c.note,
        }
        for c in REASON_CODES
    ]


def limit_reasons(
    factors: dict[str, np.ndarray],
    score: np.ndarray,
    declared_income: np.ndarray,
    verified_income: np.ndarray,
    policy: LimitParams,
) -> list[list[dict[str, str]]]:
    """Limit reasons for every person whose limit is below the maximum.

    ``factors`` is :func:`credit_scoring.decision.limits.limit_factors`'s output. A
    decline gets LM00 (the cut-off); an approved limit below the maximum gets the basis of
    its capacity (LM01 verified, LM02 declared at its weight, LM03 no income on record,
    LM04 the floor above a low income; LM08 after LM02 when the cap on unverified income
    bound), LM05 when the income is not verified, LM06 while
    the score's multiple can still grow, LM07 when the expected-loss cap set the limit.
    A limit at the maximum gets none. Each reason is ``{"code", "text"}``.
    """
    declared = np.asarray(declared_income, dtype=np.float64)
    verified = np.asarray(verified_income, dtype=np.float64)
    common = {
        "floor": float(policy.fallback_income),
        "weight": f"{policy.declared_income_weight:.0%}",
        "top_multiple": f"{policy.income_multiple_at_top:.1f}",
        "top_score": str(policy.top_score),
        "budget": float(policy.loss_budget),
        "cutoff": str(policy.cutoff_score),
        "unverified_cap": float(policy.max_unverified_capacity),
    }
    out: list[list[dict[str, str]]] = []
    for i in range(len(score)):
        codes: list[tuple[str, dict[str, float | str]]] = []
        has_verified = bool(np.isfinite(verified[i]) and verified[i] >= 0)
        has_declared = bool(np.isfinite(declared[i]) and declared[i] >= 0)
        if not factors["approved"][i]:
            codes.append(("LM00", {"score": str(int(score[i]))}))
        elif not factors["at_max"][i]:
            basis = int(factors["basis"][i])
            if basis == limits.BASIS_VERIFIED:
                codes.append(("LM01", {"income": float(verified[i])}))
            elif basis == limits.BASIS_DECLARED:
                codes.append(("LM02", {"income": float(declared[i])}))
                if factors["unverified_capped"][i]:
                    codes.append(("LM08", {}))
            elif has_verified or has_declared:
                codes.append(("LM04", {}))
            else:
                codes.append(("LM03", {}))
            if not has_verified:
                codes.append(("LM05", {}))
            if factors["below_top"][i]:
                codes.append(("LM06", {"multiple": f"{factors['multiple'][i]:.1f}"}))
            if factors["loss_capped"][i]:
                codes.append(("LM07", {}))
        out.append([{"code": c, "text": limit_text(c, **common, **kw)} for c, kw in codes])
    return out
