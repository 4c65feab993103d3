"""The online scoring contract: typed requests and responses, and the one scorer behind them.

Everything the BentoML service (:mod:`credit_scoring.serving.service`) does lives here, so the
service stays a thin shell and the same code can be tested in-process:

- request models (pydantic, ``extra="forbid"``, no NaN/inf, bounded values) with a
  description and a working example on every field; the feature model is generated from
  the feature registry (:data:`credit_scoring.features.registry.FEATURES`): every feature
  is an optional float with the registry's description, range and example; the raw-event
  models take their bounds from the input contract (:mod:`credit_scoring.schemas`);
- :class:`~credit_scoring.serving.scorer.Scorer` (in ``serving/scorer.py``): a
  :class:`~credit_scoring.decision.bundle.CreditModel` plus what the service
  reports about it (registry name, version, alias, test metrics). One person's raw
  behaviour is turned into features by the pipeline's own :func:`compute_features` on a
  one-person :class:`~credit_scoring.schemas.BehaviourData` built with
  :func:`~credit_scoring.schemas.conform`, so online and batch scoring cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_serializer,
    model_validator,
)

from credit_scoring import schemas
from credit_scoring.features.registry import EXAMPLE_FEATURES, FEATURES, SEVERE_DPD, FeatureSpec

BENTO_MODEL_NAME = "credit-scoring"
SERVE_INFO_FILE = "serve_info.json"
DEFAULT_MAX_BATCH = 1000
# Caps on one person's raw behaviour (/score_events), sized from what a real person has,
# not from what a machine can send. The features read at most 365 days back; callers send
# up to two years. 10,000 events is ~14 a day for two years (a heavy shopper with three
# credit accounts has ~3,000 a year: 36 statements, 36 repayments, 60 utility bills and a
# few thousand purchases). 1,000 contacts is above the Dunbar-scale social circle (~150)
# and a large phone book (~500); 120 late repayments per contact is one per month on five
# accounts for two years; 5,000 late repayments across all contacts. A request at every
# cap is about 2.5 MB of JSON, inside serve.max_body_bytes.
MAX_EVENTS = 10_000
MAX_CONTACTS = 1_000
MAX_LATE_PER_CONTACT = 120
MAX_LATE_REPAYMENTS = 5_000
#: The API's cap on a feature's magnitude where the registry's range is unbounded: no
#: feature is anywhere near it, so larger values are input errors.
_MAX_VALUE = 1e10


class _Strict(BaseModel):
    """Strict types: a number is a JSON number, a flag is true/false (no "5" or true read
    as a number, no 1 read as a flag); dates are ISO strings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)


#: A request the service's guard (serving/middleware.py) has already validated in a worker
#: thread; BentoML's validation of the same body, on the event loop, then reuses it
#: instead of validating 10,000 events a second time where health checks wait.
PREVALIDATED: ContextVar[BaseModel | None] = ContextVar("prevalidated", default=None)


class _Request(_Strict):
    """A route's request body."""

    @model_validator(mode="wrap")
    @classmethod
    def _reuse_prevalidated(cls, data: Any, handler: Any) -> Any:
        done = PREVALIDATED.get()
        if done is not None and issubclass(cls, type(done)):
            PREVALIDATED.set(None)
            return done
        return handler(data)


class BatchTooLargeError(ValueError):
    """A batch call carries more people than the service accepts."""


# --------------------------------------------------------------------------- features


def feature_bounds(spec: FeatureSpec) -> dict[str, float]:
    """``ge``/``le`` of a feature in the request model: its registry range, with an
    unbounded end capped at ``_MAX_VALUE``."""
    r = spec.value_range
    return {"ge": float(max(r.low, -_MAX_VALUE)), "le": float(min(r.high, _MAX_VALUE))}


def _features_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for spec in FEATURES:
        unit = f" ({spec.unit})" if spec.unit else ""
        fields[spec.name] = (
            float | None,
            Field(
                None,
                description=f"[{spec.dimension.value}] {spec.description}{unit}. "
                "Omit or null when unknown (treated as missing, as in training).",
                examples=[float(spec.example)],
                **feature_bounds(spec),
            ),
        )
    return create_model(
        "Features",
        __config__=ConfigDict(
            extra="forbid",
            allow_inf_nan=False,
            frozen=True,
            strict=True,
            json_schema_extra={"example": EXAMPLE_FEATURES},
        ),
        __doc__="One person's model features (all optional; missing = unknown).",
        **fields,
    )


