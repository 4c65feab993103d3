"""Issue 13 finding 1: adverse-action reasons a bank can defend, and limit reasons.

The table is versioned and consistent; only permissible, constrained, scored features give
reasons; missing values only where absence is the stated reason; reasons are measured
against the approved applicants; no text speaks of other people; every declined person
gets 1-4 reasons; every limit below the maximum says why; batch scoring and the service
return codes and texts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from credit_scoring.config import LimitParams
from credit_scoring.decision import limits, reason_codes
from credit_scoring.decision.batch import score_features
from credit_scoring.decision.bundle import CreditModel, decisions_frame
from credit_scoring.decision.reason_codes import (
    LIMIT_CODE,
    REASON_CODES,
    REASON_CODES_VERSION,
    code_for,
)
from credit_scoring.features.registry import FEATURES, feature_spec
from credit_scoring.schemas import Dimension

#: The content of the table at its version: changing a code, a text, a feature list or a
#: permissibility without a new REASON_CODES_VERSION fails here.
PINNED = {  # .3 current-account, application codes; .4 -FC03, FC10; .5 +LM08
    "2026-11-29.2": "1096f20cdfb91f31e9083646758305f30e5be79e302cf2b544d53cb2680479e6",
    "2026-11-29.3": "c2d39458cdf3c8234c4a052fdc4353183feffa2401bb5e99465090e4cf526595",
    "2026-11-29.4": "b06969aa08c0d172d8e22707025cc2f915fa209e03e618bf99aa7b2d28b91952",
    "2026-11-29.5": "d0d5c12874b3ddc7fed917bfaa0861bae1993c4d7434354814d5dc17cd7e8292",
}


@pytest.fixture(scope="module")
def decided(small_world, small_model):
    """The small model's decisions, with reasons, on 1,500 people of the small world."""
    rows = small_world[2].sample(1_500, random_state=2).reset_index(drop=True)
    return rows, small_model.decide(rows)


# --------------------------------------------------------------------------- the table


def test_the_table_is_consistent_and_pinned_to_its_version():
    reason_codes.check_table()
    assert PINNED.get(REASON_CODES_VERSION) == reason_codes.table_digest(), (
        "the reason-code table changed: bump REASON_CODES_VERSION and pin its digest"
    )
    rows = reason_codes.table_rows()
    assert {"code", "text", "features", "permissible"} <= set(rows[0]), "the table's columns"


def test_a_table_with_a_duplicate_code_or_a_feature_covered_twice_is_refused():
    a = REASON_CODES[0]
    with pytest.raises(ValueError, match="declared twice"):
        reason_codes.check_table((a, a))
    twice = reason_codes.ReasonCode("XX01", "x", a.features)
    with pytest.raises(ValueError, match="is covered by"):
        reason_codes.check_table((a, twice))


def test_every_scored_constrained_feature_has_a_code():
    """Nothing the model may use with a direction is left without a way to say so."""
    missing = [
        s.name
        for s in FEATURES
        if s.scored and s.risk_direction != 0 and code_for(s.name, missing=False) is None
    ]
    assert not missing, f"scored, constrained features without a reason code: {missing}"


def test_no_permissible_text_speaks_of_other_people():
    """Social codes that may be stated speak of the applicant's own network (how many,
    linked how long), never of contacts' behaviour or identity state; codes of features
    describing contacts are not permissible."""
    for c in REASON_CODES:
        specs = [reason_codes.spec_of(f) for f in c.features]
        dims = {s.dimension for s in specs}
        about_contacts = any(
            ("contacts" in s.description and s.unit != "count") or "per known" in s.description
            for s in specs
        )
        if about_contacts:
            assert not c.permissible, f"{c.code} describes other people: must not be stated"
        if c.permissible and Dimension.SOCIAL_CONNECTIONS in dims:
            low = c.text.lower()
            for word in ("late", "repay", "verified", "identity", "known contacts"):
                assert word not in low, f"{c.code} speaks of contacts' data: {c.text!r}"


