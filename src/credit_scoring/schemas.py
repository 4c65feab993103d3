"""Data contracts, in one place: the input tables, their columns, types and rules.

The simulator writes these tables, ``ingest`` validates user files against them and
the feature code reads the validated (canonical-dtype) versions. docs/input-format.md
documents the same contract for people bringing their own data.

Four required tables (file stem = table name, ``.csv`` or ``.parquet``):

- ``profiles``: one row per person, facts as known at the person's observation date (with
  several observation dates per person, at the earliest; later changes belong in events
  or, dated, in ``profile_history``).
- ``outcomes``: one row per (person, observation date): the point in time a person is
  scored at, and the default label when it is known (its column name in the user's file
  comes from ``data.label``; inside the pipeline it is always :data:`LABEL`).
- ``events``: everything a person did, one row per event, long format.
- ``contacts``: the social graph, one row per directed connection.

Three optional tables (:data:`OPTIONAL_TABLES`; absent means empty):

- ``transactions``: deposit / current-account ledger, one row per transaction, signed
  amount and the running balance (negative when overdrawn).
- ``applications``: the loan applied for at an outcome row (amount, term, instalment,
  product, channel), one row per (person, observation date).
- ``profile_history``: dated profile facts, several rows per person; a row's features read
  the latest one strictly before its observation date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd


class Dimension(StrEnum):
    """The five score dimensions shown to users (Sesame-style five-sided chart)."""

    CREDIT_HISTORY = "credit_history"
    FULFILMENT_CAPACITY = "fulfilment_capacity"
    BEHAVIOUR_PREFERENCES = "behaviour_preferences"
    IDENTITY_TRAITS = "identity_traits"
    SOCIAL_CONNECTIONS = "social_connections"


#: The five dimensions in display order: the column order of every points matrix.
DIMENSIONS: tuple[str, ...] = tuple(d.value for d in Dimension)


class EventType(StrEnum):
    """Every event type the pipeline understands; anything else is rejected."""

    STATEMENT = "statement"  # monthly statement of a credit account: balance, limit, status
    REPAYMENT = "repayment"  # an instalment paid: amount, amount due, due date, days late
    PURCHASE = "purchase"  # a purchase: amount, category, receipt/return/review flags
    UTILITY_PAYMENT = "utility_payment"  # electricity/water/gas/internet bill paid
    PHONE_TOPUP = "phone_topup"  # prepaid phone top-up
    ADDRESS_CHANGE = "address_change"  # the person changed their address
    PROFILE_UPDATE = "profile_update"  # the person updated profile information


EVENT_TYPES: tuple[str, ...] = tuple(e.value for e in EventType)

# Closed vocabularies of categorical columns. Values outside them are rejected.
GENDERS: tuple[str, ...] = ("F", "M", "X")
EDUCATION_LEVELS: tuple[str, ...] = (
    "primary",
    "secondary",
    "vocational",
    "bachelor",
    "master",
    "doctorate",
)
OCCUPATIONS: tuple[str, ...] = (
    "salaried",
    "civil_servant",
    "self_employed",
    "gig_worker",
    "student",
    "retired",
    "unemployed",
    "other",
)
PURCHASE_CATEGORIES: tuple[str, ...] = (
    "groceries",
    "dining",
    "transport",
    "apparel",
    "electronics",
    "travel",
    "education",
    "health",
    "entertainment",
    "gaming",
    "luxury",
    "other",
)
UTILITY_CATEGORIES: tuple[str, ...] = ("electricity", "water", "gas", "internet", "other")
#: Kinds of current-account transactions (``transactions.kind``).
TRANSACTION_KINDS: tuple[str, ...] = (
    "salary",
    "income",
    "transfer",
    "card_payment",
    "cash",
    "direct_debit",
    "loan",
    "fee",
    "interest",
    "other",
)
#: Kinds that are income: salary, and other regular income (pension, benefits, rent received).
INCOME_KINDS: tuple[str, ...] = ("salary", "income")
#: Kinds that must be credits (amount > 0) and kinds that must be debits (amount < 0).
CREDIT_ONLY_KINDS: tuple[str, ...] = INCOME_KINDS
DEBIT_ONLY_KINDS: tuple[str, ...] = ("fee",)
#: Products of an application (``applications.product``).
PRODUCTS: tuple[str, ...] = (
    "cash_loan",
    "consumer_loan",
    "credit_card",
    "credit_line",
    "car_loan",
    "mortgage",
    "overdraft",
    "other",
)
#: Channels an application came through (``applications.channel``).
CHANNELS: tuple[str, ...] = ("branch", "online", "mobile_app", "phone", "agent", "partner", "other")

# Age bands used only for fairness measurement, never as model inputs.
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55+", 55, 200),
)


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    ``kind`` is one of ``str``, ``date``, ``datetime``, ``float``, ``int``, ``bool``.
    ``required`` columns must be present in the file; ``nullable=False`` columns must
    have a value in every row. ``min``/``max`` bound numeric values (inclusive) and
    ``allowed`` closes a categorical vocabulary. ``protected`` columns are kept for
    fairness measurement only and never become model inputs.
    """

    name: str
    kind: str
    description: str
    required: bool = True
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    protected: bool = False


