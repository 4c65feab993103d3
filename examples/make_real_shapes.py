"""Write small examples of two shapes real credit data comes in (issue #12), offline.

``card_panel/``: a monthly-statement panel of a card book with ONE observation date.
300 card holders, six monthly statements each (balance, limit, days past due; a few
balances negative: the holder paid more than owed) and the payments made, a label
``default_1m`` (default in the month after the observation date). Ingest it with
``data.label: {column: default_1m, horizon_months: 1}``.

``bank_ledger/``: loans granted on about 300 distinct dates over five years (one loan per
person, 400 people). Each person's current-account transactions (salary and other income,
card payments, direct debits, cash, fees, with the running balance, which goes negative
when overdrawn) for the six months before the loan and a month after it, the application (amount,
term, instalment, product, channel), dated profile facts (as of account opening and as of
a later update), and the label ``bad_loan`` (the loan went bad within 24 months). Events and
contacts are header-only: a ledger has none. Ingest it with ``data.label: {column:
bad_loan, horizon_months: 24}``.

Both are deterministic (seeded NumPy) and ingest with zero rejects (the tests check that,
and that the committed files equal a fresh run). Run ``python examples/make_real_shapes.py``
after changing the contract. :func:`ledger_tables` and :func:`accounts_for` are also used by
the tests to add transactions, applications and dated facts to a simulated world.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

PROFILE_COLUMNS = ["person_id", "gender", "birth_year", "registered_date"]
HISTORY_COLUMNS = [
    "person_id",
    "as_of_date",
    "education",
    "occupation",
    "employment_start_date",
    "declared_income",
    "verified_income",
    "identity_verified",
    "profile_completeness",
]
TRANSACTION_COLUMNS = [
    "transaction_id",
    "person_id",
    "account_id",
    "transaction_time",
    "amount",
    "balance",
    "kind",
    "counterparty_id",
]
APPLICATION_COLUMNS = [
    "person_id",
    "observation_date",
    "amount",
    "term_months",
    "instalment",
    "product",
    "channel",
]
EVENT_COLUMNS = [
    "event_id",
    "person_id",
    "event_time",
    "event_type",
    "account_id",
    "amount",
    "balance",
    "credit_limit",
    "amount_due",
    "due_date",
    "days_past_due",
]
CONTACT_COLUMNS = ["person_id", "contact_id", "since_date"]
DAY = np.timedelta64(1, "D")


def _dates(values: np.ndarray) -> list[str]:
    return [str(v)[:10] for v in values.astype("datetime64[D]")]


def _money(values: np.ndarray) -> list[str]:
    return [f"{v:.2f}" for v in values]


# --------------------------------------------------------------------------- card panel


def card_panel(n_people: int = 300, seed: int = 11) -> dict[str, pd.DataFrame]:
    """A card book seen at one date: six statements and payments per holder, one label."""
    rng = np.random.default_rng(seed)
    obs = np.datetime64("2025-01-01")
    ids = [f"C{i:04d}" for i in range(1, n_people + 1)]
    limit = rng.choice([5000, 10000, 20000, 50000], size=n_people).astype(float)
    risk = rng.normal(size=n_people)  # latent: higher = riskier
    profiles = pd.DataFrame(
        {
            "person_id": ids,
            "gender": rng.choice(["F", "M"], size=n_people),
            "birth_year": rng.integers(1955, 2003, size=n_people).astype(str),
            "registered_date": _dates(obs - rng.integers(200, 3000, size=n_people) * DAY),
        }
    )
    events = []
    eid = 0
    status = np.zeros(n_people, dtype=int)  # months behind
    for m in range(6, 0, -1):  # statements of the six months before the observation date
        stmt = (obs - np.timedelta64(31 * m, "D")).astype("datetime64[M]") + np.timedelta64(4, "D")
        use = np.clip(0.3 + 0.25 * risk + rng.normal(0, 0.2, n_people), -0.05, 1.1)
        balance = np.round(use * limit, 2)  # a little below 0: the holder paid ahead
        behind = rng.random(n_people) < 1 / (1 + np.exp(2.8 - 1.2 * risk))
        status = np.where(behind, status + 1, 0)
        for i in range(n_people):
            eid += 1
            events.append(
                {
                    "event_id": f"S{eid:06d}",
                    "person_id": ids[i],
                    "event_time": str(stmt),
                    "event_type": "statement",
                    "account_id": f"K{i + 1:04d}",
                    "balance": f"{balance[i]:.2f}",
                    "credit_limit": f"{limit[i]:.0f}",
                    "days_past_due": str(30 * int(status[i])),
                }
            )
            if status[i] == 0 and balance[i] > 0:  # a payment made for this statement
                due = stmt + np.timedelta64(20, "D")
                late = int(rng.integers(0, 8)) if rng.random() < 0.2 else 0
                eid += 1
                events.append(
                    {
                        "event_id": f"S{eid:06d}",
                        "person_id": ids[i],
                        "event_time": str(due + late * DAY),
                        "event_type": "repayment",
                        "account_id": f"K{i + 1:04d}",
                        "amount": f"{max(balance[i] * 0.1, 10):.2f}",
                        "amount_due": f"{max(balance[i] * 0.1, 10):.2f}",
                        "due_date": str(due),
                        "days_past_due": str(late),
                    }
                )
    p_default = 1 / (1 + np.exp(3.0 - 1.4 * risk - 0.8 * status))
    outcomes = pd.DataFrame(
        {
            "person_id": ids,
            "observation_date": str(obs),
            "default_1m": (rng.random(n_people) < p_default).astype(int).astype(str),
        }
    )
    return {
        "profiles": profiles,
        "outcomes": outcomes,
        "events": pd.DataFrame(events, columns=EVENT_COLUMNS).fillna(""),
        "contacts": pd.DataFrame(columns=CONTACT_COLUMNS),
    }


# --------------------------------------------------------------------------- ledger


def accounts_for(
    person_ids: Sequence[str],
    observation_dates: Sequence[np.datetime64] | np.ndarray,
    seed: int = 5,
    days_before: int = 365,
    days_after: int = 60,
) -> dict[str, pd.DataFrame]:
    """Current-account transactions, one application per (person, date) and dated profile
    facts for people scored at the given dates (one row each, person_id may repeat).

    Deterministic for a seed. Each person's ledger covers ``days_before`` days before their
    earliest date to ``days_after`` after their latest (history after a date must never
    reach its features). Returns the tables as frames of typed columns, plus ``"risk"``:
    the latent risk per input row (higher = riskier) that the example's label is drawn from.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"person_id": list(person_ids), "obs": np.asarray(observation_dates, "datetime64[D]")}
    )
    people = frame.groupby("person_id", sort=False)["obs"].agg(["min", "max"])
    n = len(people)
    salary = np.round(np.exp(rng.normal(8.9, 0.45, n)), -1)  # monthly, about 7,000 CNY
    salaried = rng.random(n) < 0.8
    spend_ratio = np.clip(rng.normal(0.95, 0.12, n), 0.6, 1.4)  # outflow / income
    start_balance = np.round(rng.gamma(2.0, 0.6, n) * salary * (spend_ratio < 1.05), 2)
    tx_rows = []
    tid = 0
    min_balance = np.zeros(n)
    negative_days = np.zeros(n)
    for k, (pid, (first, last)) in enumerate(people.iterrows()):
        start = np.datetime64(first, "D") - days_before * DAY
        end = np.datetime64(last, "D") + days_after * DAY
        days = np.arange(start, end, DAY)
        flows: list[tuple[np.datetime64, float, str, str]] = []
        for d in days:
            dom = int(str(d)[8:10])
            if dom == 10:
                if salaried[k]:
                    flows.append((d, salary[k], "salary", f"EMP{k % 37:03d}"))
                else:  # irregular income: some months nothing, some months more
                    if rng.random() < 0.7:
                        amt = round(salary[k] * rng.uniform(0.5, 1.6), 2)
                        flows.append((d, amt, "income", f"PAY{rng.integers(0, 60):03d}"))
            if dom == 1:
                flows.append(
                    (d, -round(0.3 * salary[k] * spend_ratio[k], 2), "direct_debit", "LANDLORD")
                )
            if rng.random() < 0.1:
                amt = round(salary[k] * spend_ratio[k] * rng.uniform(0.05, 0.25), 2)
                flows.append((d, -amt, "card_payment", f"SHOP{rng.integers(0, 90):03d}"))
            if rng.random() < 0.03:
                flows.append((d, -float(rng.choice([200, 500, 1000])), "cash", ""))
        balance = start_balance[k]
        low, negative = balance, 0
        previous_day = None
        for d, amount, kind, counterparty in flows:
            if previous_day is not None and d != previous_day and balance < 0:
                # an overdraft fee on the first transaction of a day while overdrawn
                balance = round(balance - 15.0, 2)
                tid += 1
                tx_rows.append(
                    (f"T{tid:07d}", pid, f"ACC{k:04d}", f"{d} 00:05:00", -15.0, balance, "fee", "")
                )
            balance = round(balance + amount, 2)
            low = min(low, balance)
            negative += balance < 0
            tid += 1
            tx_rows.append(
                (
                    f"T{tid:07d}",
                    pid,
                    f"ACC{k:04d}",
                    f"{d} 12:00:00",
                    amount,
                    balance,
                    kind,
                    counterparty,
                )
            )
            previous_day = d
        min_balance[k], negative_days[k] = low, negative
    transactions = pd.DataFrame(tx_rows, columns=TRANSACTION_COLUMNS)
    transactions["transaction_time"] = pd.to_datetime(transactions["transaction_time"])
    transactions["counterparty_id"] = transactions["counterparty_id"].replace("", None)

    term = rng.choice([12, 24, 36, 48, 60], size=len(frame))
    idx = people.index.get_indexer(frame["person_id"])
    amount = np.round(salary[idx] * rng.uniform(1.0, 8.0, len(frame)), -2)
    instalment = np.round(amount * (1 + 0.01 * term) / term, 2)
    applications = pd.DataFrame(
        {
            "person_id": frame["person_id"],
            "observation_date": pd.to_datetime(frame["obs"]),
            "amount": amount,
            "term_months": term,
            "instalment": instalment,
            "product": rng.choice(["cash_loan", "consumer_loan", "car_loan"], size=len(frame)),
            "channel": rng.choice(["branch", "online", "mobile_app"], size=len(frame)),
        }
    )
    opened = people["min"].to_numpy("datetime64[D]") - (days_before + 200) * DAY
    update = people["min"].to_numpy("datetime64[D]") - rng.integers(30, 300, n) * DAY
    history = pd.DataFrame(
        {
            "person_id": np.concatenate([people.index, people.index]),
            "as_of_date": pd.to_datetime(np.concatenate([opened, update])),
            "education": rng.choice(["secondary", "vocational", "bachelor", "master"], 2 * n),
            "occupation": np.concatenate([np.where(salaried, "salaried", "self_employed")] * 2),
            "employment_start_date": pd.to_datetime(
                np.concatenate([opened - rng.integers(30, 3000, n) * DAY] * 2)
            ),
            "declared_income": np.concatenate([salary * 0.9, salary * 1.05]),
            "verified_income": np.concatenate(
                [np.full(n, np.nan), np.where(salaried, salary, np.nan)]
            ),
            "identity_verified": np.concatenate([np.zeros(n, bool), np.ones(n, bool)]),
            "profile_completeness": np.concatenate([np.full(n, 0.5), np.full(n, 0.9)]),
        }
    ).sort_values(["person_id", "as_of_date"], kind="stable", ignore_index=True)
    # latent risk per input row: overdraft, thin balance, irregular income, heavy instalment
    person_risk = (
        1.2 * (negative_days / max(days_before, 1))
        + 0.8 * (min_balance < 0)
        + 0.6 * ~salaried
        + 2.0 * (spend_ratio - 1.0)
    )
    risk = person_risk[idx] + 1.5 * instalment / salary[idx]
    return {
        "transactions": transactions,
        "applications": applications,
        "profile_history": history,
        "risk": pd.Series(risk, index=frame.index),
    }


