"""The deployable bundle: one object from features to the whole decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision.bundle import POINT_COLUMNS, CreditModel, FeatureInputError


@pytest.fixture(scope="module")
def rows(small_world):
    return small_world[2].sample(400, random_state=1).reset_index(drop=True)


def test_decision_has_every_field_and_scores_in_range(small_model, rows):
    d = small_model.decide(rows)
    for col in (
        "pd",
        "score",
        "band",
        "credit_limit",
        "tiers",
        "reasons",
        "base_points",
        *POINT_COLUMNS,
    ):
        assert col in d, f"decision lacks {col}"
    assert d["score"].between(350, 950).all()
    assert ((d["credit_limit"] == 0) | d["credit_limit"].between(500, 50_000)).all()
    assert (d["credit_limit"] % 100 == 0).all(), "limits are rounded to 100"
    assert d["reasons"].map(len).le(4).all()


def test_higher_score_means_lower_pd_across_people(small_model, rows):
    d = small_model.decide(rows, with_reasons=False).sort_values("pd")
    assert np.all(np.diff(d["score"].to_numpy()) <= 0)


def test_dimension_points_add_up_to_the_displayed_score(small_model, rows):
    d = small_model.decide(rows)
    unclipped = d["score"].between(351, 949)
    total = d["base_points"] + d[list(POINT_COLUMNS)].sum(axis=1)
    assert (total[unclipped] == d.loc[unclipped, "score"]).all(), "points must add up exactly"


def test_reasons_and_no_reasons_agree_on_the_decision(small_model, rows):
    a = small_model.decide(rows, with_reasons=True)
    b = small_model.decide(rows, with_reasons=False)
    np.testing.assert_allclose(a["pd"], b["pd"], rtol=1e-9)
    assert (a["score"] == b["score"]).all() and (a["credit_limit"] == b["credit_limit"]).all()


def test_single_person_decision_equals_the_batch_row(small_model, rows):
    batch = small_model.decide(rows)
    for i in (0, 7, 99):
        one = small_model.decide_one(rows.loc[i, small_model.feature_names].to_dict())
        assert one["score"] == batch.loc[i, "score"]
        assert one["pd"] == pytest.approx(batch.loc[i, "pd"], rel=1e-12)
        assert one["reasons"] == batch.loc[i, "reasons"]


def test_save_and_load_round_trip_gives_identical_decisions(small_model, rows, tmp_path):
    small_model.save(tmp_path / "bundle")
    loaded = CreditModel.load(tmp_path / "bundle")
    pd.testing.assert_frame_equal(small_model.decide(rows), loaded.decide(rows))


def test_missing_feature_column_is_a_clear_error(small_model, rows):
    with pytest.raises(FeatureInputError, match="missing 1 feature column"):
        small_model.decide(rows.drop(columns=[small_model.feature_names[3]]))
