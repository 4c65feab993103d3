"""Write ``examples/byof``: a synthetic "bring your own features" folder (seeded).

A lender's own per-person table (docs/input-format.md, "Bring your own features"):
``features.csv`` with one row per person and observation date (6 quarterly dates, 800
people each, so the out-of-time split has cohorts to work with), the label
``default_12m``, eight features covering the five dimensions and two protected
attributes (``gender``, ``age``), plus ``feature_metadata.yaml`` declaring each column.
The label follows a known logistic model of the features (about 8% defaults), so a model
trained on it has something real to find. A few cells are left empty (missing values
are allowed). Run ``python examples/make_byof_example.py`` to rewrite the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE / "byof"
DATES = ("2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01", "2024-01-01", "2024-04-01")
PER_DATE = 800
EMPLOYMENT = ["unemployed", "self-employed", "salaried"]

METADATA = [
    {
        "feature": "n_late_12m",
        "dimension": "credit_history",
        "description": "Payments 30 or more days late in the last 12 months",
        "risk_direction": 1,
        "actionable": True,
        "unit": "count",
        "min": 0,
        "integer": True,
    },
    {
        "feature": "utilisation",
        "dimension": "credit_history",
        "description": "Share of credit limits in use",
        "risk_direction": 1,
        "actionable": True,
        "unit": "share",
        "min": 0,
        "max": 1,
    },
    {
        "feature": "verified_income",
        "dimension": "fulfilment_capacity",
        "description": "Verified monthly income",
        "risk_direction": -1,
        "actionable": False,
        "unit": "CNY",
        "min": 0,
    },
    {
        "feature": "debt_ratio",
        "dimension": "fulfilment_capacity",
        "description": "Monthly debt payments over monthly income",
        "risk_direction": 1,
        "actionable": True,
        "unit": "ratio",
        "min": 0,
    },
    {
        "feature": "bills_on_time_share",
        "dimension": "behaviour_preferences",
        "description": "Share of utility bills paid on time",
        "risk_direction": -1,
        "actionable": True,
        "unit": "share",
        "min": 0,
        "max": 1,
    },
    {
        "feature": "years_at_address",
        "dimension": "identity_traits",
        "description": "Years at the current address",
        "risk_direction": -1,
        "actionable": False,
        "unit": "years",
        "min": 0,
    },
    {
        "feature": "employment",
        "dimension": "identity_traits",
        "description": "Employment",
        "risk_direction": -1,
        "actionable": False,
        "levels": EMPLOYMENT,
    },
    {
        "feature": "contacts_in_default",
        "dimension": "social_connections",
        "description": "Guarantors or co-borrowers in default",
        "risk_direction": 1,
        "actionable": False,
        "unit": "count",
        "min": 0,
        "integer": True,
    },
    {"feature": "gender", "description": "Gender (F/M)", "protected": True},
    {"feature": "age", "description": "Age in years", "protected": True},
]


def make(seed: int = 7) -> pd.DataFrame:
    """The feature table: features drawn per person, the label from a logistic model."""
    rng = np.random.default_rng(seed)
    n = PER_DATE * len(DATES)
    late = rng.poisson(0.4, n)
    util = rng.beta(2, 3, n)
    income = np.round(rng.lognormal(8.6, 0.5, n), -1)
    debt = np.round(rng.gamma(2.0, 0.15, n), 3)
    bills = np.round(rng.beta(6, 1.5, n), 3)
    years = np.round(rng.exponential(4.0, n), 1)
    employment = rng.choice(3, n, p=[0.08, 0.22, 0.70])
    contacts = rng.poisson(0.15, n)
    logit = (
        -3.3
        + 0.65 * late
        + 1.6 * (util - 0.4)
        - 0.6 * (np.log(income) - 8.6)
        + 1.2 * (debt - 0.3)
        - 2.0 * (bills - 0.8)
        - 0.05 * years
        - 0.35 * (employment - 2)
        + 0.5 * contacts
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    table = pd.DataFrame(
        {
            "person_id": [f"C{i:05d}" for i in range(n)],
            "observation_date": np.repeat(DATES, PER_DATE),
            "default_12m": label,
            "n_late_12m": late,
            "utilisation": np.round(util, 3),
            "verified_income": income,
            "debt_ratio": debt,
            "bills_on_time_share": bills,
            "years_at_address": years,
            "employment": employment,
            "contacts_in_default": contacts,
            "gender": rng.choice(["F", "M"], n),
            "age": rng.integers(20, 70, n),
        }
    )
    table = table.astype({"verified_income": "float64", "years_at_address": "float64"})
    table.loc[rng.random(n) < 0.05, "verified_income"] = np.nan  # not verified
    table.loc[rng.random(n) < 0.03, "years_at_address"] = np.nan  # unknown
    return table


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    make().to_csv(OUT / "features.csv", index=False)
    (OUT / "feature_metadata.yaml").write_text(
        "# Bring your own features: what each column of features.csv means\n"
        "# (docs/input-format.md). Written by examples/make_byof_example.py.\n"
        + yaml.safe_dump({"features": METADATA}, sort_keys=False, allow_unicode=True)
    )


if __name__ == "__main__":
    main()
