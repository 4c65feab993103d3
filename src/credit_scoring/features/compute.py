"""Point-in-time feature computation: one vectorised implementation for every engine.

Features are computed per row of ``outcomes`` (a person at an observation date) from
events and current-account transactions strictly before the observation date, contacts
made at least ``MIN_LINK_AGE_DAYS`` before it, the application made at it, and the profile
facts known at it: the latest ``profile_history`` row strictly before the observation
date when the person has dated facts, else the (undated) ``profiles`` row. The same code
serves the whole table, a chunk of people (streaming), a Dask partition and a single
person in the service. What each
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
    CHANNELS,
    DATED_PROFILE_FACTS,
    EDUCATION_LEVELS,
    EVENT_TYPES,
    INCOME_KINDS,
    PRODUCTS,
    PURCHASE_CATEGORIES,
    ROW_KEY,
    TRANSACTION_KINDS,
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


def _string_codes(values: pa.ChunkedArray) -> np.ndarray:
    """Small integer codes of a string column (-1 for missing), by dictionary encoding."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    enc = pc.dictionary_encode(values.combine_chunks())
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


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

        tx = data.transactions
        t = len(tx)
        self.tx_person = codes_by_runs(as_strings(_col(tx, "person_id"), t), self.people)
        self.tx_ns, _ = _ns(_col(tx, "transaction_time"), t)
        self.tx_amount = _floats(tx, "amount")
        self.tx_balance = _floats(tx, "balance")
        kinds = codes_in(as_strings(_col(tx, "kind"), t), vocabulary_array(TRANSACTION_KINDS))
        kinds[kinds < 0] = TRANSACTION_KINDS.index("other")
        self.tx_kind = kinds
        self.tx_account = _string_codes(as_strings(_col(tx, "account_id"), t))
        self.tx_counterparty = _string_codes(as_strings(_col(tx, "counterparty_id"), t))

        self.applications = data.applications
        hist = data.profile_history
        h = len(hist)
        self.hist_person = codes_by_runs(as_strings(_col(hist, "person_id"), h), self.people)
        self.hist_ns, _ = _ns(_col(hist, "as_of_date"), h)
        self.has_history = np.zeros(self.n_people + 1, dtype=bool)  # index -1 reads False
        self.has_history[self.hist_person[self.hist_person >= 0]] = True

        self._strings: dict[str, pa.ChunkedArray] = {}
        self._profile_floats: dict[str, np.ndarray] = {}
        self._history_floats: dict[str, np.ndarray] = {}

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

    def history_values(self, name: str) -> np.ndarray:
        """profile_history column ``name`` as float64, NaN appended for "no row" (-1)."""
        if name not in self._history_floats:
            self._history_floats[name] = _ext(_floats(self.data.profile_history, name))
        return self._history_floats[name]

    def latest_history(self, person: np.ndarray, obs_ns: np.ndarray) -> np.ndarray:
        """Per (person, date): the profile_history row of that person with the latest
        ``as_of_date`` strictly before the date (-1 if none; ties: the last in the file)."""
        out = np.full(len(person), -1, dtype=np.int64)
        if len(self.hist_ns) == 0 or len(person) == 0:
            return out
        ok = self.hist_person >= 0
        rows = np.flatnonzero(ok)
        # one integer key (person, rank of the time) so a single sorted search answers all
        times = np.concatenate([self.hist_ns[rows], obs_ns])
        _, rank = np.unique(times, return_inverse=True)
        width = int(rank.max()) + 2
        h_key = self.hist_person[rows].astype(np.int64) * width + rank[: len(rows)]
        o_key = person.astype(np.int64) * width + rank[len(rows) :]
        order = np.lexsort((rows, h_key))  # stable on file order for equal keys
        sorted_key = h_key[order]
        pos = np.searchsorted(sorted_key, o_key, side="left") - 1
        hit = pos >= 0
        hit[hit] = (sorted_key[pos[hit]] // width) == person[hit]
        out[hit] = rows[order[pos[hit]]]
        return out

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

        # Dated profile facts: the latest row strictly before each observation date, used
        # instead of the undated profile for every person who has dated facts at all.
        self.row_dated = coded.has_history[self.row_person]
        self.row_history = coded.latest_history(self.row_person, self.obs_ns)

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
        """A numeric/boolean profile fact per row as known at the observation date (NaN
        if missing or no profile): from the latest dated row for people with dated facts."""
        undated = self.coded.profile_values(name)[self.row_profile]
        if name not in DATED_PROFILE_FACTS or not self.row_dated.any():
            return undated
        dated = self.coded.history_values(name)[self.row_history]
        return np.where(self.row_dated, dated, undated)

    def _profile_source(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Per row, the table a profile fact comes from and the row in it (-1: none);
        the undated profiles unless the row's person has dated facts (then all rows
        come from profile_history)."""
        data = self.coded.data
        if name in DATED_PROFILE_FACTS and self.row_dated.any():
            # rows of people without dated facts read profiles, offset past the history
            both = pd.concat(
                [data.profile_history[[name]], data.profiles[[name]]], ignore_index=True
            )
            undated = np.where(
                self.row_profile >= 0, self.row_profile + len(data.profile_history), -1
            )
            return both, np.where(self.row_dated, self.row_history, undated)
        return data.profiles, self.row_profile

    def profile_days(self, name: str) -> np.ndarray:
        """Whole days from a profile date to the observation date (negative if after it).

        NaN when the date is missing or the person has no profile.
        """
        table, idx = self._profile_source(name)
        ns, missing = _ns(_col(table, name), len(table))
        ok = idx >= 0
        ok[ok] = ~missing[idx[ok]]
        days = np.full(self.n, np.nan)
        days[ok] = (self.obs_ns[ok] - ns[idx[ok]]) // DAY_NS
        return days

    def profile_codes(self, name: str, vocabulary: Sequence[str]) -> np.ndarray:
        """A text profile fact per row as its position in ``vocabulary`` (NaN if missing,
        outside it, or no profile), as known at the observation date."""
        table, idx = self._profile_source(name)
        codes = codes_in(as_strings(_col(table, name), len(table)), vocabulary_array(vocabulary))
        return _ext(np.where(codes >= 0, codes, np.nan))[idx]

    @functools.cached_property
    def transactions(self) -> _Events:
        """Current-account transactions strictly before each row's observation date
        (``src``: position in the transactions table), in table order."""
        coded = self.coded
        src, row = self.expand(coded.tx_person)
        age_ns = self.obs_ns[row] - coded.tx_ns[src]
        keep = age_ns > 0
        src, row, age_ns = src[keep], row[keep], age_ns[keep]
        return _Events(row, (age_ns + (DAY_NS - 1)) // DAY_NS, src)

    @functools.cached_property
    def ledger(self) -> dict[str, np.ndarray]:
        """The end-of-day balance path of every current account, per row.

        A transaction's balance holds from its day until the account's next transaction
        with a balance (or the observation date); the last transaction of a day sets that
        day's end-of-day balance. Per row and window (90 and 365 days): the account-days
        covered, those with a negative balance, and (90 days) the lowest balance.
        """
        n, coded, tx = self.n, self.coded, self.transactions
        bal = coded.tx_balance[tx.src]
        has = ~np.isnan(bal)
        row, age, src, bal = tx.row[has], tx.age[has], tx.src[has], bal[has]
        account = coded.tx_account[src]
        order = np.lexsort((src, coded.tx_ns[src], account, row))
        row, age, account, bal = row[order], age[order], account[order], bal[order]
        same_next = np.zeros(len(row), dtype=bool)
        same_next[:-1] = (row[1:] == row[:-1]) & (account[1:] == account[:-1])
        next_age = np.zeros(len(row), dtype=np.int64)
        next_age[:-1] = np.where(same_next[:-1], age[1:], 0)
        out: dict[str, np.ndarray] = {}
        negative = bal < 0
        for w in (90, 365):
            days = np.clip(np.minimum(age, w) - next_age, 0, None).astype(np.float64)
            covered = _count(row, n, days)
            out[f"covered_{w}"] = covered
            out[f"negative_{w}"] = _count(row[negative], n, days[negative])
            if w == 90:
                inside = days > 0
                out["min_90"] = _min_by(row[inside], bal[inside], n)
        return out

    @functools.cached_property
    def application(self) -> np.ndarray:
        """Per row, its row in the applications table (-1 when there is none)."""
        apps = self.coded.applications
        out = np.full(self.n, -1, dtype=np.int64)
        if len(apps) == 0 or self.n == 0:
            return out
        app_person = codes_in(as_strings(apps["person_id"], len(apps)), self.coded.people)
        app_ns, app_missing = _ns(apps["observation_date"], len(apps))
        left = pd.DataFrame({"p": app_person, "t": app_ns, "i": np.arange(len(apps))})
        left = left[(app_person >= 0) & ~app_missing].drop_duplicates(["p", "t"])
        right = pd.DataFrame({"p": self.row_person, "t": self.obs_ns, "r": np.arange(self.n)})
        joined = right.merge(left, on=["p", "t"], how="inner")
        out[joined["r"].to_numpy()] = joined["i"].to_numpy()
        return out

    def application_values(self, name: str) -> np.ndarray:
        """A numeric applications column per row (NaN without an application)."""
        return _ext(_floats(self.coded.applications, name))[self.application]

    def application_codes(self, name: str, vocabulary: Sequence[str]) -> np.ndarray:
        """A text applications column per row as its position in ``vocabulary`` (NaN if none)."""
        apps = self.coded.applications
        codes = codes_in(as_strings(_col(apps, name), len(apps)), vocabulary_array(vocabulary))
        return _ext(np.where(codes >= 0, codes, np.nan))[self.application]

    @functools.cached_property
    def account_income(self) -> np.ndarray:
        """Income credits per month on current accounts over the last 90 days (NaN when
        the row has no transaction in those 90 days)."""
        tx = self.transactions.window(90)
        amount = self.coded.tx_amount[tx.src]
        income = np.isin(self.coded.tx_kind[tx.src], _INCOME_CODES)
        total = _count(tx.row[income], self.n, amount[income]) / 3.0
        return np.where(_count(tx.row, self.n) > 0, total, np.nan)

    def capacity_income(self) -> np.ndarray:
        """Monthly income for the application's ratios: verified, else the account's
        income credits (both are observed, neither is typed in by the applicant)."""
        verified = self.income()
        return np.where(np.isnan(verified), self.account_income, verified)

    @functools.cached_property
    def current_accounts(self) -> dict[str, np.ndarray]:
        """Per row, over the latest statement of each current account: total balance,
        total limit, worst days past due and the number of accounts."""
        st = self.by_type[EventType.STATEMENT]
        cur = st.where(_latest_statements(self, st))
        owed = np.clip(np.nan_to_num(self.values("balance", cur)), 0, None)  # credit: 0 owed
        return {
            "balance": _count(cur.row, self.n, owed),
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

    # a negative statement balance (the account is in credit) is nothing owed: 0 use
    owed = np.clip(ctx.values("balance", st), 0, None)
    util = _div(owed, ctx.values("credit_limit", st))
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
    out["identity_verified"] = ctx.profile("identity_verified")
    out["profile_completeness"] = ctx.profile("profile_completeness")
    out["education_level"] = ctx.profile_codes("education", EDUCATION_LEVELS)
    occ_names = list(OCCUPATION_STABILITY)
    stability = np.array([OCCUPATION_STABILITY[o] for o in occ_names] + [np.nan], dtype=float)
    occ = ctx.profile_codes("occupation", occ_names)
    out["occupation_stability"] = stability[np.where(np.isnan(occ), -1, occ).astype(np.int64)]
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


def _accounts_and_application(ctx: _Context) -> dict[str, np.ndarray]:
    """Features of the optional inputs (current-account transactions, the application and
    dated profile facts), in all five dimensions; missing (or 0) without them."""
    n, out, coded = ctx.n, {}, ctx.coded
    tx, ledger = ctx.transactions, ctx.ledger
    kind = coded.tx_kind[tx.src]
    amount = coded.tx_amount[tx.src]

    # credit history: overdrafts and bank fees
    out["overdraft_days_365d"] = np.where(ledger["covered_365"] > 0, ledger["negative_365"], np.nan)
    out["overdraft_share_90d"] = _div(ledger["negative_90"], ledger["covered_90"])
    fees = (kind == TRANSACTION_KINDS.index("fee")) & (tx.age <= 365)
    out["n_fees_365d"] = _count(tx.row[fees], n)

    # fulfilment capacity: income credits, balance floor, the loan relative to income
    out["income_monthly_90d"] = ctx.account_income
    income = np.isin(kind, _INCOME_CODES)
    months = (ctx.monthly(tx.where(income)) > 0).sum(axis=1).astype(np.float64)
    any_in_year = _count(tx.window(365).row, n) > 0
    out["income_months_12m"] = np.where(any_in_year, months, np.nan)
    out["min_balance_90d"] = ledger["min_90"]
    loan = ctx.application_values("amount")
    term = ctx.application_values("term_months")
    instalment = ctx.application_values("instalment")
    instalment = np.where(np.isnan(instalment), _div(loan, term), instalment)
    monthly_income = ctx.capacity_income()
    out["loan_amount"] = loan
    out["loan_term_months"] = term
    out["instalment_to_income"] = _div(instalment, monthly_income)
    out["loan_to_income"] = _div(loan, monthly_income)

    # behaviour preferences: money out against money in, what was applied for and how
    in90 = tx.age <= 90
    money_in = _count(tx.row[in90 & (amount > 0)], n, amount[in90 & (amount > 0)])
    money_out = _count(tx.row[in90 & (amount < 0)], n, -amount[in90 & (amount < 0)])
    out["debit_to_credit_90d"] = _div(money_out, money_in)
    out["application_product"] = ctx.application_codes("product", PRODUCTS)
    out["application_channel"] = ctx.application_codes("channel", CHANNELS)

    # identity traits: how long the account has been seen, how fresh the dated facts are
    first = _max_by(tx.row, tx.age.astype(np.float64), n)
    out["bank_account_months"] = np.floor(first * N_MONTHS / 365)
    as_of = _ext(coded.hist_ns.astype(np.float64))[ctx.row_history]
    out["days_since_profile_facts"] = np.floor((ctx.obs_ns - as_of) / DAY_NS)

    # social connections: distinct counterparties in the last year
    in365 = tx.age <= 365
    cp = coded.tx_counterparty[tx.src]
    has_cp = in365 & (cp >= 0)
    pairs = np.unique(tx.row[has_cp] * (int(cp.max(initial=0)) + 1) + cp[has_cp])
    out["n_counterparties_365d"] = _count(pairs // (int(cp.max(initial=0)) + 1), n)
    return out


_INCOME_CODES = np.array([TRANSACTION_KINDS.index(k) for k in INCOME_KINDS])

_BLOCKS: tuple[Callable[[_Context], dict[str, np.ndarray]], ...] = (
    _credit_history,
    _fulfilment_capacity,
    _behaviour_preferences,
    _identity_traits,
    _social_connections,
    _accounts_and_application,
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

    Their profile, outcome rows, events, contacts, transactions, applications and dated
    profile facts, plus their contacts' profiles and the contacts' events the network
    features read (:func:`network_event_mask`). The service passes this to
    :func:`compute_features` to score one person.
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
        transactions=data.transactions[_is_in(data.transactions["person_id"], people)],
        applications=data.applications[_is_in(data.applications["person_id"], people)],
        profile_history=data.profile_history[_is_in(data.profile_history["person_id"], people)],
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
