"""Calibration: fixes a deliberately miscalibrated model on held-out data, keeps the ranking,
round-trips through JSON exactly and chooses its method by cross-validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import LightGBMParams, TrainParams
from credit_scoring.modelling.calibrate import CalibrationError, Calibrator, choose_calibrator
from credit_scoring.modelling.metrics import auc, brier, ece
from credit_scoring.modelling.train import feature_matrix, predict_margin, train_lightgbm

FEATURES = ["x0", "x1", "x2"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _margins(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A true log-odds z (about 5% defaults) and labels drawn from it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-3.4, 1.0, n)
    return z, (rng.random(n) < _sigmoid(z)).astype(int)


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = rng.random(n) < _sigmoid(-3.3 + 1.0 * X[:, 0] - 0.7 * X[:, 1])
    df = pd.DataFrame(X, columns=FEATURES)
    df["default_12m"] = y.astype(int)
    return df


def _balanced(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Upsample defaulters to half the rows: the classic way to wreck the probabilities."""
    events = df[df["default_12m"] == 1]
    extra = events.sample(len(df) - 2 * len(events), replace=True, random_state=seed)
    return pd.concat([df, extra], ignore_index=True)


@pytest.fixture(scope="module")
def miscalibrated_lightgbm() -> dict[str, np.ndarray]:
    """Margins of a LightGBM trained on balanced data for a calibration and a test slice."""
    params = TrainParams(
        lightgbm=LightGBMParams(learning_rate=0.1, num_boost_round=200, early_stopping_rounds=20)
    )
    model = train_lightgbm(
        _balanced(_table(6_000, 0), 0),
        _balanced(_table(3_000, 1), 1),
        FEATURES,
        [1, -1, 0],
        params,
        seed=0,
        num_threads=1,
    )
    cal, test = _table(8_000, 2), _table(8_000, 3)
    return {
        "cal_margin": predict_margin(model.booster, feature_matrix(cal, FEATURES)),
        "cal_y": cal["default_12m"].to_numpy(),
        "test_margin": predict_margin(model.booster, feature_matrix(test, FEATURES)),
        "test_y": test["default_12m"].to_numpy(),
    }


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "auto"])
def test_calibration_fixes_a_model_trained_on_balanced_data_on_held_out_data(
    miscalibrated_lightgbm, method
):
    """Trained at a 50% default rate, the raw sigmoid(margin) overstates a ~5% risk; the
    calibrator, fitted on one slice, must cut the Brier score and ECE on another."""
    d = miscalibrated_lightgbm
    raw = _sigmoid(d["test_margin"])
    assert raw.mean() > 3 * d["test_y"].mean(), "the set-up must really be miscalibrated"
    cal, _ = choose_calibrator(d["cal_margin"], d["cal_y"], method, n_bins=10, seed=0)
    p = cal.predict(d["test_margin"])
    assert brier(d["test_y"], p) < brier(d["test_y"], raw), "held-out Brier must improve"
    assert ece(d["test_y"], p, 10) < 0.01, f"held-out ECE {ece(d['test_y'], p, 10):.4f}"
    assert ece(d["test_y"], p, 10) < ece(d["test_y"], raw, 10)
    assert auc(d["test_y"], p) >= auc(d["test_y"], raw) - 0.01, "ranking must be kept"


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_calibration_undoes_overconfident_and_underconfident_margins(scale):
    """Margins scaled away from the true log-odds (over-/under-confident model)."""
    z_cal, y_cal = _margins(20_000, 0)
    z_test, y_test = _margins(20_000, 1)
    cal = Calibrator("sigmoid").fit(scale * z_cal - 1.0, y_cal)
    assert cal.coef_ == pytest.approx(1 / scale, rel=0.15), "Platt must find the inverse scale"
    p = cal.predict(scale * z_test - 1.0)
    assert brier(y_test, p) <= brier(y_test, _sigmoid(scale * z_test - 1.0))


def test_sigmoid_leaves_well_calibrated_margins_alone():
    z, y = _margins(50_000, 2)
    cal = Calibrator("sigmoid").fit(z, y)
    assert cal.coef_ == pytest.approx(1.0, abs=0.1)
    assert cal.intercept_ == pytest.approx(0.0, abs=0.35)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_predictions_never_fall_as_the_margin_rises(method):
    z, y = _margins(5_000, 3)
    cal = Calibrator(method).fit(z, y)
    p = cal.predict(np.linspace(-15, 10, 2_001))
    assert np.all(np.diff(p) >= 0), "a higher margin must never give a lower probability"
    assert p.min() > 0 and p.max() < 1, "probabilities stay strictly inside (0, 1)"


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_json_round_trip_gives_identical_predictions(method):
    """to_dict -> JSON text -> from_dict predicts bit-identically (the bundle needs no pickle)."""
    z, y = _margins(5_000, 4)
    cal = Calibrator(method).fit(z, y)
    restored = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    grid = np.linspace(-12, 8, 1_001)
    assert np.array_equal(restored.predict(grid), cal.predict(grid))
    assert restored.method == method


