"""Issue 13 finding 4 (the NaN branch): missing values that mean "none" sit at the risky end
of the monotone curve, for training, batch scoring and the service alike."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.encoding import (
    ABSENCE_MEANS_NONE,
    check_missing_as,
    encode_frame,
    encode_matrix,
    missing_as,
)
from credit_scoring.features.registry import feature_names

TOPUP = "topup_mean_amount_365d"


@pytest.fixture(scope="module")
def without_topups(small_world):
    table = small_world[2]
    rows = table[table["n_phone_topups_365d"] == 0].head(400).reset_index(drop=True)
    assert len(rows) >= 100 and rows[TOPUP].isna().all(), "no top-ups = a missing average"
    return rows


def test_the_fitted_bundle_encodes_none_at_the_risky_end_and_saves_it(small_model, tmp_path):
    assert small_model.missing_as == missing_as(feature_names()) == ABSENCE_MEANS_NONE
    small_model.save(tmp_path)
    assert json.loads((tmp_path / "bundle.json").read_text())["missing_as"] == ABSENCE_MEANS_NONE
    assert CreditModel.load(tmp_path).missing_as == ABSENCE_MEANS_NONE


def test_issue13_no_topups_is_scored_exactly_as_an_average_top_up_of_zero(
    small_model, without_topups
):
    """Batch (frame), records (the service's mappings, None = missing) and the matrix path
    give a missing average exactly the decision of 0 CNY: no NaN branch to jump."""
    zero = without_topups.assign(**{TOPUP: 0.0})
    a = small_model.decide(without_topups, with_reasons=False)
    b = small_model.decide(zero, with_reasons=False)
    assert (a["score"] == b["score"]).all() and np.allclose(a["pd"], b["pd"], rtol=1e-12)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in without_topups[small_model.feature_names].to_dict("records")
    ]
    service = small_model.decide_records(records[:50], with_reasons=True)
    assert [r["score"] for r in service] == a["score"].head(50).tolist(), "service == batch"


def test_issue13_a_token_top_up_gains_only_what_the_monotone_curve_gives(
    small_model, without_topups
):
    """One 100 CNY top-up for people with none: the gain is the curve's step from 0 to 100
    CNY (the same as for a person whose top-ups averaged 0), never more."""
    after = without_topups.assign(n_phone_topups_365d=1.0, topup_months_12m=1.0, **{TOPUP: 100.0})
    from_zero = without_topups.assign(**{TOPUP: 0.0})
    s0 = small_model.decide(without_topups, with_reasons=False)["score"].to_numpy()
    z0 = small_model.decide(from_zero, with_reasons=False)["score"].to_numpy()
    s1 = small_model.decide(after, with_reasons=False)["score"].to_numpy()
    assert np.array_equal(s1 - s0, s1 - z0), "the gain is the step along the curve from 0"


def test_a_mapping_off_the_risky_end_or_on_an_unconstrained_feature_is_refused():
    with pytest.raises(ValueError, match="risky end"):
        check_missing_as({TOPUP: 50.0})
    with pytest.raises(ValueError, match="scored, constrained"):
        check_missing_as({"topup_months_12m": 0.0})
    with pytest.raises(ValueError, match="scored, constrained"):
        check_missing_as({"declared_income": 0.0})


def test_encoding_touches_only_the_mapped_missing_values():
    names = [TOPUP, "verified_income"]
    X = np.array([[np.nan, np.nan], [20.0, 3000.0]])
    got = encode_matrix(X, names, {TOPUP: 0.0})
    assert np.isnan(X[0, 0]), "the input is not changed in place"
    assert got[0, 0] == 0.0 and np.isnan(got[0, 1]) and got[1].tolist() == [20.0, 3000.0]
    assert encode_matrix(X, names, {}) is X, "nothing to encode: no copy"
    frame = pd.DataFrame(X, columns=names)
    assert encode_frame(frame, {TOPUP: 0.0})[TOPUP].tolist() == [0.0, 20.0]