Features = _features_model()


class ScoreRequest(_Request):
    """One person's features."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"features": EXAMPLE_FEATURES, "with_reasons": True}}
    )

    features: Features = Field(  # type: ignore[valid-type]
        description="The person's feature values; unknown ones may be left out.",
        examples=[EXAMPLE_FEATURES],
    )
    with_reasons: bool = Field(
        True,
        description="Add adverse-action reasons and dimension points (about 50x the cost).",
        examples=[True],
    )


class BatchRequest(_Request):
    """Several people's features, scored in one call."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"people": [EXAMPLE_FEATURES, {"n_late_365d": 6.0}], "with_reasons": False}
        }
    )

    people: list[Features] = Field(  # type: ignore[valid-type]
        min_length=1,
        description="One feature set per person, at most `serve.max_batch` (params.yaml) "
        "people; decisions come back in the same order.",
        examples=[[EXAMPLE_FEATURES, {"n_late_365d": 6.0}]],
    )
    with_reasons: bool = Field(
        False, description="Add reasons and dimension points for everyone.", examples=[False]
    )


class AdviceRequest(_Request):
    """One person's features, and how much advice to give."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"features": EXAMPLE_FEATURES, "max_actions": 3}}
    )

    features: Features = Field(  # type: ignore[valid-type]
        description="The person's feature values; unknown ones may be left out.",
        examples=[EXAMPLE_FEATURES],
    )
    max_actions: int = Field(
        3, ge=1, le=10, description="Most actions advised (largest gain first).", examples=[3]
    )
    min_gain_points: int = Field(
        1, ge=1, le=600, description="Smallest score gain worth advising.", examples=[1]
    )
    with_reasons: bool = Field(
        False, description="Add reasons and dimension points to today's decision."
    )


# --------------------------------------------------------------------------- any model's features


def catalogue_features_model(specs: Sequence[FeatureSpec]) -> type[BaseModel]:
    """The request model of one served bundle's own features (its catalogue: registry
    features or features the lender brought): each an optional float within the
    feature's range (whole numbers when it is integer), unknown names refused."""
    fields: dict[str, Any] = {}
    for spec in specs:
        extra = {"multiple_of": 1.0} if spec.value_range.integer else {}
        fields[spec.name] = (
            float | None,
            Field(None, description=spec.description, **feature_bounds(spec), **extra),
        )
    return create_model(
        "ModelFeatures",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True),
        **fields,
    )


