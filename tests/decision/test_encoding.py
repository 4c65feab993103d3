"""Issue 13 finding 4 (the NaN branch): missing and thinly-based values are encoded once, in
the bundle, for training, batch scoring and the service alike, so a token action cannot
jump a NaN branch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.encoding import (
    SHRINK_BY_COUNT,
    check_encoding,
    check_missing_as,
    encode_frame,
    encode_matrix,
    fit_encoding,
)

TOPUP = "topup_mean_amount_365d"
COUNT = "n_phone_topups_365d"


@pytest.fixture(scope="module")
def without_topups(small_world):
    table = small_world[2]
    rows = table[table[COUNT] == 0].head(400).reset_index(drop=True)
    assert len(rows) >= 100 and rows[TOPUP].isna().all(), "no top-ups = a missing average"
    return rows


def test_the_fitted_bundle_carries_its_encoding_and_saves_it(small_model, tmp_path):
    """The top-up average is no longer scored (a few large top-ups bought +25 points at
    p99 through it even shrunk), so its shrinkage is gone: only the credit history's
    absence is encoded."""
    enc = small_model.encoding
    assert enc["missing_as"] == {"credit_history_months": 0.0}
    assert enc["shrink"] == {} and SHRINK_BY_COUNT == {}
    small_model.save(tmp_path)
    assert json.loads((tmp_path / "bundle.json").read_text())["encoding"] == enc
    assert CreditModel.load(tmp_path).encoding == enc


def test_issue13_no_topups_scores_as_any_average_in_batch_and_service_alike(
    small_model, without_topups
):
    """No top-ups (NaN) and any average amount give the same decision: the amount is
    carried, never split on; the records path (service) agrees with the frame path."""
    a = small_model.decide(without_topups, with_reasons=False)
    b = small_model.decide(without_topups.assign(**{TOPUP: 300.0}), with_reasons=False)
    assert (a["score"] == b["score"]).all() and np.allclose(a["pd"], b["pd"], rtol=1e-12)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in without_topups[small_model.feature_names].to_dict("records")
    ]
    service = small_model.decide_records(records[:50], with_reasons=True)
    assert [r["score"] for r in service] == a["score"].head(50).tolist(), "service == batch"


def test_shrinkage_moves_an_average_over_one_event_only_a_short_step():
    """The mechanism, for any scored average declared later: one event of 100 is seen as
    (100 + k x prior) / (1 + k); none is the prior."""
    enc = {"shrink": {TOPUP: {"count": COUNT, "pseudo_count": 12.0, "prior": 40.0}}}
    X = np.array([[np.nan, 0.0], [100.0, 1.0]])
    seen = encode_matrix(X, [TOPUP, COUNT], enc)[:, 0]
    assert seen[0] == pytest.approx(40.0), "none = the prior"
    assert seen[1] - seen[0] == pytest.approx((100.0 - 40.0) / 13), "one event = a short step"


def test_issue13_the_amount_of_one_token_top_up_no_longer_buys_points(small_model, without_topups):
    """One 100 CNY top-up for people with none used to leave the NaN branch for the top of
    the amount curve: +9 on average, +25 at p99. The amount is not scored now: 100 and
    20 CNY give the same score."""
    one = {COUNT: 1.0, "topup_months_12m": 1.0}
    big = small_model.decide(without_topups.assign(**one, **{TOPUP: 100.0}), with_reasons=False)
    small = small_model.decide(without_topups.assign(**one, **{TOPUP: 20.0}), with_reasons=False)
    np.testing.assert_array_equal(big["score"].to_numpy(), small["score"].to_numpy())


def test_a_mapping_off_the_risky_end_or_on_an_unconstrained_feature_is_refused():
    with pytest.raises(ValueError, match="risky end"):
        check_missing_as({"credit_history_months": 5.0})
    with pytest.raises(ValueError, match="scored, constrained"):
        check_missing_as({"topup_months_12m": 0.0})
    with pytest.raises(ValueError, match="scored, constrained"):
        check_encoding(
            {"shrink": {"declared_income": {"count": COUNT, "pseudo_count": 1, "prior": 1}}}
        )
    with pytest.raises(ValueError, match="scored, constrained"):
        check_encoding({"shrink": {TOPUP: {"count": COUNT, "pseudo_count": 1, "prior": 1}}})
    history = "credit_history_months"  # scored and constrained: only the count is wrong
    with pytest.raises(ValueError, match="pseudo_count > 0"):
        check_encoding({"shrink": {history: {"count": COUNT, "pseudo_count": 0, "prior": 1}}})
    assert check_encoding(None) == {"missing_as": {}, "shrink": {}}, "older bundles: none"


def test_the_encoding_is_the_same_on_frames_and_matrices_and_leaves_the_input_alone(
    monkeypatch,
):
    monkeypatch.setitem(SHRINK_BY_COUNT, TOPUP, (COUNT, 10.0))
    frame = pd.DataFrame(
        {
            TOPUP: [np.nan, 20.0, 100.0],
            COUNT: [0.0, 10.0, 1.0],
            "credit_history_months": [np.nan, 3.0, 12.0],
            "verified_income": [np.nan, 3000.0, np.nan],
        }
    )
    enc = fit_encoding(frame, list(frame.columns))
    assert enc["shrink"][TOPUP]["prior"] == pytest.approx((200 + 100) / 11), "per top-up"
    X = frame.to_numpy()
    got = encode_matrix(X, list(frame.columns), enc)
    assert np.isnan(X[0, 0]), "the input is not changed in place"
    np.testing.assert_array_equal(got, encode_frame(frame, enc).to_numpy())
    assert got[0, 2] == 0.0 and np.isnan(got[0, 3]), "only mapped columns change"
    assert encode_matrix(X, list(frame.columns), {}) is X, "nothing to encode: no copy"