def test_absence_codes_are_worded_as_absence():
    for c in REASON_CODES:
        if c.on_missing:
            assert c.text.startswith(("No ", "Income not", "Identity not")), c.text
            assert "{" not in c.text, "an absence is stated, not a value"


# --------------------------------------------------------------------------- decisions


def test_missing_values_give_reasons_only_where_absence_is_the_stated_reason(decided):
    _, d = decided
    seen = 0
    for row in d["reasons"]:
        for r in row:
            if r["value"] is None and r["code"] != reason_codes.FALLBACK_CODE.code:
                seen += 1
                code = code_for(r["feature"], missing=True)
                assert code is not None and code.on_missing, f"missing value gave {r}"
                assert r["code"] == code.code and r["text"] == code.text, r
            assert r["text"] != "No late repayment on record", "a good absence as a reason"
            assert "phone top-up" not in r["text"] or r["value"] is not None, r
    assert seen > 0, "the small world should have some absence reasons"


def test_only_permissible_constrained_scored_features_give_reasons(decided, small_model):
    _, d = decided
    used = dict(zip(small_model.feature_names, small_model.used, strict=True))
    for row in d["reasons"]:
        for r in row:
            if r["code"] == reason_codes.FALLBACK_CODE.code:
                continue  # the stated fallback of a decline: no feature
            spec = feature_spec(r["feature"])
            assert spec.scored and spec.risk_direction != 0 and used[spec.name], r
            code = code_for(r["feature"], r["value"] is None)
            assert code is not None and code.permissible and code.code == r["code"], r


def test_every_declined_person_gets_one_to_four_reasons(decided):
    _, d = decided
    declined = d["credit_limit"] == 0
    assert declined.sum() >= 20, "the sample must hold declined people"
    n = d.loc[declined, "reasons"].map(len)
    assert n.between(1, 4).all(), f"declined people's reason counts: {n.value_counts()}"


def test_reasons_are_measured_against_the_approved_applicants(decided, small_model):
    """The bundle's reference is the approved applicants of the calibration slice, and a
    reason's points are -k x (its contribution above theirs)."""
    ref = small_model.reference
    assert ref.population.startswith("approved applicants (score >= 550)"), ref.population
    assert ref.n > 100, "the reference needs a real population"
    assert np.isfinite(ref.contribution).all()
    _, d = decided
    for row in d["reasons"]:
        for r in row:
            assert r["contribution"] > 0 and r["points"] <= 0, r


def test_limit_reasons_on_every_limit_below_the_maximum(decided, small_model):
    _, d = decided
    policy = small_model.decision_params.limit
    below = d["credit_limit"] < policy.max_limit
    n = d["limit_reasons"].map(len)
    assert (n[below] >= 1).all(), "a limit below the maximum must say why"
    assert (n[~below] == 0).all(), "a limit at the maximum needs no reason"
    for limit, row in zip(d["credit_limit"], d["limit_reasons"], strict=True):
        codes = [r["code"] for r in row]
        if limit == 0:
            assert codes == ["LM00"], codes
        elif limit < policy.max_limit:
            basis = {"LM01", "LM02", "LM03", "LM04"} & set(codes)
            assert len(basis) == 1, f"exactly one income basis: {codes}"
        assert all(r["text"] for r in row)


def test_limit_reasons_name_the_income_basis_verification_and_the_loss_cap():
    policy = LimitParams()
    score = np.array([700, 700, 620, 650, 500])
    pd_ = np.array([0.02, 0.15, 0.05, 0.03, 0.3])
    declared = np.array([np.nan, 50_000.0, np.nan, 300.0, np.nan])
    verified = np.array([5_000.0, np.nan, np.nan, np.nan, np.nan])
    factors = limits.limit_factors(score, pd_, declared, verified, policy)
    got = reason_codes.limit_reasons(factors, score, declared, verified, policy)
    assert [[r["code"] for r in row] for row in got] == [
        ["LM01", "LM06"],
        ["LM02", "LM08", "LM05", "LM06", "LM07"],
        ["LM03", "LM05", "LM06"],
        ["LM04", "LM05", "LM06"],
        ["LM00"],
    ]
    assert got[0][0]["text"] == "Limit based on your verified monthly income of CNY 5,000"
    assert got[1][0]["text"] == (
        "Limit based on 40% of your declared monthly income of CNY 50,000, as it is not verified"
    )
    assert (
        got[1][1]["text"] == "An income that is not verified counts for at most CNY 2,000 a month"
    )
    assert got[4][0]["text"] == "No credit line: your score 500 is below the approval score 550"
    assert set(LIMIT_CODE) == {f"LM0{i}" for i in range(9)}