class FeaturesRequest(_Request):
    """One person's values of the served model's own features, by name (``/model`` lists
    them): for models of features the lender brought (``data.mode: features``), and any
    other. Checked against the model's catalogue when the request is scored: an unknown
    name or a value outside the feature's range is a 400 naming the field."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "features": {"n_late_90d": 1, "utilisation_latest": 0.42},
                "with_reasons": True,
            }
        }
    )

    features: dict[Annotated[str, Field(min_length=1, max_length=128)], float | None] = Field(
        max_length=10_000,
        description="Feature name -> value (null or left out = missing, as in training).",
        examples=[{"n_late_90d": 1, "utilisation_latest": 0.42}],
    )
    with_reasons: bool = Field(
        True, description="Add adverse-action reasons and dimension points.", examples=[True]
    )


# --------------------------------------------------------------------------- raw events


def column_bounds(table: schemas.Table, name: str) -> dict[str, float]:
    """``ge``/``le`` of a field: the bounds of its column in the input contract."""
    col = table.column(name)
    return {k: v for k, v in (("ge", col.min), ("le", col.max)) if v is not None}


_PROFILE = functools.partial(column_bounds, schemas.PROFILES)
_EVENT = functools.partial(column_bounds, schemas.EVENTS)
Id = Annotated[str, Field(min_length=1, max_length=128)]
EARLIEST = dt.datetime(1900, 1, 1)
LATEST = dt.datetime(2200, 1, 1)


def utc_naive(t: dt.datetime) -> dt.datetime:
    """A timestamp in UTC without timezone (naive ones are taken as they are)."""
    if t.tzinfo is not None:
        try:
            t = t.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"{t.isoformat()} is out of range") from None
    return t


#: Years 1901-2199: any time zone keeps a timestamp within [EARLIEST, LATEST).
_YEAR = r"(19(0[1-9]|[1-9][0-9])|20[0-9][0-9]|21[0-9][0-9])"
_DAY = _YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATE_PATTERN = rf"^{_DAY}$"
TIMESTAMP_PATTERN = (
    rf"^{_DAY}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{{1,6}})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)


def _matching(pattern: str) -> Any:
    """A before-validator: a string matching ``pattern`` (as the OpenAPI document says),
    or a date/datetime from Python callers; numbers (Unix times) and flags are refused."""
    compiled = re.compile(pattern)

    def check(v: Any) -> Any:
        if isinstance(v, dt.date):
            return v
        if isinstance(v, str) and compiled.match(v):
            return v
        raise ValueError(f"must be a string matching {pattern}")

    return check


def _check_datetime(t: dt.datetime) -> dt.datetime:
    t = utc_naive(t)
    if not EARLIEST <= t < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return t


def _check_date(d: dt.date) -> dt.date:
    if not EARLIEST.date() <= d < LATEST.date():
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return d


#: Strict about the string (a date between 1901 and 2199), lax only in parsing it.
Date = Annotated[
    dt.date,
    Field(strict=False),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
    BeforeValidator(_matching(DATE_PATTERN)),
    AfterValidator(_check_date),
]
#: An ISO date or timestamp (a date alone is midnight; with a zone it is taken in UTC).
Timestamp = Annotated[
    dt.datetime,
    Field(strict=False),
    WithJsonSchema({"type": "string", "pattern": TIMESTAMP_PATTERN}),
    BeforeValidator(_matching(TIMESTAMP_PATTERN)),
    AfterValidator(_check_datetime),
]


class ProfileIn(_Strict):
    """Profile facts as known at the observation date (all optional). Protected attributes
    (gender, birth year) are not model inputs and are not accepted."""

    education: Literal[schemas.EDUCATION_LEVELS] | None = Field(  # type: ignore[valid-type]
        None, description="Highest education level.", examples=["bachelor"]
    )
    occupation: Literal[schemas.OCCUPATIONS] | None = Field(  # type: ignore[valid-type]
        None, description="Occupation group.", examples=["salaried"]
    )
    employment_start_date: Date | None = Field(
        None, description="Start of the current employment.", examples=["2019-03-01"]
    )
    declared_income: float | None = Field(
        None,
        **_PROFILE("declared_income"),
        description="Declared monthly income, CNY.",
        examples=[8000.0],
    )
    verified_income: float | None = Field(
        None,
        **_PROFILE("verified_income"),
        description="Verified monthly income, CNY.",
        examples=[7500.0],
    )
    identity_verified: bool | None = Field(
        None, description="Real-name identity check passed.", examples=[True]
    )
    profile_completeness: float | None = Field(
        None,
        **_PROFILE("profile_completeness"),
        description="Share of profile fields filled in.",
        examples=[0.8],
    )
    registered_date: Date | None = Field(
        None, description="Date the person joined the platform.", examples=["2020-06-15"]
    )


class EventIn(_Strict):
    """One behaviour event (the `events` table of docs/input-format.md, without person_id)."""

    event_time: Timestamp = Field(
        description="When it happened (ISO date or timestamp; with a timezone it is taken "
        "in UTC). Only events strictly before the observation date count.",
        examples=["2024-11-05T10:00:00"],
    )
    event_type: Literal[schemas.EVENT_TYPES] = Field(  # type: ignore[valid-type]
        description="Event type.", examples=["repayment"]
    )
    event_id: Id | None = Field(None, description="Unique id (derived if absent).")
    account_id: Id | None = Field(
        None, description="Credit account (statements, repayments).", examples=["A1"]
    )
    amount: float | None = Field(
        None, **_EVENT("amount"), description="Money paid or spent, CNY.", examples=[500.0]
    )
    balance: float | None = Field(None, **_EVENT("balance"), description="Statement balance, CNY.")
    credit_limit: float | None = Field(
        None, **_EVENT("credit_limit"), description="Account credit limit, CNY."
    )
    amount_due: float | None = Field(
        None,
        **_EVENT("amount_due"),
        description="Instalment due, CNY (repayment).",
        examples=[500.0],
    )
    due_date: Date | None = Field(None, description="Due date (repayment).")
    days_past_due: int | None = Field(
        None,
        **_EVENT("days_past_due"),
        description="Days late (repayment) or delinquency (statement).",
        examples=[0],
    )
    category: str | None = Field(
        None, max_length=64, description="Purchase category or utility kind.", examples=[None]
    )
    receipt_confirmed: bool | None = Field(None, description="Receipt confirmed (purchase).")
    returned: bool | None = Field(None, description="Order returned (purchase).")
    review_left: bool | None = Field(None, description="Review left (purchase).")

    @model_validator(mode="after")
    def _type_specific(self) -> EventIn:
        need = schemas.EVENT_REQUIRED_FIELDS.get(self.event_type, ())
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.event_type} event needs {', '.join(missing)}")
        allowed = schemas.EVENT_CATEGORIES.get(self.event_type)
        if allowed is not None and self.category is not None and self.category not in allowed:
            raise ValueError(
                f"category {self.category!r} is not one of {', '.join(allowed)} "
                f"for a {self.event_type} event"
            )
        return self


class LateRepaymentIn(_Strict):
    __doc__ = f"A contact's repayment made late (only those {SEVERE_DPD}+ days late count)."

    event_time: Timestamp = Field(description="When it was repaid.", examples=["2024-09-01"])
    days_past_due: int = Field(**_EVENT("days_past_due"), description="Days late.", examples=[45])


class ContactIn(_Strict):
    """One of the person's contacts, and what is known of them."""

    contact_id: Id = Field(description="The contact's identifier.", examples=["C1"])
    since_date: Date = Field(
        description="When the connection was made (ignored if not before the observation date).",
        examples=["2022-01-10"],
    )
    known: bool | None = Field(
        None,
        description="Whether the platform knows this contact (has their profile). Default: "
        "known when identity_verified or late_repayments is given.",
        examples=[True],
    )
    identity_verified: bool | None = Field(
        None, description="The contact's identity is verified.", examples=[True]
    )
    late_repayments: list[LateRepaymentIn] | None = Field(
        None,
        max_length=MAX_LATE_PER_CONTACT,
        description="The contact's late repayments, if known (an empty list: none; "
        f"at most {MAX_LATE_PER_CONTACT} per contact, {MAX_LATE_REPAYMENTS} in all).",
        examples=[[]],
    )

    @property
    def is_known(self) -> bool:
        if self.known is not None:
            return self.known
        return self.identity_verified is not None or self.late_repayments is not None


