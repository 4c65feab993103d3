"""The request models restate nothing: raw-event bounds come from the input contract
(schemas) and a request's contacts become exactly the events the network features read."""

from __future__ import annotations

import json

import pandas as pd
import pydantic
import pytest

from credit_scoring import schemas
from credit_scoring.features.compute import network_event_mask
from credit_scoring.serving.contract import ContactIn, EventIn, EventsRequest, ProfileIn
from credit_scoring.serving.scorer import behaviour_data

#: Request models and the contract table their fields come from.
MODELS = [(ProfileIn, schemas.PROFILES), (EventIn, schemas.EVENTS)]


def _limits(model: type[pydantic.BaseModel], field: str) -> tuple[float | None, float | None]:
    prop = model.model_json_schema()["properties"][field]
    number = next(s for s in prop.get("anyOf", [prop]) if s.get("type") in ("number", "integer"))
    return number.get("minimum"), number.get("maximum")


@pytest.mark.parametrize(("model", "table"), MODELS, ids=lambda x: getattr(x, "__name__", ""))
def test_raw_event_bounds_are_the_input_contracts(model, table):
    """Every numeric field named like a contract column has exactly that column's bounds."""
    checked = 0
    for col in table.columns:
        if col.name in model.model_fields and col.kind in ("float", "int"):
            assert _limits(model, col.name) == (col.min, col.max), f"{model.__name__}.{col.name}"
            checked += 1
    assert checked >= 3


def test_a_contacts_late_repayments_have_the_events_days_past_due_bounds():
    col = schemas.EVENTS.column("days_past_due")
    late = ContactIn.model_json_schema()["$defs"]["LateRepaymentIn"]["properties"]
    assert (late["days_past_due"]["minimum"], late["days_past_due"]["maximum"]) == (
        col.min,
        col.max,
    )


def test_a_value_outside_the_contract_is_refused_as_ingest_would():
    with pytest.raises(pydantic.ValidationError, match="profile_completeness"):
        ProfileIn(profile_completeness=1.01)
    with pytest.raises(pydantic.ValidationError, match="days_past_due"):
        EventIn(event_time="2024-01-01", event_type="repayment", amount=1, days_past_due=3651)


def test_contacts_late_repayments_become_the_events_the_network_features_read():
    """Of a known contact's late repayments, behaviour_data keeps exactly those that
    network_event_mask (the features' rule) selects, with their positions as ids."""
    lates = [
        {"event_time": f"2024-0{i + 1}-01", "days_past_due": d}
        for i, d in enumerate((1, 29, 30, 45))
    ]
    req = EventsRequest.model_validate(
        {
            "observation_date": "2025-01-01",
            "contacts": [
                {"contact_id": "C1", "since_date": "2022-01-01", "late_repayments": lates},
                {"contact_id": "C2", "since_date": "2022-01-01", "known": False},
            ],
        }
    )
    events = behaviour_data(req).events
    candidates = pd.DataFrame(
        {"event_type": "repayment", "days_past_due": [x["days_past_due"] for x in lates]}
    )
    want = [f"cC1:{j}" for j in network_event_mask(candidates).nonzero()[0]]
    assert list(events["event_id"]) == want == ["cC1:2", "cC1:3"]
    assert (events["person_id"] == "C1").all()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"features": {"n_late_365d": "5"}}, "n_late_365d"),
        ({"features": {"n_late_365d": True}}, "n_late_365d"),
        ({"features": {}, "with_reasons": 1}, "with_reasons"),
    ],
)
def test_strict_types_no_string_or_flag_is_read_as_a_number(body, field):
    from credit_scoring.serving.contract import ScoreRequest

    with pytest.raises(pydantic.ValidationError, match=field):
        ScoreRequest.model_validate_json(json.dumps(body))
    assert ScoreRequest.model_validate_json('{"features": {"n_late_365d": 5}}').features


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-01-01", True),
        ("2024-01-01T10:00:00", True),
        ("2024-01-01T10:00:00.5+02:00", True),
        ("2024-01-01T10:00Z", True),
        ("0", False),
        ("1700000000", False),
        ("1900-06-01", False),
        ("2200-01-01", False),
        ("2024-01-01t10:00", False),
        (1700000000, False),
    ],
)
def test_timestamps_are_accepted_exactly_when_the_documented_pattern_matches(value, ok):
    """The OpenAPI pattern and the validation agree (schemathesis relies on it)."""
    import re

    from credit_scoring.serving.contract import TIMESTAMP_PATTERN, LateRepaymentIn

    body = json.dumps({"event_time": value, "days_past_due": 45})
    if isinstance(value, str):
        assert bool(re.match(TIMESTAMP_PATTERN, value)) == ok
    if ok:
        LateRepaymentIn.model_validate_json(body)
    else:
        with pytest.raises(pydantic.ValidationError, match="event_time"):
            LateRepaymentIn.model_validate_json(body)


def test_profile_dates_after_the_observation_date_are_refused():
    body = {"observation_date": "2025-01-01", "profile": {"registered_date": "2025-01-02"}}
    with pytest.raises(pydantic.ValidationError, match="registered_date: after the observation"):
        EventsRequest.model_validate(body)
    EventsRequest.model_validate({**body, "profile": {"registered_date": "2025-01-01"}})


def test_complete_openapi_adds_200_schemas_error_shapes_and_examples():
    from credit_scoring.serving.contract import complete_openapi

    body = {"content": {"application/json": {"schema": {}}}}
    doc = {
        "paths": {
            p: {"post": {"responses": {"200": body}, "requestBody": json.loads(json.dumps(body))}}
            for p in ("/score", "/score_batch", "/score_events", "/advice", "/model")
        }
    }
    out = complete_openapi(doc)
    score = out["paths"]["/score"]["post"]
    assert (
        "score" in score["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    )
    assert {"400", "401", "413", "415", "429", "503", "504"} <= set(score["responses"])
    assert score["requestBody"]["required"] is True
    assert score["requestBody"]["content"]["application/json"]["example"]["features"]
    detail = out["components"]["schemas"]["ValidationErrorResponse"]["properties"]["detail"]
    assert detail["type"] == "array"
