"""The deployable bundle: one object from features to the whole decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision.bundle import (
    DIMENSIONS,
    POINT_COLUMNS,
    CreditModel,
    FeatureInputError,
    decision_records,
)
from credit_scoring.modelling.train import predict_margin


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


def test_dimension_points_add_up_to_the_displayed_score_on_every_row(small_model, rows):
    """Issue 13 finding 3: no row is skipped, clipped scores included."""
    d = small_model.decide(rows)
    total = d["base_points"] + d[list(POINT_COLUMNS)].sum(axis=1)
    assert (total == d["score"]).all(), "points must add up exactly on every row"


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


def _mapping(row: pd.Series, names: list[str]) -> dict:
    return {n: (None if pd.isna(row[n]) else float(row[n])) for n in names}


def test_decision_records_are_the_decide_rows_in_plain_json_types(small_model, rows):
    """Records (the service's shape) carry exactly the decide() row, with plain types."""
    frame = small_model.decide(rows)
    for with_reasons in (True, False):
        records = small_model.decide_records(rows, with_reasons=with_reasons)
        assert len(records) == len(rows)
        for i in (0, 5, 123):
            r, want = records[i], frame.loc[i]
            assert list(r) == [
                *("pd", "score", "band", "credit_limit", "tiers"),
                *("reasons", "base_points", "dimension_points"),
                *("limit_reasons", "reason_codes_version"),
            ]
            assert type(r["pd"]) is float and type(r["score"]) is int
            assert r["pd"] == pytest.approx(want["pd"], rel=1e-12) and r["score"] == want["score"]
            assert (r["band"], r["credit_limit"]) == (want["band"], want["credit_limit"])
            assert r["tiers"] == list(want["tiers"])
            if not with_reasons:
                assert r["reasons"] is r["base_points"] is r["dimension_points"] is None
                continue
            assert r["reasons"] == want["reasons"] and r["base_points"] == want["base_points"]
            assert r["limit_reasons"] == want["limit_reasons"]
            assert r["reason_codes_version"] == want["reason_codes_version"]
            assert r["dimension_points"] == {
                d: float(want[c]) for d, c in zip(DIMENSIONS, POINT_COLUMNS, strict=True)
            }


def test_records_from_mappings_equal_records_from_the_table(small_model, rows):
    """Mappings of feature values (missing key or None = missing, extra keys ignored) give
    the same matrix and decisions as the feature table."""
    names = small_model.feature_names
    people = [_mapping(row, names) for _, row in rows.head(50).iterrows()]
    people[0] = {k: v for k, v in people[0].items() if v is not None}  # drop missing keys
    people[1]["shoe_size"] = 42.0
    X = small_model.records_matrix(people)
    np.testing.assert_array_equal(X, small_model.feature_matrix(rows.head(50)))
    assert small_model.records_matrix([]).shape == (0, len(names))
    assert small_model.decide_records(people) == small_model.decide_records(rows.head(50))
    assert small_model.decide_one(people[7]) == small_model.decide_records(people)[7]
    cols = small_model.decide_matrix(X, with_reasons=False)
    assert decision_records(cols, with_reasons=False) == small_model.decide_records(
        people, with_reasons=False
    )


def test_margin_is_the_one_raw_margin_prediction(small_model, rows):
    """CreditModel.margin is modelling.train.predict_margin at the bundle's best iteration
    on the bundle's encoding of the features (decision/encoding.py), bit for bit, and one
    person alone (one thread) gets the batch's margin."""
    X = small_model.feature_matrix(rows)
    m = small_model.margin(X)
    seen = small_model.encoded(X)
    assert np.array_equal(m, predict_margin(small_model.booster, seen, small_model.best_iteration))
    assert np.array_equal(
        m[:3], np.concatenate([small_model.margin(X[i : i + 1]) for i in range(3)])
    )


def test_fit_follows_the_estimator_contract(small_world):
    """The constructor only stores settings; fit learns booster, calibrator, best iteration,
    metadata and the training log, and returns the same object."""
    from credit_scoring.config import CalibrateParams, Params
    from credit_scoring.features.registry import feature_names
    from credit_scoring.modelling.split import out_of_time_split
    from credit_scoring.modelling.train import local_trainer

    params = Params()
    lgbm = params.train.lightgbm.model_copy(update={"num_boost_round": 30, "learning_rate": 0.2})
    model = CreditModel(
        feature_names(),
        train_params=params.train.model_copy(update={"lightgbm": lgbm}),
        calibrate_params=CalibrateParams(method="sigmoid"),
        seed=3,
    )
    assert model.booster is None and model.calibrator is None and model.best_iteration == 0
    with pytest.raises(ValueError, match="not fitted"):
        model.decide(small_world[2].head(3))
    split = out_of_time_split(small_world[2], params.split)
    assert model.fit(split, local_trainer(num_threads=1)) is model
    assert model.booster is not None and model.calibrator.method == "sigmoid"
    assert 0 < model.best_iteration <= 30
    assert model.metadata["cohorts"]["test"] == [str(d) for d in split.cohorts["test"]]
    assert set(model.training) >= {"evals_result", "calibration", "best_iteration"}
    assert model.used.any(), "the fitted model splits on some feature"


def test_an_unfitted_model_refuses_to_save(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        CreditModel(["n_late_365d"]).save(tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_saved_bundle_keeps_the_settings_that_made_it(small_model, tmp_path):
    """save/load round-trips the training and calibration params and the seed, not only
    the learned state, so a loaded bundle says how it was made."""
    small_model.save(tmp_path / "bundle")
    loaded = CreditModel.load(tmp_path / "bundle")
    assert loaded.train_params == small_model.train_params
    assert loaded.calibrate_params == small_model.calibrate_params
    assert loaded.seed == small_model.seed
    assert loaded.train_params.lightgbm.num_boost_round == 150, "the fixture's own setting"