_EVENTS_EXAMPLE: dict[str, Any] = {
    "observation_date": "2025-01-01",
    "profile": {
        "education": "bachelor",
        "occupation": "salaried",
        "employment_start_date": "2019-03-01",
        "declared_income": 8000.0,
        "verified_income": 7500.0,
        "identity_verified": True,
        "profile_completeness": 0.8,
        "registered_date": "2020-06-15",
    },
    "events": [
        {
            "event_time": "2024-11-28T09:00:00",
            "event_type": "statement",
            "account_id": "A1",
            "balance": 1200.0,
            "credit_limit": 5000.0,
            "days_past_due": 0,
        },
        {
            "event_time": "2024-12-10T09:00:00",
            "event_type": "repayment",
            "account_id": "A1",
            "amount": 1200.0,
            "amount_due": 1200.0,
            "due_date": "2024-12-10",
            "days_past_due": 0,
        },
        {
            "event_time": "2024-12-12T18:30:00",
            "event_type": "purchase",
            "amount": 89.5,
            "category": "groceries",
            "receipt_confirmed": True,
            "returned": False,
            "review_left": True,
        },
        {
            "event_time": "2024-12-20T08:00:00",
            "event_type": "utility_payment",
            "amount": 120.0,
            "category": "electricity",
        },
    ],
    "contacts": [
        {
            "contact_id": "C1",
            "since_date": "2022-01-10",
            "identity_verified": True,
            "late_repayments": [],
        },
        {
            "contact_id": "C2",
            "since_date": "2023-05-02",
            "identity_verified": False,
            "late_repayments": [{"event_time": "2024-09-01", "days_past_due": 45}],
        },
    ],
    "with_reasons": True,
}