def test_the_version_travels_in_the_bundle_and_in_every_decision(decided, small_model, tmp_path):
    rows, d = decided
    assert (d["reason_codes_version"] == REASON_CODES_VERSION).all()
    assert small_model.reason_codes_version == REASON_CODES_VERSION
    small_model.save(tmp_path)
    saved = json.loads((tmp_path / "bundle.json").read_text())
    assert saved["reason_codes_version"] == REASON_CODES_VERSION
    loaded = CreditModel.load(tmp_path)
    again = loaded.decide(rows.head(50))
    assert again["reasons"].tolist() == d["reasons"].head(50).tolist(), "same reasons"
    assert loaded.reference.population == small_model.reference.population


def test_batch_scoring_returns_codes_and_texts(small_world, small_model):
    rows = small_world[2].head(300)
    decisions, _ = score_features(small_model, rows)
    flat = decisions_frame(decisions)
    reasons = [json.loads(v) for v in flat["reasons"]]
    limit_reasons = [json.loads(v) for v in flat["limit_reasons"]]
    assert any(row for row in reasons) and all("code" in r for row in reasons for r in row)
    assert all("code" in r and "text" in r for row in limit_reasons for r in row)
    assert (flat["reason_codes_version"] == REASON_CODES_VERSION).all()


def test_the_service_contract_carries_codes_limit_reasons_and_the_version(small_model, decided):
    from credit_scoring.serving.contract import Decision

    rows, _ = decided
    record = small_model.decide_records(rows.head(20))
    for r in record:
        out = Decision.model_validate({**r, "model_version": "7"}).model_dump()
        assert out["reason_codes_version"] == REASON_CODES_VERSION
        assert all("code" in x for x in out.get("reasons", []))
        if out["credit_limit"] < small_model.decision_params.limit.max_limit:
            assert out["limit_reasons"], "limit reasons reach the API"


def test_a_declined_person_without_a_qualifying_factor_still_gets_a_reason():
    """A value no worse than the reference is never stated as adverse: the stated fallback
    instead, so no decline is silent."""
    from credit_scoring.decision.explain import Reference, adverse_reasons

    names = ["n_late_30p_90d", "n_contacts"]
    X = np.array([[0.0, 3.0], [0.0, 3.0], [0.0, 3.0]])
    contrib = np.array([[0.5, 0.9], [0.5, 0.9], [0.0, 0.9]])
    ref = Reference(np.zeros(2), np.array([1.0, 3.0]), "approved applicants")
    used = np.ones(2, dtype=bool)
    got = adverse_reasons(contrib, X, names, used, 4, ref, declined=[False, True, True])
    assert got[0] == [], "approved: 0 late payments is not worse than the reference"
    assert [r["code"] for r in got[1]] == ["GN01"], "declined: 0 late payments is no reason"
    assert [r["code"] for r in got[2]] == [reason_codes.FALLBACK_CODE.code], "the fallback"
    assert got[1][0]["text"] == reason_codes.FALLBACK_CODE.text


@pytest.mark.parametrize("n", [0, 5])
def test_a_policy_outside_one_to_four_reasons_is_refused(n):
    from pydantic import ValidationError

    from credit_scoring.config import DecisionParams

    with pytest.raises(ValidationError, match="max_reasons"):
        DecisionParams(max_reasons=n)