def ledger_tables(n_loans: int = 400, seed: int = 3) -> dict[str, pd.DataFrame]:
    """The bank-ledger example: one loan per person, ~300 distinct dates over five years."""
    rng = np.random.default_rng(seed)
    ids = [f"L{i:04d}" for i in range(1, n_loans + 1)]
    day0 = np.datetime64("2019-01-01")
    date_pool = day0 + np.sort(rng.choice(5 * 365, size=600, replace=False)) * DAY
    dates = rng.choice(date_pool, size=n_loans)
    tables = accounts_for(ids, dates, seed=seed + 1, days_before=180, days_after=30)
    risk = tables.pop("risk").to_numpy()
    p_bad = 1 / (1 + np.exp(-(-2.6 + 2.2 * (risk - np.median(risk)))))
    outcomes = pd.DataFrame(
        {
            "person_id": ids,
            "observation_date": _dates(dates),
            "bad_loan": (rng.random(n_loans) < p_bad).astype(int).astype(str),
        }
    )
    profiles = pd.DataFrame(
        {
            "person_id": ids,
            "gender": rng.choice(["F", "M"], size=n_loans),
            "birth_year": rng.integers(1950, 2000, size=n_loans).astype(str),
            "registered_date": _dates(dates - rng.integers(400, 2500, n_loans) * DAY),
        }
    )
    return {
        "profiles": profiles,
        "outcomes": outcomes,
        "events": pd.DataFrame(columns=EVENT_COLUMNS),
        "contacts": pd.DataFrame(columns=CONTACT_COLUMNS),
        **{k: _as_text(v) for k, v in tables.items()},
    }


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Cells as the text a CSV holds: dates as YYYY-MM-DD, money with 2 decimals."""
    out = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            whole = (s == s.dt.normalize()).all()
            fmt = "%Y-%m-%d" if whole else "%Y-%m-%d %H:%M:%S"
            out[c] = s.dt.strftime(fmt).fillna("")
        elif pd.api.types.is_bool_dtype(s):
            out[c] = s.map({True: "true", False: "false"})
        elif pd.api.types.is_float_dtype(s):
            out[c] = pd.Series(_money(s.to_numpy()), index=s.index).where(s.notna(), "")
        else:
            out[c] = s.astype(object).where(s.notna(), "").astype(str)
    return pd.DataFrame(out)


def _write(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(df.columns))
        writer.writerows(df.astype(str).itertuples(index=False, name=None))


def main(out: Path = HERE) -> None:
    """Write ``card_panel/`` and ``bank_ledger/`` under ``out`` (default: this folder)."""
    for folder, tables in (("card_panel", card_panel()), ("bank_ledger", ledger_tables())):
        for name, df in tables.items():
            _write(out / folder / f"{name}.csv", df)


if __name__ == "__main__":
    main()