class EventsRequest(_Request):
    """One person's profile and raw behaviour as of an observation date."""

    model_config = ConfigDict(json_schema_extra={"example": _EVENTS_EXAMPLE})

    observation_date: Date = Field(
        description="The point in time of the score: only earlier events count.",
        examples=["2025-01-01"],
    )
    profile: ProfileIn = Field(
        default_factory=ProfileIn,
        description="Profile facts.",
        examples=[_EVENTS_EXAMPLE["profile"]],
    )
    events: list[EventIn] = Field(
        default_factory=list,
        max_length=MAX_EVENTS,
        description=f"The person's events (any order; at most {MAX_EVENTS}).",
        examples=[_EVENTS_EXAMPLE["events"]],
    )
    contacts: list[ContactIn] = Field(
        default_factory=list,
        max_length=MAX_CONTACTS,
        description=f"The person's contacts (distinct contact_id; at most {MAX_CONTACTS}).",
        examples=[_EVENTS_EXAMPLE["contacts"]],
    )
    with_reasons: bool = Field(True, description="Add reasons and dimension points.")

    @model_validator(mode="after")
    def _unique_ids(self) -> EventsRequest:
        ids = [c.contact_id for c in self.contacts]
        dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
        if dupes:
            raise ValueError(f"contacts: contact_id must be unique; repeated {dupes[:5]}")
        ev = [e.event_id for e in self.events if e.event_id is not None]
        if len(set(ev)) < len(ev):
            raise ValueError("events: event_id must be unique")
        late = sum(len(c.late_repayments or ()) for c in self.contacts)
        if late > MAX_LATE_REPAYMENTS:
            raise ValueError(
                f"contacts: {late} late repayments in all; at most {MAX_LATE_REPAYMENTS}"
            )
        for name in ("employment_start_date", "registered_date"):
            day = getattr(self.profile, name)
            if day is not None and day > self.observation_date:
                raise ValueError(
                    f"profile.{name}: after the observation date (facts are as known then)"
                )
        return self


# --------------------------------------------------------------------------- responses


class _Out(BaseModel):
    """Responses leave out fields that have no value (null) rather than sending null:
    BentoML's OpenAPI document does not mark top-level optional fields as nullable."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: Any) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class Reason(_Out):
    """A factor that lowered the score."""

    feature: str = Field(description="Feature name.")
    dimension: str = Field(description="Score dimension of the feature.")
    value: float | None = Field(None, description="The person's value (absent when missing).")
    contribution: float = Field(description="Its share of the log-odds of default (> 0).")
    text: str = Field(description="The reason in words a person understands.")
    points: float | None = Field(None, description="Score points it cost (< 0).")
    code: str | None = Field(
        None, description="Adverse-action reason code (see reason_codes_version)."
    )


class LimitReason(_Out):
    """Why the credit limit is below the maximum."""

    code: str = Field(description="Limit reason code (LM00 cut-off ... LM07 loss cap).")
    text: str = Field(description="The reason in words a person understands.")


class Decision(_Out):
    """The whole credit decision for one person."""

    pd: float = Field(ge=0, le=1, description="Calibrated 12-month probability of default.")
    score: int = Field(ge=350, le=950, description="Credit score, 350-950.")
    band: str = Field(description="Score band (poor, fair, good, very good, excellent).")
    credit_limit: float = Field(ge=0, description="Credit limit, CNY (0: no credit).")
    tiers: list[str] = Field(description="Benefit tiers unlocked.")
    reasons: list[Reason] | None = Field(
        None, description="Adverse-action reasons, largest first (absent without reasons)."
    )
    base_points: float | None = Field(
        None, description="Score of the average person, before the dimensions' points."
    )
    dimension_points: dict[str, float] | None = Field(
        None, description="Score points per dimension; base_points + their sum = raw score."
    )
    limit_reasons: list[LimitReason] | None = Field(
        None, description="Why the limit is below the maximum (absent without reasons)."
    )
    reason_codes_version: str | None = Field(
        None, description="Version of the reason-code table that worded the reasons."
    )
    model_version: str = Field(
        description="The model that decided: `<registry version>@<MLflow run id>`."
    )


class BatchDecisions(_Out):
    """Decisions in the order of the request's people."""

    decisions: list[Decision]
    model_version: str