@dataclass(frozen=True)
class Table:
    """An input table: its columns and the key that must be unique."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


PROFILES = Table(
    name="profiles",
    description="One row per person: profile facts as known at the observation date.",
    key=("person_id",),
    columns=(
        Column("person_id", "str", "Stable pseudonymous identifier of the person."),
        Column(
            "gender",
            "str",
            "Gender (F/M/X). Protected: fairness measurement only.",
            required=False,
            nullable=True,
            allowed=GENDERS,
            protected=True,
        ),
        Column(
            "birth_year",
            "int",
            "Year of birth. Protected: gives the age band for fairness measurement only.",
            required=False,
            nullable=True,
            min=1900,
            max=2015,
            protected=True,
        ),
        Column(
            "education",
            "str",
            "Highest education level.",
            required=False,
            nullable=True,
            allowed=EDUCATION_LEVELS,
        ),
        Column(
            "occupation",
            "str",
            "Occupation group.",
            required=False,
            nullable=True,
            allowed=OCCUPATIONS,
        ),
        Column(
            "employment_start_date",
            "date",
            "Start of the current employment (empty if not employed or unknown).",
            required=False,
            nullable=True,
        ),
        Column(
            "declared_income",
            "float",
            "Monthly income the person declared, CNY.",
            required=False,
            nullable=True,
            min=0,
            max=10_000_000,
        ),
        Column(
            "verified_income",
            "float",
            "Monthly income verified from documents or payroll, CNY (empty if unverified).",
            required=False,
            nullable=True,
            min=0,
            max=10_000_000,
        ),
        Column(
            "identity_verified",
            "bool",
            "Whether the person's identity was verified (real-name check).",
            required=False,
            nullable=True,
        ),
        Column(
            "profile_completeness",
            "float",
            "Share of profile fields filled in, 0 to 1.",
            required=False,
            nullable=True,
            min=0,
            max=1,
        ),
        Column(
            "registered_date",
            "date",
            "Date the person joined the platform.",
            required=False,
            nullable=True,
        ),
    ),
)

#: The internal label column: 1 if the person defaulted within the label's horizon after
#: the observation date. The user's column may have another name (``data.label.column``):
#: ingest reads it under that name and writes it as this one.
LABEL = "default_12m"
#: The key of a row of outcomes, features, predictions and decisions: a person at a date.
ROW_KEY: tuple[str, str] = ("person_id", "observation_date")
DATE = "observation_date"
#: The optional outcomes column holding the historical policy's decision (selection bias).
DECISION = "decision"
#: Its values; the grey_* ones were decided at random, so their outcomes are unbiased.
DECISIONS: tuple[str, ...] = ("approved", "declined", "grey_approved", "grey_declined")
#: The values whose people were granted credit (and so have an outcome).
APPROVED_DECISIONS: tuple[str, ...] = ("approved", "grey_approved")


OUTCOMES = Table(
    name="outcomes",
    description="One row per (person, observation date): when to score and, if known, the outcome.",
    key=ROW_KEY,
    columns=(
        Column("person_id", "str", "Person scored; must exist in profiles."),
        Column(
            "observation_date",
            "date",
            "Point in time of the score: only events strictly before it are used.",
        ),
        Column(
            LABEL,
            "int",
            "1 if 90+ days past due within 12 months after the observation date, else 0; "
            "empty when not yet known (people to score).",
            required=False,
            nullable=True,
            min=0,
            max=1,
        ),
        Column(
            DECISION,
            "str",
            "The historical credit decision at the observation date (optional): approved or "
            "declined by the policy, or grey_approved / grey_declined when the policy decided "
            "at random (a lender's test band). A declined row has no outcome: its label is "
            "empty, and it is a valid row (an applicant never seen to perform), not a reject.",
            required=False,
            nullable=True,
            allowed=DECISIONS,
        ),
    ),
)

EVENTS = Table(
    name="events",
    description="Behaviour events, one row each, long format; type-specific columns may be empty.",
    key=("event_id",),
    columns=(
        Column(
            "event_id",
            "str",
            "Unique identifier of the event. If the file has none, one is derived from the row.",
            required=False,
        ),
        Column("person_id", "str", "Person the event belongs to; must exist in profiles."),
        Column("event_time", "datetime", "When the event happened (date or timestamp)."),
        Column("event_type", "str", "One of the event types.", allowed=EVENT_TYPES),
        Column(
            "account_id",
            "str",
            "Credit account or product the event belongs to (statements and repayments).",
            required=False,
            nullable=True,
        ),
        Column(
            "amount",
            "float",
            "Money moved, CNY: paid (repayment, utility, top-up) or spent (purchase).",
            required=False,
            nullable=True,
            min=0,
            max=100_000_000,
        ),
        Column(
            "balance",
            "float",
            "Statement balance owed, CNY (statement); negative when the account is in credit "
            "(more paid in than owed), which counts as nothing owed.",
            required=False,
            nullable=True,
            min=-100_000_000,
            max=100_000_000,
        ),
        Column(
            "credit_limit",
            "float",
            "Credit limit of the account, CNY (statement).",
            required=False,
            nullable=True,
            min=0,
            max=100_000_000,
        ),
        Column(
            "amount_due",
            "float",
            "Instalment amount that was due, CNY (repayment).",
            required=False,
            nullable=True,
            min=0,
            max=100_000_000,
        ),
        Column(
            "due_date",
            "date",
            "Date the instalment was due (repayment).",
            required=False,
            nullable=True,
        ),
        Column(
            "days_past_due",
            "int",
            "Days late: payment date minus due date (repayment), or the account's "
            "delinquency status at the statement date (statement). 0 means on time.",
            required=False,
            nullable=True,
            min=0,
            max=3650,
        ),
        Column(
            "category",
            "str",
            "Purchase category (purchase) or utility kind (utility_payment).",
            required=False,
            nullable=True,
        ),
        Column(
            "receipt_confirmed",
            "bool",
            "The buyer confirmed receipt of the order (purchase).",
            required=False,
            nullable=True,
        ),
        Column(
            "returned",
            "bool",
            "The order was returned (purchase).",
            required=False,
            nullable=True,
        ),
        Column(
            "review_left",
            "bool",
            "The buyer left a review (purchase).",
            required=False,
            nullable=True,
        ),
    ),
)

CONTACTS = Table(
    name="contacts",
    description="Social connections, one row per directed connection person -> contact.",
    key=("person_id", "contact_id"),
    columns=(
        Column("person_id", "str", "Person who has the contact; must exist in profiles."),
        Column(
            "contact_id",
            "str",
            "The contact. May be someone outside profiles (then nothing is known of them).",
        ),
        Column(
            "since_date",
            "date",
            "Date the connection was made; connections on or after the observation date "
            "are ignored.",
        ),
    ),
)

TRANSACTIONS = Table(
    name="transactions",
    description="Deposit / current-account ledger, one row per transaction (optional table).",
    key=("transaction_id",),
    columns=(
        Column(
            "transaction_id",
            "str",
            "Unique identifier of the transaction. If the file has none, one is derived from "
            "the row.",
            required=False,
        ),
        Column("person_id", "str", "Account holder; must exist in profiles."),
        Column(
            "account_id",
            "str",
            "Current or deposit account the transaction is on (several per person allowed).",
            required=False,
            nullable=True,
        ),
        Column(
            "transaction_time",
            "datetime",
            "When the transaction was booked (date or timestamp).",
        ),
        Column(
            "amount",
            "float",
            "Money moved, CNY: positive for a credit (money in), negative for a debit (money out).",
            min=-100_000_000,
            max=100_000_000,
        ),
        Column(
            "balance",
            "float",
            "Account balance right after the transaction, CNY; negative when overdrawn.",
            required=False,
            nullable=True,
            min=-100_000_000,
            max=100_000_000,
        ),
        Column(
            "kind",
            "str",
            "What the transaction is; `salary` and `income` are income credits, `fee` a bank "
            "charge (empty: `other`).",
            required=False,
            nullable=True,
            allowed=TRANSACTION_KINDS,
        ),
        Column(
            "counterparty_id",
            "str",
            "The other party (employer, payee, sender), pseudonymous.",
            required=False,
            nullable=True,
        ),
    ),
)

APPLICATIONS = Table(
    name="applications",
    description="The loan applied for at an outcome row, one row per (person, observation "
    "date) (optional table).",
    key=ROW_KEY,
    columns=(
        Column("person_id", "str", "Applicant; the (person, date) must be a row of outcomes."),
        Column(
            "observation_date",
            "date",
            "Date of the application (its outcome row's observation date).",
        ),
        Column(
            "amount",
            "float",
            "Amount applied for, CNY.",
            min=0,
            max=100_000_000,
        ),
        Column(
            "term_months",
            "int",
            "Term of the loan in months.",
            required=False,
            nullable=True,
            min=1,
            max=600,
        ),
        Column(
            "instalment",
            "float",
            "Scheduled monthly instalment, CNY (empty: amount / term is used).",
            required=False,
            nullable=True,
            min=0,
            max=100_000_000,
        ),
        Column(
            "product",
            "str",
            "Product applied for.",
            required=False,
            nullable=True,
            allowed=PRODUCTS,
        ),
        Column(
            "channel",
            "str",
            "Channel the application came through.",
            required=False,
            nullable=True,
            allowed=CHANNELS,
        ),
    ),
)

#: Profile facts that may be dated (``profile_history``): all but the identifier, the
#: protected attributes and the registration date.
DATED_PROFILE_FACTS: tuple[str, ...] = (
    "education",
    "occupation",
    "employment_start_date",
    "declared_income",
    "verified_income",
    "identity_verified",
    "profile_completeness",
)

PROFILE_HISTORY = Table(
    name="profile_history",
    description="Dated profile facts, several rows per person (optional table).",
    key=("person_id", "as_of_date"),
    columns=(
        Column("person_id", "str", "Person; must exist in profiles."),
        Column(
            "as_of_date",
            "date",
            "Date the facts of this row were known from; a row of outcomes uses the latest "
            "one strictly before its observation date.",
        ),
        *(PROFILES.column(name) for name in DATED_PROFILE_FACTS),
    ),
)

#: The four tables every input folder has.
TABLES: dict[str, Table] = {t.name: t for t in (PROFILES, OUTCOMES, EVENTS, CONTACTS)}
#: Tables an input folder may have; a missing one is read as empty.
OPTIONAL_TABLES: dict[str, Table] = {
    t.name: t for t in (TRANSACTIONS, APPLICATIONS, PROFILE_HISTORY)
}
#: Every input table, required first.
ALL_TABLES: dict[str, Table] = {**TABLES, **OPTIONAL_TABLES}


def outcomes_table(label_column: str = LABEL) -> Table:
    """The outcomes table with its label column named as in the user's file.

    Ingest validates the user's file with this table (so messages name the user's
    column) and then renames the column to :data:`LABEL`.
    """
    if label_column == LABEL:
        return OUTCOMES
    if label_column in OUTCOMES.column_names:
        raise ValueError(f"label column {label_column!r} is another column of outcomes")
    label = OUTCOMES.column(LABEL)
    columns = tuple(
        Column(
            label_column,
            label.kind,
            label.description,
            label.required,
            label.nullable,
            label.min,
            label.max,
        )
        if c.name == LABEL
        else c
        for c in OUTCOMES.columns
    )
    return Table(OUTCOMES.name, OUTCOMES.description, columns, OUTCOMES.key)


def decision_counts(outcomes: pd.DataFrame) -> dict[str, dict[str, int]] | None:
    """Rows and labelled rows per historical decision (None when the column is absent or
    empty): declined applicants without an outcome are valid rows, counted here."""
    if DECISION not in outcomes.columns or not outcomes[DECISION].notna().any():
        return None
    decision = outcomes[DECISION].astype("string").fillna("unknown")
    labelled = outcomes[LABEL].notna() if LABEL in outcomes.columns else decision.isna()
    return {
        str(k): {"rows": len(g), "labelled": int(labelled[g.index].sum())}
        for k, g in decision.groupby(decision, sort=True)
    }


# Columns each event type must carry (beyond the always-required ones).
EVENT_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    EventType.STATEMENT: ("balance", "credit_limit"),
    EventType.REPAYMENT: ("amount", "days_past_due"),
    EventType.PURCHASE: ("amount",),
    EventType.UTILITY_PAYMENT: ("amount",),
    EventType.PHONE_TOPUP: ("amount",),
    EventType.ADDRESS_CHANGE: (),
    EventType.PROFILE_UPDATE: (),
}

# Allowed `category` values per event type (other types ignore the column).
EVENT_CATEGORIES: dict[str, tuple[str, ...]] = {
    EventType.PURCHASE: PURCHASE_CATEGORIES,
    EventType.UTILITY_PAYMENT: UTILITY_CATEGORIES,
}

# Canonical in-memory dtypes of validated tables (what features and the service read).
_KIND_DTYPES: dict[str, str] = {
    "str": "string",
    "date": "datetime64[ns]",
    "datetime": "datetime64[ns]",
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
}


def canonical_dtypes(table: Table) -> dict[str, str]:
    """pandas dtypes of a validated table, column by column."""
    return {c.name: _KIND_DTYPES[c.kind] for c in table.columns}


def empty_table(table: Table) -> pd.DataFrame:
    """An empty frame with the table's canonical columns and dtypes."""
    return pd.DataFrame({n: pd.Series(dtype=d) for n, d in canonical_dtypes(table).items()})


