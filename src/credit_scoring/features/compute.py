"""Point-in-time feature computation: one vectorised implementation for every engine.

Features are computed per row of ``outcomes`` (a person at an observation date) from
events strictly before the observation date and contacts made at least
``MIN_LINK_AGE_DAYS`` before it. The same code serves the whole table, a chunk of
people (streaming), a Dask partition and a single person in the service. What each
feature means lives in :mod:`credit_scoring.features.registry`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credit_scoring.data.arrow import (
    as_strings,
    codes_by_runs,
    codes_in,
    take_strings,
    unique_strings,
    vocabulary_array,
)
from credit_scoring.features.registry import (
    CURRENT_ACCOUNT_DAYS,
    DAY_NS,
    DEFAULT_WINDOWS,
    MIN_LINK_AGE_DAYS,
    N_MONTHS,
    OCCUPATION_STABILITY,
    RISKY_CATEGORIES,
    SEVERE_DPD,
    FeatureSpec,
    _check_windows,
    feature_specs,
    window_feature_name,
)
from credit_scoring.schemas import (
    EDUCATION_LEVELS,
    EVENT_TYPES,
    PURCHASE_CATEGORIES,
    ROW_KEY,
    BehaviourData,
    EventType,
    age_band,
)

# --------------------------------------------------------------------------- helpers


def _col(df: pd.DataFrame, name: str) -> pd.Series | None:
    return df[name] if name in df.columns else None


def _floats(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric or boolean column as float64 with NaN for missing (NaN if absent)."""
    s = _col(df, name)
    if s is None:
        return np.full(len(df), np.nan)
    return s.to_numpy(dtype="float64", na_value=np.nan)