class FeatureChange(_Out):
    """One feature an action changes."""

    feature: str = Field(description="Feature name.")
    description: str = Field(description="What the feature measures.")
    old: float | None = Field(None, description="Today's value (absent when missing).")
    new: float | None = Field(None, description="The value after the action.")
    text: str = Field(description="'<description>: <old> -> <new>' in words.")


class AdviceOutcome(_Out):
    """The decision after a change; band, limit and tiers only where they differ."""

    score: int = Field(ge=350, le=950, description="The score after the change.")
    gain: int = Field(description="Score points gained: the model's new score minus today's.")
    band: str | None = Field(None, description="The new band, when it changes.")
    credit_limit: float | None = Field(None, ge=0, description="The new limit, when it changes.")
    new_tiers: list[str] = Field(description="Benefit tiers the change unlocks.")


class AdviceItem(_Out):
    """One change within the person's power."""

    action: str = Field(description="Action id.")
    text: str = Field(description="The action in words.")
    horizon_days: int = Field(description="Days it takes.")
    changes: list[FeatureChange] = Field(description="The features it changes, old -> new.")
    outcome: AdviceOutcome
    sentence: str = Field(description="The advice in one sentence.")


class AdviceResponse(_Out):
    """Today's decision and the advised changes, largest gain first."""

    decision: Decision
    advice: list[AdviceItem] = Field(description="At most max_actions, largest gain first.")
    combined: AdviceOutcome | None = Field(
        None, description="All advised actions together (with two or more)."
    )
    combined_sentence: str | None = Field(None, description="That outcome in one sentence.")
    model_version: str


class FeatureInfo(_Out):
    name: str
    dimension: str
    description: str
    unit: str
    risk_direction: int = Field(description="+1 more means riskier, -1 safer, 0 unconstrained.")
    used: bool = Field(description="The model splits on it (reasons come only from these).")


class ModelInfo(_Out):
    """What is being served."""

    model_name: str = Field(description="MLflow registered model name.")
    model_version: str = Field(description="`<registry version>@<MLflow run id>`.")
    alias: str | None = Field(None, description="Registry alias it was packaged from.")
    run_id: str | None = Field(None, description="MLflow run that trained it.")
    bento_model: str = Field(description="Tag in the BentoML model store.")
    trained_at: str | None = Field(None, description="Training time (UTC, ISO 8601).")
    cohorts: dict[str, list[str]] = Field(description="Observation dates of each split.")
    calibration: str = Field(description="Calibration method.")
    features: list[FeatureInfo]
    dimensions: list[str]
    test_metrics: dict[str, float] = Field(description="Metrics on the out-of-time test cohort.")
    score_bands: dict[str, int] = Field(description="Band -> lowest score in it.")
    tiers: dict[str, int] = Field(description="Benefit tier -> lowest score.")
    max_batch: int = Field(description="Most people per /score_batch call.")


class ErrorResponse(_Out):
    error: str
    detail: list[dict[str, Any]] = Field(default_factory=list)


# --------------------------------------------------------------------------- errors


class ModelRequest(_Request):
    """/model takes no input (an empty JSON object, or no body)."""


class ErrorDetail(BaseModel):
    """One problem with a request: where, what, and its kind."""

    loc: list[str | int] = Field(description="Path of the field, e.g. ['features', 'age'].")
    msg: str = Field(description="What is wrong, in words.")
    type: str = Field(description="Kind of error (pydantic's error type).")