def test_predict_accepts_a_single_margin_for_per_request_use():
    z, y = _margins(5_000, 5)
    cal = Calibrator("isotonic").fit(z, y)
    assert float(cal.predict(-3.0)) == pytest.approx(float(cal.predict(np.array([-3.0]))[0]))


def test_isotonic_clips_margins_outside_the_fitted_range():
    z, y = _margins(5_000, 6)
    cal = Calibrator("isotonic").fit(z, y)
    lo, hi = cal.predict(np.array([-1e6, 1e6]))
    assert lo == cal.y_thresholds_[0] and hi == cal.y_thresholds_[-1]
    assert lo >= 1e-6 and hi <= 1 - 1e-6


def test_auto_compares_both_methods_out_of_fold_and_refits_the_winner():
    z, y = _margins(10_000, 7)
    cal, report = choose_calibrator(1.5 * z, y, "auto", n_bins=10, seed=0)
    assert set(report["cv"]) == {"isotonic", "sigmoid"}
    for method, scores in report["cv"].items():
        assert set(scores) == {"brier", "ece", "auc"}, f"{method}: held-out Brier, ECE and AUC"
    assert report["method"] == cal.method
    assert report["n"] == 10_000 and report["n_folds"] == 5
    refit = Calibrator(cal.method).fit(1.5 * z, y)
    assert np.array_equal(cal.predict(z), refit.predict(z)), "winner refitted on the whole slice"
    json.dumps(report)  # the report goes to metrics files as is


def test_auto_keeps_sigmoid_when_isotonic_is_not_clearly_better():
    """Margins that are log-odds up to a linear map: Platt is the right model, and isotonic
    may at best match it within noise, so the simpler, tie-free sigmoid must be chosen."""
    z, y = _margins(10_000, 7)
    cal, report = choose_calibrator(1.5 * z - 0.5, y, "auto", n_bins=10, seed=0)
    gain = report["isotonic_brier_gain"]
    assert gain["mean"] <= gain["standard_error"]
    assert cal.method == "sigmoid"


def test_auto_picks_isotonic_when_the_margin_is_not_log_odds_shaped():
    """A margin that is a non-logistic (cubic) map of the risk: Platt cannot follow it,
    isotonic can, by far more than the noise, so auto must choose isotonic."""
    z, y = _margins(20_000, 8)
    cal, report = choose_calibrator(np.cbrt(z + 3.4), y, "auto", n_bins=10, seed=0)
    gain = report["isotonic_brier_gain"]
    assert gain["mean"] > gain["standard_error"], gain
    assert cal.method == "isotonic"


def test_a_named_method_is_fitted_without_cross_validation():
    z, y = _margins(3_000, 8)
    cal, report = choose_calibrator(z, y, "isotonic", n_bins=10, seed=0)
    assert cal.method == report["method"] == "isotonic"
    assert "cv" not in report


def test_errors_are_clear():
    z, y = _margins(1_000, 9)
    with pytest.raises(ValueError, match="method must be one of"):
        Calibrator("beta").fit(z, y)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not fitted"):
        Calibrator("sigmoid").predict(z)
    with pytest.raises(ValueError, match="unknown calibrator method"):
        Calibrator.from_dict({"method": "beta"})
    with pytest.raises(ValueError, match="both classes"):
        Calibrator("sigmoid").fit(z, np.zeros_like(y))
    with pytest.raises(ValueError, match="at least 5 defaults"):
        choose_calibrator(z[:50], np.r_[np.ones(2), np.zeros(48)], "auto", 10, 0)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "auto"])
def test_issue13_a_calibration_that_would_invert_the_ranking_is_a_one_line_error(method):
    """Issue 13 finding 3: a margin that ranks defaults backwards (Platt slope <= 0, an
    isotonic curve flattened to a constant) is refused, never silently inverting scores."""
    z, y = _margins(4_000, 21)
    with pytest.raises(CalibrationError, match=r"ranking|rank defaults") as err:
        choose_calibrator(-z, y, method, n_bins=10, seed=0)
    assert "\n" not in str(err.value), "one line"


@pytest.mark.parametrize(
    "data",
    [
        {"method": "sigmoid", "coef": -0.8, "intercept": -3.0},
        {"method": "sigmoid", "coef": 0.0, "intercept": -3.0},
        {"method": "isotonic", "x_thresholds": [0.0, 1.0], "y_thresholds": [0.05, 0.05]},
    ],
)
def test_issue13_a_stored_calibrator_that_inverts_or_erases_the_ranking_is_refused(data):
    with pytest.raises(CalibrationError, match=r"slope must be > 0|flat"):
        Calibrator.from_dict(data)