def _ns(s: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A date/datetime column as int64 nanoseconds and its missing mask."""
    if s is None:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    values = s.to_numpy(dtype="datetime64[ns]")
    return values.view(np.int64), np.isnat(values)


def _ext(values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """Append ``fill`` so that index -1 reads it (for lookups with 'not found' = -1)."""
    return np.append(values.astype(np.float64, copy=False), fill)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 or missing."""
    out = np.full(len(num), np.nan)
    np.divide(num, den, out=out, where=(den != 0) & ~np.isnan(den))
    return out


def _count(row: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(row, weights=weights, minlength=n).astype(np.float64, copy=False)


def _min_by(row: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Minimum of ``values`` per row ignoring NaN; NaN for rows without values."""
    out = np.full(n, np.inf)
    np.fmin.at(out, row, values)
    out[np.isinf(out)] = np.nan
    return out


def _max_by(row: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Maximum of ``values`` per row ignoring NaN; NaN for rows without values."""
    out = np.full(n, -np.inf)
    np.fmax.at(out, row, values)
    out[np.isinf(out)] = np.nan
    return out


# --------------------------------------------------------------------------- context


class _Coded:
    """The four tables with every key turned into integers, once per call.

    People get one code space (profiles first, then scored people without a profile);
    events and contacts carry those codes, so the feature blocks only ever gather and
    count integers. Shared by all chunks of :func:`compute_features_chunked`.
    """

    def __init__(self, data: BehaviourData) -> None:
        self.data = data
        outcomes, profiles, events, contacts = (
            data.outcomes,
            data.profiles,
            data.events,
            data.contacts,
        )
        prof_ids = as_strings(_col(profiles, "person_id"), len(profiles))
        out_ids = as_strings(_col(outcomes, "person_id"), len(outcomes))
        self.people = unique_strings(prof_ids, out_ids)
        self.n_people = len(self.people)
        self.profile_of = np.full(self.n_people + 1, -1, dtype=np.int64)  # -1 reads "none"
        pcode = codes_in(prof_ids, self.people)
        ok = pcode >= 0
        self.profile_of[pcode[ok]] = np.flatnonzero(ok)

        self.row_person = codes_in(out_ids, self.people)
        if (self.row_person < 0).any():
            raise ValueError("outcomes.person_id must not be missing")
        self.obs_ns, obs_missing = _ns(_col(outcomes, "observation_date"), len(outcomes))
        if obs_missing.any():
            raise ValueError("outcomes.observation_date must not be missing")

        m = len(events)
        self.ev_person = codes_by_runs(as_strings(_col(events, "person_id"), m), self.people)
        self.ev_ns, _ = _ns(_col(events, "event_time"), m)
        ev_type = codes_in(as_strings(_col(events, "event_type"), m), vocabulary_array(EVENT_TYPES))
        self.ev_type = ev_type.astype(np.int8)  # small ints: a stable argsort is a radix sort

        k = len(contacts)
        self.ct_ego = codes_by_runs(as_strings(_col(contacts, "person_id"), k), self.people)
        self.ct_other = codes_in(as_strings(_col(contacts, "contact_id"), k), self.people)
        self.ct_since_ns, self.ct_since_missing = _ns(_col(contacts, "since_date"), k)
        self._strings: dict[str, pa.ChunkedArray] = {}
        self._profile_floats: dict[str, np.ndarray] = {}

    def event_values(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Events column ``name`` at positions ``idx`` as float64 (NaN for missing)."""
        s = _col(self.data.events, name)
        if s is None:
            return np.full(len(idx), np.nan)
        return s.array.take(idx).to_numpy(dtype="float64", na_value=np.nan)

    def event_strings(self, name: str, idx: np.ndarray) -> pa.Array:
        """Events string column ``name`` at positions ``idx`` (all null if absent)."""
        if name not in self._strings:
            events = self.data.events
            self._strings[name] = as_strings(_col(events, name), len(events))
        return take_strings(self._strings[name], idx)

    def profile_values(self, name: str) -> np.ndarray:
        """Profiles column ``name`` as float64, with NaN appended for "no profile" (-1)."""
        if name not in self._profile_floats:
            self._profile_floats[name] = _ext(_floats(self.data.profiles, name))
        return self._profile_floats[name]

    @functools.cached_property
    def severe_repayments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Everyone's seriously late repayments grouped by person: (first, count, times).

        Person ``p``'s are ``times[first[p] : first[p] + count[p]]`` (ns), for network features.
        """
        rep = np.flatnonzero(
            (self.ev_type == EVENT_TYPES.index(EventType.REPAYMENT)) & (self.ev_person >= 0)
        )
        severe = rep[self.event_values("days_past_due", rep) >= SEVERE_DPD]
        person = self.ev_person[severe]
        order = np.argsort(person, kind="stable")
        count = np.bincount(person, minlength=self.n_people + 1)
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        return first, count, self.ev_ns[severe][order]


@dataclass
class _Events:
    """Events of one type joined to the outcome rows they precede."""

    row: np.ndarray  # outcome row within the computation (int64)
    age: np.ndarray  # whole days before the observation date, >= 1 (int64)
    src: np.ndarray  # position in the events table (int64)

    def window(self, days: int) -> _Events:
        return self.where(self.age <= days)

    def where(self, mask: np.ndarray) -> _Events:
        return _Events(self.row[mask], self.age[mask], self.src[mask])


class _Context:
    """The outcome rows being computed (all, or one chunk) and their events by type."""

    def __init__(self, coded: _Coded, windows: tuple[int, ...], rows: np.ndarray) -> None:
        self.coded = coded
        self.windows = windows
        self.n = n = len(rows)
        self.row_person = coded.row_person[rows]
        self.obs_ns = coded.obs_ns[rows]
        self.row_profile = coded.profile_of[self.row_person]

        # Rows per person (a person may be scored at several observation dates).
        self.rows_of = np.append(np.bincount(self.row_person, minlength=coded.n_people), 0)
        self.single_row = n == 0 or int(self.rows_of.max()) <= 1
        if self.single_row:
            self.row_by_person = np.full(coded.n_people + 1, -1, dtype=np.int64)
            self.row_by_person[self.row_person] = np.arange(n)
        else:
            self.rows_sorted = np.argsort(self.row_person, kind="stable")
            self.first_row = np.concatenate([[0], np.cumsum(self.rows_of[:-1])])

        # Events joined to the rows they precede, split by type. The common case (every
        # event belongs to one row and precedes it) skips the gathers.
        m = len(coded.ev_ns)
        src, row = self.expand(coded.ev_person)
        identity = len(src) == m
        age_ns = self.obs_ns[row] - (coded.ev_ns if identity else coded.ev_ns[src])
        before = age_ns > 0  # strictly before the observation date
        if not before.all():
            keep = np.flatnonzero(before)
            src, row, age_ns = src[keep], row[keep], age_ns[keep]
            identity = False
        age = (age_ns + (DAY_NS - 1)) // DAY_NS  # whole days, rounded up: 1 = the day before
        del age_ns
        types = coded.ev_type if identity else coded.ev_type[src]
        order = np.argsort(types, kind="stable")
        bounds = np.concatenate(
            [[0], np.cumsum(np.bincount(types + 1, minlength=len(EVENT_TYPES) + 1))]
        )
        self.by_type: dict[str, _Events] = {}
        for i, name in enumerate(EVENT_TYPES):
            sel = order[bounds[i + 1] : bounds[i + 2]]  # bucket 0 holds unknown types (-1)
            self.by_type[name] = _Events(row[sel], age[sel], sel if identity else src[sel])

    def expand(self, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Join items (events, contacts) of ``person`` codes to each row of that person.

        Returns (item position, row) pairs, item positions ascending; items of people
        without a row here are dropped.
        """
        if self.single_row:
            row = self.row_by_person[person]
            has_row = row >= 0
            if has_row.all():
                return np.arange(len(person)), row
            src = np.flatnonzero(has_row)
            return src, row[src]
        k = self.rows_of[person]
        src = np.repeat(np.arange(len(person)), k)
        within = np.arange(len(src)) - np.repeat(np.cumsum(k) - k, k)
        return src, self.rows_sorted[self.first_row[person[src]] + within]

    def values(self, name: str, ev: _Events) -> np.ndarray:
        """Events column ``name`` for ``ev`` as float64 (NaN missing)."""
        return self.coded.event_values(name, ev.src)

    def window_sums(
        self, ev: _Events, weights: np.ndarray | None, windows: Iterable[int]
    ) -> dict[int, np.ndarray]:
        """Sum of ``weights`` (or count) per row over each window, in one bincount."""
        edges = np.array(sorted(set(windows)), dtype=np.int64)
        nb = len(edges) + 1
        bucket = np.searchsorted(edges, ev.age, side="left")  # age <= edges[j] -> j
        sums = np.bincount(ev.row * nb + bucket, weights=weights, minlength=self.n * nb)
        cum = sums.astype(np.float64, copy=False).reshape(self.n, nb).cumsum(axis=1)
        return {int(w): cum[:, j] for j, w in enumerate(edges)}

    def monthly(self, ev: _Events, weights: np.ndarray | None = None) -> np.ndarray:
        """An (n rows x 12) matrix of sums per ~30.4-day bucket of the last 365 days."""
        inside = ev.age <= 365
        if weights is not None:
            weights = weights[inside]
        ev = ev.where(inside)
        month = (ev.age - 1) * N_MONTHS // 365  # 0 = the most recent bucket
        mat = np.bincount(ev.row * N_MONTHS + month, weights=weights, minlength=self.n * N_MONTHS)
        return mat.astype(np.float64, copy=False).reshape(self.n, N_MONTHS)

    def profile(self, name: str) -> np.ndarray:
        """A numeric/boolean profile column per row (NaN if missing or no profile)."""
        return self.coded.profile_values(name)[self.row_profile]

    def profile_days(self, name: str) -> np.ndarray:
        """Whole days from a profile date to the observation date (negative if after it).

        NaN when the date is missing or the person has no profile.
        """
        profiles = self.coded.data.profiles
        ns, missing = _ns(_col(profiles, name), len(profiles))
        idx = self.row_profile
        ok = idx >= 0
        ok[ok] = ~missing[idx[ok]]
        days = np.full(self.n, np.nan)
        days[ok] = (self.obs_ns[ok] - ns[idx[ok]]) // DAY_NS
        return days

    @functools.cached_property
    def current_accounts(self) -> dict[str, np.ndarray]:
        """Per row, over the latest statement of each current account: total balance,
        total limit, worst days past due and the number of accounts."""
        st = self.by_type[EventType.STATEMENT]
        cur = st.where(_latest_statements(self, st))
        return {
            "balance": _count(cur.row, self.n, np.nan_to_num(self.values("balance", cur))),
            "limit": _count(cur.row, self.n, np.nan_to_num(self.values("credit_limit", cur))),
            "dpd": _max_by(cur.row, self.values("days_past_due", cur), self.n),
            "n": _count(cur.row, self.n),
        }

    def income(self) -> np.ndarray:
        """Monthly income for capacity ratios: verified only (NaN when unverified).

        Declared income would let a person buy a lower ratio by typing a larger number.
        """
        return self.profile("verified_income")


# --------------------------------------------------------------------------- feature blocks


def _credit_history(ctx: _Context) -> dict[str, np.ndarray]:
    n, out = ctx.n, {}
    rep = ctx.by_type[EventType.REPAYMENT]
    dpd = ctx.values("days_past_due", rep)
    known = ~np.isnan(dpd)
    late = dpd > 0
    wins = set(ctx.windows) | {90, 365}
    n_rep = ctx.window_sums(rep, None, ctx.windows)
    n_known = ctx.window_sums(rep, known.astype(np.float64), {90, 365})
    n_late = ctx.window_sums(rep, late.astype(np.float64), wins)
    n_severe = ctx.window_sums(rep, (dpd >= SEVERE_DPD).astype(np.float64), ctx.windows)
    for w in ctx.windows:
        out[window_feature_name("n_repayments", w)] = n_rep[w]
        out[window_feature_name("n_late", w)] = n_late[w]
        out[window_feature_name("n_late_30p", w)] = n_severe[w]
    ontime = ctx.window_sums(rep, (dpd == 0).astype(np.float64), {365})[365]
    out["ontime_rate_365d"] = _div(ontime, n_known[365])
    out["late_rate_trend"] = _div(n_late[90], n_known[90]) - _div(n_late[365], n_known[365])
    for w in (90, 365):
        inside = rep.age <= w
        out[f"worst_dpd_{w}d"] = _max_by(rep.row[inside], dpd[inside], n)
    out["days_since_last_late"] = _min_by(rep.row[late], rep.age[late].astype(np.float64), n)
    amount, due = ctx.values("amount", rep), ctx.values("amount_due", rep)
    paired = (rep.age <= 365) & ~np.isnan(due) & ~np.isnan(amount)
    out["repaid_to_due_365d"] = _div(
        _count(rep.row[paired], n, amount[paired]), _count(rep.row[paired], n, due[paired])
    )

    st = ctx.by_type[EventType.STATEMENT]
    first_credit = np.fmax(
        _max_by(rep.row, rep.age.astype(np.float64), n),
        _max_by(st.row, st.age.astype(np.float64), n),
    )
    out["credit_history_months"] = np.nan_to_num(np.floor(first_credit * N_MONTHS / 365), nan=0.0)

    util = _div(ctx.values("balance", st), ctx.values("credit_limit", st))
    has_util = ~np.isnan(util)
    u = st.where(has_util)
    util_sum = ctx.window_sums(u, util[has_util], {90, 365})
    util_n = ctx.window_sums(u, None, {90, 365})
    out["utilisation_mean_90d"] = _div(util_sum[90], util_n[90])
    out["utilisation_mean_365d"] = _div(util_sum[365], util_n[365])
    in365 = has_util & (st.age <= 365)
    out["utilisation_max_365d"] = _max_by(st.row[in365], util[in365], n)
    out["utilisation_trend"] = out["utilisation_mean_90d"] - out["utilisation_mean_365d"]
    overdue = (st.age <= 365) & (ctx.values("days_past_due", st) > 0)
    out["n_delinquent_statements_365d"] = _count(st.row[overdue], n)

    current = ctx.current_accounts
    out["n_current_accounts"] = current["n"]
    out["current_dpd"] = current["dpd"]
    out["utilisation_latest"] = _div(current["balance"], current["limit"])
    return out


def _latest_statements(ctx: _Context, st: _Events) -> np.ndarray:
    """Mask of ``st``: the latest statement of each (row, account) that is current.

    An account is current when it had a statement in the last ``CURRENT_ACCOUNT_DAYS``;
    ties on the same day keep the last statement in input order. Statements without an
    account id count as one unnamed account.
    """
    recent = np.flatnonzero(st.age <= CURRENT_ACCOUNT_DAYS)
    mask = np.zeros(len(st.row), dtype=bool)
    if len(recent) == 0:
        return mask
    enc = pc.dictionary_encode(ctx.coded.event_strings("account_id", st.src[recent]))
    acct = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    key = st.row[recent] * (int(acct.max()) + 1) + acct
    kcode, uniques = pd.factorize(key)
    age = st.age[recent]
    latest = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(latest, kcode, age)
    is_latest = np.flatnonzero(age == latest[kcode])
    pick = np.full(len(uniques), -1, dtype=np.int64)
    np.maximum.at(pick, kcode[is_latest], is_latest)
    mask[recent[pick]] = True
    return mask


def _fulfilment_capacity(ctx: _Context) -> dict[str, np.ndarray]:
    n, out = ctx.n, {}
    declared = ctx.profile("declared_income")
    verified = ctx.profile("verified_income")
    income = ctx.income()
    out["declared_income"] = declared
    out["verified_income"] = verified
    has_profile = ctx.row_profile >= 0
    out["income_verified"] = np.where(has_profile, (~np.isnan(verified)).astype(float), np.nan)
    out["income_verified_ratio"] = _div(verified, declared)
    years = ctx.profile_days("employment_start_date") / 365.25
    out["employment_years"] = np.where(years >= 0, years, np.nan)  # started after: unknown then
    out["credit_limit"] = ctx.current_accounts["limit"]
    out["balance_to_income"] = _div(ctx.current_accounts["balance"], income)

    p90 = ctx.by_type[EventType.PURCHASE].window(90)
    spend90 = _count(p90.row, n, np.nan_to_num(ctx.values("amount", p90)))
    out["spend_to_income_90d"] = _div(spend90 / 3.0, income)

    util = ctx.by_type[EventType.UTILITY_PAYMENT]
    out["n_utility_payments_365d"] = _count(util.window(365).row, n)
    out["utility_months_12m"] = (ctx.monthly(util) > 0).sum(axis=1).astype(np.float64)

    top = ctx.by_type[EventType.PHONE_TOPUP].window(365)
    amount = ctx.values("amount", top)
    has_amount = ~np.isnan(amount)
    out["n_phone_topups_365d"] = _count(top.row, n)
    out["topup_months_12m"] = (ctx.monthly(top) > 0).sum(axis=1).astype(np.float64)
    out["topup_mean_amount_365d"] = _div(
        _count(top.row[has_amount], n, amount[has_amount]), _count(top.row[has_amount], n)
    )
    return out


def _behaviour_preferences(ctx: _Context) -> dict[str, np.ndarray]:
    n, out = ctx.n, {}
    pur = ctx.by_type[EventType.PURCHASE]
    amount = np.nan_to_num(ctx.values("amount", pur))
    wins = set(ctx.windows) | {90, 365}
    counts = ctx.window_sums(pur, None, wins)
    spend = ctx.window_sums(pur, amount, wins)
    for w in ctx.windows:
        out[window_feature_name("n_purchases", w)] = counts[w]
        out[window_feature_name("spend", w)] = spend[w]
    out["mean_purchase_amount_365d"] = _div(spend[365], counts[365])
    monthly = ctx.monthly(pur, amount)
    out["spend_cv_12m"] = _div(monthly.std(axis=1), monthly.mean(axis=1))
    out["spend_trend"] = _div(spend[90] / 90.0, spend[365] / 365.0)

    in365 = pur.age <= 365
    p = pur.where(in365)
    # Order rates are weighted by amount: a burst (or a drip) of tiny orders, all
    # confirmed, reviewed and kept, barely moves them, so a clean record cannot be bought
    # cheaply. Orders without an amount weigh nothing.
    weight = amount[in365]
    for col, name in (
        ("receipt_confirmed", "receipt_confirm_rate_365d"),
        ("returned", "return_rate_365d"),
        ("review_left", "review_rate_365d"),
    ):
        flag = ctx.values(col, p)
        known = ~np.isnan(flag)
        w = weight[known]
        out[name] = _div(_count(p.row[known], n, w * flag[known]), _count(p.row[known], n, w))

    nc = len(PURCHASE_CATEGORIES)
    cat = codes_in(
        ctx.coded.event_strings("category", p.src), vocabulary_array(PURCHASE_CATEGORIES)
    )
    cat[cat < 0] = PURCHASE_CATEGORIES.index("other")
    by_cat = np.bincount(p.row * nc + cat, minlength=n * nc).reshape(n, nc)
    out["category_diversity_365d"] = (by_cat > 0).sum(axis=1).astype(np.float64)
    risky = np.isin(cat, [PURCHASE_CATEGORIES.index(c) for c in RISKY_CATEGORIES])
    risky_spend = _count(p.row[risky], n, amount[in365][risky])
    out["gaming_luxury_share_365d"] = _div(risky_spend, spend[365])
    out["days_since_last_purchase"] = _min_by(pur.row, pur.age.astype(np.float64), n)
    return out


def _identity_traits(ctx: _Context) -> dict[str, np.ndarray]:
    n, out = ctx.n, {}
    profiles = ctx.coded.data.profiles
    out["identity_verified"] = ctx.profile("identity_verified")
    out["profile_completeness"] = ctx.profile("profile_completeness")
    edu = codes_in(
        as_strings(_col(profiles, "education"), len(profiles)), vocabulary_array(EDUCATION_LEVELS)
    )
    out["education_level"] = _ext(np.where(edu >= 0, edu, np.nan))[ctx.row_profile]
    occ_names = list(OCCUPATION_STABILITY)
    occ = codes_in(
        as_strings(_col(profiles, "occupation"), len(profiles)), vocabulary_array(occ_names)
    )
    stability = np.array([OCCUPATION_STABILITY[o] for o in occ_names] + [np.nan], dtype=float)
    out["occupation_stability"] = _ext(stability[occ])[ctx.row_profile]
    days = ctx.profile_days("registered_date")
    out["platform_months"] = np.floor(np.clip(days, 0, None) * N_MONTHS / 365)

    addr = ctx.by_type[EventType.ADDRESS_CHANGE]
    out["n_address_changes_365d"] = _count(addr.window(365).row, n)
    out["days_since_address_change"] = _min_by(addr.row, addr.age.astype(np.float64), n)
    out["n_profile_updates_365d"] = _count(ctx.by_type[EventType.PROFILE_UPDATE].window(365).row, n)
    return out


def _social_connections(ctx: _Context) -> dict[str, np.ndarray]:
    n, out, coded = ctx.n, {}, ctx.coded
    src, row = ctx.expand(coded.ct_ego)
    aged = ctx.obs_ns[row] - MIN_LINK_AGE_DAYS * DAY_NS
    made = ~coded.ct_since_missing[src] & (coded.ct_since_ns[src] <= aged)
    src, row = src[made], row[made]
    contact = coded.ct_other[src]
    contact_profile = coded.profile_of[contact]
    known = contact_profile >= 0
    out["n_contacts"] = _count(row, n)
    n_known = _count(row[known], n)
    out["n_contacts_known"] = n_known

    # Known contacts' seriously late repayments in the 365 days before the ego's date.
    pair_row, pair_contact = row[known], contact[known]
    first, count, times = coded.severe_repayments
    k = count[pair_contact]
    pair = np.repeat(np.arange(len(pair_row)), k)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(k) - k, k)
    age_ns = ctx.obs_ns[pair_row[pair]] - times[first[pair_contact[pair]] + within]
    inside = (age_ns > 0) & (age_ns <= 365 * DAY_NS)
    late_per_pair = np.bincount(pair[inside], minlength=len(pair_row)).astype(np.float64)
    any_late = (late_per_pair > 0).astype(np.float64)
    out["contacts_late30_share_365d"] = _div(_count(pair_row, n, any_late), n_known)
    out["contacts_late30_mean_365d"] = _div(_count(pair_row, n, late_per_pair), n_known)

    verified = coded.profile_values("identity_verified")[contact_profile[known]]
    has = ~np.isnan(verified)
    out["contacts_verified_share"] = _div(
        _count(pair_row[has], n, verified[has]), _count(pair_row[has], n)
    )
    return out


_BLOCKS: tuple[Callable[[_Context], dict[str, np.ndarray]], ...] = (
    _credit_history,
    _fulfilment_capacity,
    _behaviour_preferences,
    _identity_traits,
    _social_connections,
)


def _feature_matrix(
    coded: _Coded, specs: tuple[FeatureSpec, ...], windows: tuple[int, ...], rows: np.ndarray
) -> np.ndarray:
    """Features of outcome ``rows`` as a (rows x features) float64 matrix in registry order."""
    ctx = _Context(coded, windows, rows)
    values: dict[str, np.ndarray] = {}
    for block in _BLOCKS:
        values.update(block(ctx))
    names = [s.name for s in specs]
    missing, extra = sorted(set(names) - set(values)), sorted(set(values) - set(names))
    if missing or extra:
        raise RuntimeError(f"registry and computation disagree: missing {missing}, extra {extra}")
    matrix = np.empty((len(rows), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        matrix[:, j] = values[name]
    return matrix


def _frame(outcomes: pd.DataFrame, matrix: np.ndarray, names: list[str]) -> pd.DataFrame:
    head = outcomes[list(ROW_KEY)].reset_index(drop=True)
    return pd.concat([head, pd.DataFrame(matrix, columns=names)], axis=1)


# --------------------------------------------------------------------------- public API


def compute_features(data: BehaviourData, windows: Sequence[int] = DEFAULT_WINDOWS) -> pd.DataFrame:
    """Point-in-time features, one row per ``data.outcomes`` row, in its order.

    Columns: ``person_id``, ``observation_date``, then :func:`feature_names` (for
    ``windows``) in registry order, all float64 with NaN for missing. Only events with
    ``event_time < observation_date`` and contacts with ``since_date <= observation_date -
    MIN_LINK_AGE_DAYS`` are used. For a single person, pass their profile, outcome row(s),
    events and contacts plus their contacts' profiles and events (:func:`person_data` cuts
    exactly that): the result equals their rows of the whole table.
    """
    windows = _check_windows(windows)
    specs = feature_specs(windows)
    coded = _Coded(data)
    matrix = _feature_matrix(coded, specs, windows, np.arange(len(data.outcomes)))
    return _frame(data.outcomes, matrix, [s.name for s in specs])


def compute_features_chunked(
    data: BehaviourData,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    chunk_people: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """:func:`compute_features` over chunks of people, to bound memory; identical output.

    Keys are coded once for the whole input; each chunk then joins only its own people's
    events and contacts, while the network features still read every contact's events,
    whichever chunk the contact is in. Working memory is proportional to the chunk, plus
    a few integer arrays as long as the events table. ``progress(rows_done)`` is called
    after each chunk with the number of ``outcomes`` rows computed so far.
    """
    if chunk_people < 1:
        raise ValueError(f"chunk_people must be >= 1; got {chunk_people}")
    windows = _check_windows(windows)
    specs = feature_specs(windows)
    coded = _Coded(data)
    n = len(data.outcomes)
    scored = np.zeros(coded.n_people, dtype=bool)
    scored[coded.row_person] = True
    rank = np.cumsum(scored) - 1  # scored people numbered 0, 1, ... in code order
    chunk_of_row = rank[coded.row_person] // chunk_people
    n_chunks = int(chunk_of_row.max()) + 1 if n else 0
    matrix = np.empty((n, len(specs)), dtype=np.float64)
    done = 0
    for c in range(n_chunks):
        rows = np.flatnonzero(chunk_of_row == c)
        matrix[rows] = _feature_matrix(coded, specs, windows, rows)
        done += len(rows)
        if progress is not None:
            progress(done)
    return _frame(data.outcomes, matrix, [s.name for s in specs])


def network_event_mask(events: pd.DataFrame) -> np.ndarray:
    """Events that can change someone else's features: seriously late repayments.

    Besides a person's own events, their features read only these events of their
    contacts (see :func:`person_data`).
    """
    is_rep = (events["event_type"] == EventType.REPAYMENT).to_numpy(dtype=bool, na_value=False)
    dpd = _floats(events, "days_past_due")
    return is_rep & (dpd >= SEVERE_DPD)


def person_data(data: BehaviourData, person_ids: Iterable[str]) -> BehaviourData:
    """The slice of ``data`` that the features of ``person_ids`` depend on.

    Their profile, outcome rows, events and contacts, plus their contacts' profiles and
    the contacts' events the network features read (:func:`network_event_mask`). The
    service passes this to :func:`compute_features` to score one person.
    """
    ids = pd.Series(list(person_ids), dtype="string")
    people = unique_strings(as_strings(ids, len(ids)))
    contacts = data.contacts[_is_in(data.contacts["person_id"], people)]
    linked = unique_strings(
        pa.chunked_array([people]), as_strings(contacts["contact_id"], len(contacts))
    )
    ev_person = data.events["person_id"]
    own = _is_in(ev_person, people)
    of_contacts = _is_in(ev_person, linked) & network_event_mask(data.events)
    return BehaviourData(
        profiles=data.profiles[_is_in(data.profiles["person_id"], linked)],
        outcomes=data.outcomes[_is_in(data.outcomes["person_id"], people)],
        events=data.events[own | of_contacts],
        contacts=contacts,
    )


def _is_in(s: pd.Series, values: pa.Array) -> np.ndarray:
    """``s.isin(values)`` for a string column, hashed in Arrow (pandas loops in Python)."""
    return codes_in(as_strings(s, len(s)), values) >= 0


def protected_attributes(data: BehaviourData) -> pd.DataFrame:
    """Protected attributes per outcome row, for fairness measurement only (never features).

    Columns: ``person_id``, ``observation_date``, ``gender`` and ``age_band`` (of the age
    in whole years at the observation date, taken as observation year minus birth year;
    missing when the birth year is).
    """
    outcomes = data.outcomes
    prof = data.profiles.drop_duplicates("person_id", keep="last").set_index("person_id")
    ids = outcomes["person_id"]
    out = outcomes[list(ROW_KEY)].reset_index(drop=True)
    if "gender" in prof.columns:
        out["gender"] = prof["gender"].reindex(ids).astype("string").to_numpy()
    else:
        out["gender"] = pd.array([pd.NA] * len(out), dtype="string")
    birth = (
        prof["birth_year"].reindex(ids).to_numpy(dtype="float64", na_value=np.nan)
        if "birth_year" in prof.columns
        else np.full(len(out), np.nan)
    )
    age = outcomes["observation_date"].dt.year.to_numpy(dtype="float64") - birth
    out["age_band"] = age_band(pd.Series(age)).to_numpy()
    return out.astype({"gender": "string", "age_band": "string"})
