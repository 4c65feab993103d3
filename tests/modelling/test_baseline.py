"""WoE scorecard: bins and WoE mean what scorecard users expect; it handles missing values,
drops uninformative features and ranks people better than a coin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from credit_scoring.modelling.baseline import WoEScorecard
from credit_scoring.modelling.metrics import auc


def _data(n: int = 8_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """risk rises with late_payments, falls with income; noise carries nothing; a 0/1 flag
    with 90% ones is risky when 0; income is missing for 10%, and missing means riskier."""
    rng = np.random.default_rng(seed)
    late = rng.poisson(1.0, n).astype(float)
    income = rng.lognormal(8.5, 0.5, n)
    flag = (rng.random(n) < 0.9).astype(float)
    income_missing = rng.random(n) < 0.1
    logit = -3.0 + 0.8 * late - 0.8 * (np.log(income) - 8.5) / 0.5 - 1.0 * flag
    logit += 1.0 * income_missing
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    income[income_missing] = np.nan
    X = pd.DataFrame(
        {"late_payments": late, "income": income, "flag": flag, "noise": rng.normal(size=n)}
    )
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[WoEScorecard, pd.DataFrame, np.ndarray]:
    X, y = _data()
    return WoEScorecard(max_bins=8, C=0.1).fit(X, y), X, y


def test_woe_rises_with_the_bin_event_rate(fitted):
    """WoE = ln(event share / non-event share): riskier bins have larger WoE, for a feature
    whose risk rises (late payments) and one whose risk falls (income)."""
    card, _, _ = fitted
    for feature in ("late_payments", "income"):
        b = card.bins_[feature]
        seen = b.counts > 0
        order = np.argsort(b.event_rate[seen])
        assert np.all(np.diff(b.woe[seen][order]) > 0), f"{feature}: WoE not rising with risk"
    late_woe = card.bins_["late_payments"].woe[:-1]
    assert np.all(np.diff(late_woe[card.bins_["late_payments"].counts[:-1] > 0]) > 0), (
        "more late payments must mean higher WoE"
    )


def test_missing_values_get_their_own_bin_with_their_own_risk(fitted):
    card, X, _ = fitted
    b = card.bins_["income"]
    assert b.counts[-1] == X["income"].isna().sum(), "every missing income is in the last bin"
    assert b.woe[-1] > 0, "missing income is riskier than average in this data"
    p = card.predict_proba(X)[:, 1]
    assert np.isfinite(p).all()


def test_a_bin_without_training_rows_is_neutral():
    """No missing values at fit time: a missing value at predict time gets WoE 0 (average
    risk), not the smoothing prior's extreme value."""
    X, y = _data()
    X["income"] = X["income"].fillna(X["income"].median())
    card = WoEScorecard().fit(X, y)
    assert card.bins_["income"].woe[-1] == 0.0
    row = X.iloc[[0]].copy()
    row.loc[:, "income"] = np.nan
    assert card.transform(row)[0, card.selected_features_.index("income")] == 0.0


def test_binary_flag_keeps_two_bins_despite_tied_quantiles(fitted):
    """90% ones makes every quantile 1.0; the flag must still split into 0 and 1."""
    card, _, _ = fitted
    b = card.bins_["flag"]
    assert b.cuts.tolist() == [0.5], f"one cut between 0 and 1 expected; got {b.cuts}"
    assert (b.counts[:2] > 0).all()


def test_uninformative_features_are_dropped_by_information_value(fitted):
    card, _, _ = fitted
    assert card.iv_["noise"] < 0.02
    assert "noise" not in card.selected_features_
    assert card.iv_.index[0] in ("late_payments", "income"), "the strongest signal ranks first"
    assert card.iv_.is_monotonic_decreasing


def test_probabilities_are_in_unit_interval_and_rank_better_than_a_coin(fitted):
    card, _, _ = fitted
    X_test, y_test = _data(seed=1)
    proba = card.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert auc(y_test, proba[:, 1]) > 0.75, "the scorecard must find the planted signal"


def test_coefficients_on_woe_are_positive(fitted):
    """Positive WoE means riskier, so every kept feature must push the PD up."""
    card, _, _ = fitted
    assert (card.logistic_.coef_ > 0).all(), dict(
        zip(card.selected_features_, card.logistic_.coef_[0], strict=True)
    )


def test_bin_table_is_readable_and_complete(fitted):
    card, X, _ = fitted
    table = card.bin_table()
    assert {"feature", "bin", "count", "event_rate", "woe", "iv"} <= set(table.columns)
    for feature in X.columns:
        assert table.loc[table["feature"] == feature, "count"].sum() == len(X)


def test_follows_the_sklearn_estimator_contract():
    """__init__ only stores arguments (clone works); fit returns self; not fitted -> error."""
    card = WoEScorecard(max_bins=5, C=1.0)
    assert clone(card).get_params() == card.get_params()
    X, y = _data(2_000)
    assert card.fit(X, y) is card
    with pytest.raises(Exception, match="not fitted"):
        WoEScorecard().predict_proba(X)


def test_invalid_input_fails_with_a_clear_message():
    X, y = _data(500)
    with pytest.raises(ValueError, match="both classes"):
        WoEScorecard().fit(X, np.zeros(len(X)))
    X_big, y_big = _data()  # small samples give noise a spurious IV, so use 8,000 rows
    with pytest.raises(ValueError, match="no feature has information value"):
        WoEScorecard().fit(X_big[["noise"]], y_big)
    with pytest.raises(ValueError, match="max_bins"):
        WoEScorecard(max_bins=1).fit(X, y)


def test_baseline_uses_only_the_features_the_model_may_score(small_world):
    """Issue #13: the baseline used all 70 features, the 19 the model may not use among
    them. fit_baseline fits on the registry's scored features only."""
    from credit_scoring.config import Params
    from credit_scoring.features.registry import feature_names, feature_spec
    from credit_scoring.modelling.baseline import fit_baseline, scored_features
    from credit_scoring.modelling.split import out_of_time_split

    _, _, table = small_world
    params = Params()
    split = out_of_time_split(table, params.split)
    names = feature_names()
    unscored = [n for n in names if not feature_spec(n).scored]
    assert unscored, "the registry has unscored features to leave out"
    b = fit_baseline(split, names, params.train, seed=0)
    assert list(b.feature_names_in_) == scored_features(names)
    assert not set(b.selected_features_) & set(unscored)


def test_baseline_is_calibrated_on_the_calibration_slice(small_world):
    """Platt on the calibration slice: the baseline's mean PD there is its default rate,
    and its PDs are those of the calibrator applied to the scorecard's log-odds."""
    from credit_scoring.config import Params
    from credit_scoring.features.registry import feature_names
    from credit_scoring.modelling.baseline import fit_baseline
    from credit_scoring.modelling.split import out_of_time_split
    from credit_scoring.modelling.train import labels

    _, _, table = small_world
    params = Params()
    split = out_of_time_split(table, params.split)
    b = fit_baseline(split, feature_names(), params.train, seed=0)
    cal = split.calibration
    p = b.predict_proba(cal)[:, 1]
    assert hasattr(b, "calibrator_") and b.calibrator_.method == "sigmoid"
    np.testing.assert_allclose(p, b.calibrator_.predict(b.decision_function(cal)))
    assert abs(p.mean() - labels(cal).mean()) < 0.005, (p.mean(), labels(cal).mean())