def conform(df: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Add missing optional columns (as nulls) and cast to the canonical dtypes.

    Used on data that is already known to be valid (the simulator's output, a
    single person's data in the service); ``ingest`` does the checked conversion.
    """
    out = {}
    for name, dtype in canonical_dtypes(table).items():
        if name in df.columns:
            out[name] = df[name].astype(dtype) if str(df[name].dtype) != dtype else df[name]
        else:
            out[name] = pd.Series(index=df.index, dtype=dtype)
    return pd.DataFrame(out, index=df.index)


@dataclass(frozen=True)
class BehaviourData:
    """The validated tables, the unit that features are computed from.

    The four required tables come first (positional); the optional ones default to empty.
    """

    profiles: pd.DataFrame
    outcomes: pd.DataFrame
    events: pd.DataFrame
    contacts: pd.DataFrame
    transactions: pd.DataFrame = field(default_factory=lambda: empty_table(TRANSACTIONS))
    applications: pd.DataFrame = field(default_factory=lambda: empty_table(APPLICATIONS))
    profile_history: pd.DataFrame = field(default_factory=lambda: empty_table(PROFILE_HISTORY))


def age_band(age_years: pd.Series) -> pd.Series:
    """Map ages in whole years to the fairness age bands (missing stays missing)."""
    labels = [b[0] for b in AGE_BANDS]
    edges = [b[1] for b in AGE_BANDS] + [AGE_BANDS[-1][2] + 1]
    return pd.cut(age_years, bins=edges, right=False, labels=labels).astype("string")
