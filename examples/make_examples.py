"""Write the example input folders: ``examples/tiny`` (valid) and ``examples/bad``.

``tiny`` is a small, valid dataset in the documented input format (docs/input-format.md):
8 people, 2 observation dates, about a hundred events of every type and a few contacts.
It ingests with zero rejects.

``bad`` is ``tiny`` plus, at the end of each file, one row per kind of bad row; each
ingests as a reject with the reason given beside it in ``BAD_ROWS`` below (the tests
check every one). Run ``python examples/make_examples.py`` after changing the contract.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROFILE_COLUMNS = [
    "person_id",
    "gender",
    "birth_year",
    "education",
    "occupation",
    "employment_start_date",
    "declared_income",
    "verified_income",
    "identity_verified",
    "profile_completeness",
    "registered_date",
]
# person_id,gender,birth_year,education,occupation,employment_start_date,
# declared_income,verified_income,identity_verified,profile_completeness,registered_date
PROFILES = [
    line.split(",")
    for line in """\
P001,F,1988,bachelor,salaried,2015-03-01,12000,11500,true,0.95,2016-05-10
P002,M,1995,vocational,gig_worker,,6000,,true,0.6,2019-08-21
P003,F,1979,master,civil_servant,2008-09-01,15000,15000,true,1,2015-01-02
P004,M,2001,secondary,student,,1500,,false,0.4,2021-02-14
P005,X,1990,bachelor,self_employed,2018-06-15,20000,9000,true,0.8,2017-11-30
P006,,1965,primary,retired,,3500,3400,yes,0.7,2018-04-04
P007,M,,doctorate,salaried,2020-01-06,30000,28000,1,0.9,2020-03-15
P008,F,1998,,unemployed,,,,no,0.2,2022-07-01""".splitlines()
]

OUTCOME_COLUMNS = ["person_id", "observation_date", "default_12m"]
DEFAULTS_2024 = {"P002": "1", "P004": "0", "P008": "1"}
DEFAULTS_2025 = {"P002": "1", "P008": ""}  # P008 not yet known: to be scored

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
    "category",
    "receipt_confirmed",
    "returned",
    "review_left",
]
CONTACT_COLUMNS = ["person_id", "contact_id", "since_date"]
CONTACTS = [
    ["P001", "P003", "2018-02-01"],
    ["P003", "P001", "2018-02-01"],
    ["P002", "P008", "2022-09-10"],
    ["P008", "P002", "2022-09-10"],
    ["P004", "P002", "2023-01-20"],
    ["P005", "P007", "2020-05-05"],
    ["P006", "P003", "2019-12-24"],
    ["P007", "X900", "2021-06-30"],  # a contact outside profiles is allowed
]

PURCHASE_CATEGORIES = ["groceries", "dining", "transport", "apparel", "electronics", "travel"]
UTILITY_CATEGORIES = ["electricity", "water", "gas", "internet"]


def _events() -> list[list[str]]:
    """About a hundred events, deterministic: statements and repayments on a few accounts,
    purchases, utility payments, top-ups, address changes and profile updates."""
    rng = random.Random(7)
    rows: list[dict[str, str]] = []
    months = [f"2024-{m:02d}" for m in range(1, 13)]
    late = {"P002": [0, 0, 12, 35, 64, 95], "P008": [0, 31, 61, 92, 0, 0]}
    for pid, account in (("P001", "A001"), ("P002", "A002"), ("P008", "A008")):
        for i, month in enumerate(months[::2]):
            dpd = late.get(pid, [0] * 6)[i]
            rows.append(
                {
                    "person_id": pid,
                    "event_time": f"{month}-05",
                    "event_type": "statement",
                    "account_id": account,
                    "balance": f"{800 + 150 * i}.00",
                    "credit_limit": "5000",
                    "days_past_due": str(dpd),
                }
            )
            due = dt.date.fromisoformat(f"{month}-20")
            paid = due + dt.timedelta(days=dpd)  # paid dpd days after the due date
            rows.append(
                {
                    "person_id": pid,
                    "event_time": f"{paid.isoformat()} 10:15:00",
                    "event_type": "repayment",
                    "account_id": account,
                    "amount": f"{300 + 20 * i}.00",
                    "amount_due": f"{300 + 20 * i}.00",
                    "due_date": due.isoformat(),
                    "days_past_due": str(dpd),
                }
            )
    for n in range(40):
        pid = f"P00{1 + n % 8}"
        day = 1 + (n * 7) % 28
        rows.append(
            {
                "person_id": pid,
                "event_time": f"{months[n % 12]}-{day:02d} {8 + n % 12:02d}:{(n * 13) % 60:02d}:00",
                "event_type": "purchase",
                "amount": f"{rng.randint(10, 900)}.{rng.randint(0, 99):02d}",
                "category": PURCHASE_CATEGORIES[n % len(PURCHASE_CATEGORIES)],
                "receipt_confirmed": "true" if n % 5 else "false",
                "returned": "true" if n % 11 == 0 else "false",
                "review_left": "true" if n % 3 == 0 else "false",
            }
        )
    for n in range(16):
        pid = f"P00{1 + n % 8}"
        rows.append(
            {
                "person_id": pid,
                "event_time": f"{months[(3 * n) % 12]}-15",
                "event_type": "utility_payment",
                "amount": f"{rng.randint(40, 300)}.00",
                "category": UTILITY_CATEGORIES[n % len(UTILITY_CATEGORIES)],
            }
        )
    for n in range(16):
        pid = f"P00{1 + (n * 3) % 8}"
        rows.append(
            {
                "person_id": pid,
                "event_time": f"{months[(5 * n) % 12]}-03",
                "event_type": "phone_topup",
                "amount": ["30", "50", "100"][n % 3],
            }
        )
    for pid, month in (("P002", "2024-03"), ("P008", "2024-06"), ("P008", "2024-11")):
        rows.append({"person_id": pid, "event_time": f"{month}-09", "event_type": "address_change"})
    for pid, month in (("P001", "2024-02"), ("P003", "2024-08"), ("P005", "2024-10")):
        rows.append({"person_id": pid, "event_time": f"{month}-12", "event_type": "profile_update"})
    rows.sort(key=lambda r: (r["event_time"], r["person_id"], r["event_type"]))
    out = []
    for i, row in enumerate(rows, start=1):
        row["event_id"] = f"E{i:03d}"
        out.append([row.get(c, "") for c in EVENT_COLUMNS])
    return out


def _outcomes() -> list[list[str]]:
    rows = []
    for pid, *_ in PROFILES:
        rows.append([pid, "2024-07-01", DEFAULTS_2024.get(pid, "0")])
        rows.append([pid, "2025-01-01", DEFAULTS_2025.get(pid, "0")])
    return rows


def _profile(person_id: str, **fields: str) -> list[str]:
    row = {"person_id": person_id, **fields}
    return [row.get(c, "") for c in PROFILE_COLUMNS]


def _event(event_id: str, person: str, time: str, etype: str, **fields: str) -> list[str]:
    row = {"event_id": event_id, "person_id": person, "event_time": time, "event_type": etype}
    row.update(fields)
    return [row.get(c, "") for c in EVENT_COLUMNS]


# Each bad row with the reject reason it must get.
BAD_ROWS: dict[str, list[tuple[list[str], str]]] = {
    "profiles": [
        (_profile("P001", gender="F", birth_year="1988"), "duplicate person_id 'P001'"),
        (_profile("", gender="F", birth_year="1990"), "missing person_id"),
        (_profile("P101", gender="Q"), "gender 'Q' not in vocabulary"),
        (_profile("P102", birth_year="nineteen"), "unparseable birth_year 'nineteen'"),
        (_profile("P103", birth_year="1850"), "birth_year 1850 below min 1900"),
        (_profile("P104", education="phd"), "education 'phd' not in vocabulary"),
        (
            _profile("P105", employment_start_date="2020-02-30"),
            "unparseable employment_start_date '2020-02-30'",
        ),
        (_profile("P106", declared_income="-100"), "negative declared_income -100.0"),
        (_profile("P107", identity_verified="maybe"), "unparseable identity_verified 'maybe'"),
        (_profile("P108", profile_completeness="1.5"), "profile_completeness 1.5 above max 1"),
    ],
    "outcomes": [
        (["P999", "2024-07-01", "0"], "unknown person_id 'P999'"),
        (
            ["P001", "2024-07-01", "0"],
            "duplicate (person_id, observation_date) ('P001', '2024-07-01')",
        ),
        (["P003", "", "0"], "missing observation_date"),
        (["P003", "2024-13-45", "0"], "unparseable observation_date '2024-13-45'"),
        (["P004", "2023-07-01", "2"], "default_12m 2 above max 1"),
        (["P005", "2023-07-01", "0.5"], "unparseable default_12m '0.5'"),
    ],
    "events": [
        (_event("B01", "P001", "2024-05-01", "loan_taken"), "unknown event_type 'loan_taken'"),
        (_event("B02", "P001", "2024-05-01", "purchase", amount="-5"), "negative amount -5.0"),
        (
            _event("B03", "P001", "2024-13-45", "phone_topup", amount="50"),
            "unparseable event_time '2024-13-45'",
        ),
        (
            _event("B04", "P999", "2024-05-01", "phone_topup", amount="50"),
            "unknown person_id 'P999'",
        ),
        (
            _event("E017", "P001", "2024-05-01", "phone_topup", amount="50"),
            "duplicate event_id 'E017'",
        ),
        (_event("", "P001", "2024-05-01", "phone_topup", amount="50"), "missing event_id"),
        (_event("B05", "", "2024-05-01", "phone_topup", amount="50"), "missing person_id"),
        (_event("B06", "P001", "", "phone_topup", amount="50"), "missing event_time"),
        (_event("B07", "P001", "2024-05-01", ""), "missing event_type"),
        (
            _event(
                "B08",
                "P001",
                "2024-05-05",
                "statement",
                account_id="A001",
                credit_limit="5000",
                days_past_due="0",
            ),
            "missing balance for statement",
        ),
        (
            _event("B09", "P001", "2024-05-20", "repayment", account_id="A001", amount="100"),
            "missing days_past_due for repayment",
        ),
        (
            _event("B10", "P001", "2024-05-01", "purchase", category="dining"),
            "missing amount for purchase",
        ),
        (
            _event("B11", "P002", "2024-05-20", "repayment", amount="100", days_past_due="5000"),
            "days_past_due 5000 above max 3650",
        ),
        (
            _event("B12", "P001", "2024-05-01", "purchase", amount="10", category="electricity"),
            "category 'electricity' not allowed for purchase",
        ),
        (_event("B13", "P001", "2024-05-01", "purchase", amount="abc"), "unparseable amount 'abc'"),
        (
            _event("B14", "P001", "2024-05-01", "purchase", amount="10", returned="perhaps"),
            "unparseable returned 'perhaps'",
        ),
        (
            _event(
                "B15",
                "P001",
                "2024-05-20",
                "repayment",
                amount="10",
                days_past_due="0",
                due_date="2024-05-20 10:30:00",
            ),
            "unparseable due_date '2024-05-20 10:30:00'",
        ),
        (
            _event("B16", "P002", "2024-05-20", "repayment", amount="10", days_past_due="2.5"),
            "unparseable days_past_due '2.5'",
        ),
    ],
    "contacts": [
        (["P001", "P001", "2020-01-01"], "self-loop: contact_id 'P001' is the person"),
        (["P999", "P001", "2020-01-01"], "unknown person_id 'P999'"),
        (["P001", "P003", "2019-01-01"], "duplicate (person_id, contact_id) ('P001', 'P003')"),
        (["P002", "P003", ""], "missing since_date"),
        (["P002", "P004", "yesterday"], "unparseable since_date 'yesterday'"),
    ],
}


def _write(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def main(out: Path = HERE) -> None:
    """Write ``tiny/`` and ``bad/`` under ``out`` (default: this folder)."""
    tiny = {
        "profiles": (PROFILE_COLUMNS, PROFILES),
        "outcomes": (OUTCOME_COLUMNS, _outcomes()),
        "events": (EVENT_COLUMNS, _events()),
        "contacts": (CONTACT_COLUMNS, CONTACTS),
    }
    for name, (columns, rows) in tiny.items():
        _write(out / "tiny" / f"{name}.csv", columns, rows)
        bad_rows = [row for row, _ in BAD_ROWS[name]]
        _write(out / "bad" / f"{name}.csv", columns, rows + bad_rows)


if __name__ == "__main__":
    main()