class ValidationErrorResponse(BaseModel):
    """400: the request breaks the contract; every problem is listed."""

    error: str = Field(description="Summary, e.g. '2 validation errors for ScoreRequest'.")
    detail: list[ErrorDetail] = Field(description="Each problem, with the field it is in.")


class ErrorMessage(BaseModel):
    """401, 413, 415, 429, 503, 504: what went wrong, in words."""

    error: str = Field(description="What went wrong.")
    detail: list[ErrorDetail] | None = Field(None, description="The field concerned, if any.")


#: The request model of each route that takes a body.
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "/score": ScoreRequest,
    "/score_batch": BatchRequest,
    "/score_events": EventsRequest,
    "/score_features": FeaturesRequest,
    "/advice": AdviceRequest,
    "/model": ModelRequest,
}
#: The 200 response model of each route.
RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "/score": Decision,
    "/score_batch": BatchDecisions,
    "/score_events": Decision,
    "/score_features": Decision,
    "/advice": AdviceResponse,
    "/model": ModelInfo,
}
#: Error statuses every route can answer, with their description.
ERROR_STATUSES: dict[int, str] = {
    401: "Missing or invalid credentials (when authentication is on).",
    413: "Body over the route's size limit, or a batch over serve.max_batch people.",
    415: "Content type other than application/json.",
    429: "Too many requests in flight (traffic.max_concurrency).",
    503: "Draining for shutdown, or overloaded: retry on another instance.",
    504: "Not answered within traffic.timeout seconds.",
}


def error_body(message: str, loc: list[str | int] | None = None, kind: str = "limit") -> dict:
    """The body of an error response (an ErrorMessage)."""
    detail = [{"loc": loc, "msg": message, "type": kind}] if loc is not None else []
    return {"error": message, "detail": detail}


def validation_error_body(err: Any) -> dict:
    """A pydantic ValidationError as a 400 body: locations, messages and types, never the
    rejected values (the input is not echoed)."""
    detail = [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_input=False, include_context=False, include_url=False)
    ]
    n = err.error_count()
    return {
        "error": f"{n} validation error{'s' if n > 1 else ''} for {err.title}",
        "detail": detail,
    }


def _component(doc: dict, model: type[BaseModel], mode: str) -> dict:
    """``model``'s JSON schema with its definitions added to the document's components."""
    schema = model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, sub in schema.pop("$defs", {}).items():
        comps[name] = sub
    return schema


def complete_openapi(doc: dict) -> dict:
    """BentoML's OpenAPI document with what it leaves out: the 200 response schema of every
    route (BentoML writes ``{}``), the 400 shape (a list of problems, not a string), the
    other error statuses (401, 413, 415, 429, 503, 504), the request example at the media
    type (where schemathesis and Swagger UI look) and /model's empty input."""
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    comps["ValidationErrorResponse"] = _component(doc, ValidationErrorResponse, "validation")
    comps["ErrorMessage"] = _component(doc, ErrorMessage, "validation")
    for path, op in ((p, doc.get("paths", {}).get(p, {}).get("post")) for p in RESPONSE_MODELS):
        if op is None:
            continue
        # BentoML keys statuses by int: str keys beside them serialise as duplicate "200"
        # keys (Swagger UI refuses the document; first-key parsers read BentoML's "string")
        responses = op["responses"] = {str(k): v for k, v in op.get("responses", {}).items()}
        out = _component(doc, RESPONSE_MODELS[path], "validation")
        responses["200"] = {
            "description": "The decision." if path != "/model" else "The served model.",
            "content": {"application/json": {"schema": out}},
        }
        responses["400"] = {
            "description": "The request breaks the contract (each problem listed).",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/ValidationErrorResponse"}
                }
            },
        }
        for status, text in ERROR_STATUSES.items():
            responses[str(status)] = {
                "description": text,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}
                },
            }
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        if media is None:
            continue
        if path == "/model":
            media["schema"] = {"type": "object", "properties": {}, "additionalProperties": False}
            media["example"] = {}
            op["requestBody"]["required"] = False
            continue
        op["requestBody"]["required"] = True
        example = (REQUEST_MODELS[path].model_config.get("json_schema_extra") or {}).get("example")
        if example is not None:
            media["example"] = example
    return doc
