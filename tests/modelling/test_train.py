"""LightGBM training: monotone constraints hold, seeds make it reproducible, early stopping
stops and the learning curve is recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import LightGBMParams, TrainParams, TuneParams
from credit_scoring.modelling import train as train_module
from credit_scoring.modelling.metrics import auc
from credit_scoring.modelling.train import (
    SINGLE_THREAD_ROWS,
    FeatureInputError,
    TrainedModel,
    feature_matrix,
    lightgbm_params,
    monotone_violations,
    predict_margin,
    train_lightgbm,
    tune_lightgbm,
)

FEATURES = ["late_payments", "income", "wiggly", "noise"]
CONSTRAINTS = [1, -1, 0, 0]  # risk rises with late payments, falls with income


def _data(n: int, seed: int, signal: bool = True) -> pd.DataFrame:
    """Known monotone signal (+ for late_payments, − for income), a non-monotone one, noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logit = -2.5 + 1.2 * x[:, 0] - 1.0 * x[:, 1] + 0.8 * np.sin(2.0 * x[:, 2])
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-logit)) if signal else rng.random(n) < 0.1
    x[rng.random(n) < 0.05, 1] = np.nan  # some missing incomes
    df = pd.DataFrame(x, columns=FEATURES)
    df.insert(0, "default_12m", pd.array(y.astype(int), dtype="Int64"))
    return df


def _train(train, valid, constraints, params, seed, num_threads=1) -> TrainedModel:
    """One thread keeps these small fits fast on a busy machine (OpenMP hates contention);
    the determinism test uses the production default of two."""
    return train_lightgbm(train, valid, FEATURES, constraints, params, seed, num_threads)


def _params(**lgbm) -> TrainParams:
    # "basic" by default here: it never needs the fallback retraining, so tests stay fast.
    base = {
        "learning_rate": 0.1,
        "num_boost_round": 300,
        "early_stopping_rounds": 20,
        "monotone_constraints_method": "basic",
    }
    return TrainParams(lightgbm=LightGBMParams(**{**base, **lgbm}))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _data(6_000, seed=1), _data(3_000, seed=2)


@pytest.fixture(scope="module")
def model(data) -> TrainedModel:
    train, valid = data
    return _train(train, valid, CONSTRAINTS, _params(), seed=7)


def _sweep(model: TrainedModel, rows: np.ndarray, j: int, grid: np.ndarray) -> np.ndarray:
    """Margins of each row with feature j set to every grid value: shape (rows, grid)."""
    X = np.repeat(rows, grid.size, axis=0)
    X[:, j] = np.tile(grid, rows.shape[0])
    return predict_margin(model.booster, X).reshape(rows.shape[0], grid.size)


@pytest.mark.parametrize("method", ["basic", "intermediate", "advanced"])
def test_monotone_constraints_hold_for_every_constrained_feature(data, method):
    """Sweeping a constrained feature over a grid, all else fixed, never moves risk the wrong
    way, for 300 different people, whichever constraint method is configured (the data have
    missing incomes, where LightGBM's intermediate/advanced methods can fail and the
    trainer falls back to basic)."""
    train, valid = data
    model = _train(train, valid, CONSTRAINTS, _params(monotone_constraints_method=method), seed=7)
    rows = feature_matrix(valid, FEATURES)[:300]
    assert np.isnan(rows[:, 1]).any(), "the sweep must include people with a missing income"
    grid = np.linspace(-4.0, 4.0, 81)
    for j, sign in enumerate(CONSTRAINTS):
        if sign == 0:
            continue
        steps = np.diff(_sweep(model, rows, j, grid), axis=1) * sign
        assert steps.min() >= -1e-12, (
            f"{FEATURES[j]} (constraint {sign:+d}, {method}) moves risk the wrong way by "
            f"{-steps.min():.3g} for some person"
        )
        assert steps.sum(axis=1).mean() > 0.5, f"{FEATURES[j]} should still carry its signal"
    assert monotone_violations(model.booster, CONSTRAINTS) == [], "exact tree check must pass"
    assert model.params["monotone_constraints"] == CONSTRAINTS
    assert model.params["monotone_constraints_method"] in (method, "basic")


def test_violation_check_finds_a_non_monotone_effect_the_sweep_also_sees(data):
    """Unconstrained, the model learns sin(2·wiggly); asking the exact check whether wiggly is
    increasing must report violations, and a sweep confirms risk really falls somewhere."""
    train, valid = data
    model = _train(train, valid, None, _params(), seed=7)
    found = monotone_violations(model.booster, [0, 0, 1, 0])
    assert found, "a learnt sine must not pass as increasing"
    assert {v["feature"] for v in found} == {"wiggly"}
    v = found[0]
    assert v["upper_leaf"]["value"] < v["lower_leaf"]["value"], "reported pair is a decrease"
    steps = np.diff(_sweep(model, feature_matrix(valid, FEATURES)[:50], 2, np.linspace(-3, 3, 61)))
    assert steps.min() < 0, "the sweep sees the same decrease"


class _OneTree:
    """A hand-written one-tree model (LightGBM dump format) for the exact checker."""

    def __init__(self, nan_right_then_left: bool) -> None:
        def split(feature, left, right, default_left=True, missing="NaN"):
            return {
                "split_feature": feature,
                "threshold": 0.0,
                "decision_type": "<=",
                "default_left": default_left,
                "missing_type": missing,
                "left_child": left,
                "right_child": right,
            }

        def leaf(value):
            return {"leaf_value": value}

        # x0 <= 0: (x1 <= 0 -> 0, else 2); x0 > 0: (x1 <= 0 -> 1, else 3). Increasing in x0
        # for every real x1. With missing x1 sent right on the left and left on the right,
        # a missing x1 gives 2 then 1: a decrease only people with a missing x1 see.
        self.tree = split(
            0,
            split(1, leaf(0.0), leaf(2.0), default_left=not nan_right_then_left),
            split(1, leaf(1.0), leaf(3.0), default_left=nan_right_then_left),
        )

    def feature_name(self) -> list[str]:
        return ["x0", "x1"]

    def dump_model(self) -> dict:
        return {"tree_info": [{"tree_index": 0, "tree_structure": self.tree}]}


def test_violation_check_sees_a_decrease_that_only_missing_values_reach():
    assert monotone_violations(_OneTree(nan_right_then_left=False), [1, 0]) == []
    found = monotone_violations(_OneTree(nan_right_then_left=True), [1, 0])
    assert len(found) == 1, f"exactly the missing-x1 path breaks monotonicity; got {found}"
    assert (found[0]["lower_leaf"]["value"], found[0]["upper_leaf"]["value"]) == (2.0, 1.0)


def test_a_model_that_breaks_its_constraints_is_retrained_with_the_basic_method(data, monkeypatch):
    """If the configured method leaves a violation, the trainer retrains with "basic" and
    records it; the fake check below reports one violation for any non-basic model."""
    train, valid = data
    real_check = train_module.monotone_violations
    methods_checked = []

    def check(booster, constraints):
        method = booster.params.get("monotone_constraints_method", "?")
        methods_checked.append(method)
        fake = [{"feature": "income"}] if method != "basic" else []
        return fake + real_check(booster, constraints)

    monkeypatch.setattr(train_module, "monotone_violations", check)
    model = _train(train, valid, CONSTRAINTS, _params(monotone_constraints_method="advanced"), 7)
    assert methods_checked == ["advanced", "basic"]
    assert model.params["monotone_constraints_method"] == "basic"


def test_monotone_constraints_can_be_switched_off_by_params(data):
    train, valid = data
    params = _params().model_copy(update={"use_monotone_constraints": False})
    model = _train(train, valid, CONSTRAINTS, params, seed=7)
    assert "monotone_constraints" not in model.params


def test_same_seed_gives_identical_predictions_and_another_seed_does_not(data):
    """With the production thread count (two), the same seed gives a bit-identical model;
    20 rounds keep it quick even when other processes compete for the cores."""
    train, valid = data
    X = feature_matrix(valid, FEATURES)
    params = _params(num_boost_round=20)
    first = train_lightgbm(train, valid, FEATURES, CONSTRAINTS, params, seed=7)
    again = train_lightgbm(train, valid, FEATURES, CONSTRAINTS, params, seed=7)
    assert again.best_iteration == first.best_iteration
    assert np.array_equal(predict_margin(again.booster, X), predict_margin(first.booster, X)), (
        "two trainings with the same data, params and seed must be bit-identical"
    )
    other = train_lightgbm(train, valid, FEATURES, CONSTRAINTS, params, seed=8)
    assert not np.array_equal(predict_margin(other.booster, X), first.predict_margin(X)), (
        "bagging and feature sampling must depend on the seed"
    )


def test_early_stopping_stops_on_noise_and_records_the_learning_curve():
    """Labels independent of the features: validation loss stops improving almost at once."""
    train, valid = _data(3_000, seed=3, signal=False), _data(2_000, seed=4, signal=False)
    params = _params(num_boost_round=500, early_stopping_rounds=15)
    model = _train(train, valid, None, params, seed=0)
    n_rounds = len(model.evals_result["validation"]["binary_logloss"])
    assert n_rounds < 500, "training must stop early on noise"
    assert model.best_iteration == n_rounds - 15, "the best round is 15 rounds before the stop"
    assert model.booster.current_iteration() == model.best_iteration, "trees after it dropped"
    for data_name in ("train", "validation"):
        for metric in ("binary_logloss", "auc"):
            curve = model.evals_result[data_name][metric]
            assert len(curve) == n_rounds, f"{data_name} {metric} curve must have every round"
    train_loss = model.evals_result["train"]["binary_logloss"]
    assert train_loss[-1] < train_loss[0], "the training loss keeps falling (overfitting noise)"


def test_margin_is_the_log_odds_of_the_booster_probability(data, model):
    _, valid = data
    X = feature_matrix(valid, FEATURES)
    p = model.booster.predict(X, num_iteration=model.best_iteration)
    np.testing.assert_allclose(1 / (1 + np.exp(-predict_margin(model.booster, X))), p, rtol=1e-9)


def test_the_model_learns_the_signal(data, model):
    _, valid = data
    margin = predict_margin(model.booster, feature_matrix(valid, FEATURES))
    assert auc(valid["default_12m"], 1 / (1 + np.exp(-margin))) > 0.75


def test_imbalance_reweighting_is_not_used(model):
    """Class re-weighting distorts probabilities; calibration handles the 5% rate instead."""
    assert not {"is_unbalance", "scale_pos_weight"} & set(model.params)
    assert model.params["deterministic"] is True and model.params["force_row_wise"] is True
    assert lightgbm_params(LightGBMParams(), 0, None)["num_threads"] == 2, "production default"


def test_predict_margin_rejects_a_matrix_with_the_wrong_number_of_columns(model):
    with pytest.raises(ValueError, match="4 feature columns"):
        predict_margin(model.booster, np.zeros((2, 3)))


def test_predict_margin_is_the_same_on_one_thread_or_many_and_at_any_iteration(data, model):
    """One row at a time (one thread) gives bit for bit the batch's margins (all cores);
    num_iteration=None is the booster's best iteration, and an explicit one is honoured."""
    _, valid = data
    X = feature_matrix(valid, FEATURES)[: 3 * SINGLE_THREAD_ROWS]
    batch = predict_margin(model.booster, X)
    singles = np.concatenate([predict_margin(model.booster, X[i : i + 1]) for i in range(len(X))])
    assert np.array_equal(batch, singles)
    assert np.array_equal(batch, predict_margin(model.booster, X, num_threads=1))
    best = model.booster.best_iteration
    assert best > 0 and np.array_equal(batch, predict_margin(model.booster, X, best))
    assert not np.array_equal(batch, predict_margin(model.booster, X, 1)), "first tree only"


def test_a_missing_feature_column_is_a_key_error_and_a_value_error_with_a_plain_message(data):
    """One check for every caller: training (KeyError), the bundle and batch (ValueError)."""
    _, valid = data
    with pytest.raises(FeatureInputError) as err:
        feature_matrix(valid.drop(columns=["income", "noise"]), FEATURES)
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    assert str(err.value) == "missing 2 feature column(s): income, noise", "not KeyError's repr"


def test_constraint_list_must_match_the_features(data):
    train, valid = data
    with pytest.raises(ValueError, match="one monotone constraint per feature"):
        _train(train, valid, [1, -1], _params(), seed=0)
    with pytest.raises(ValueError, match="-1, 0 or"):
        _train(train, valid, [2, 0, 0, 0], _params(), seed=0)


def test_missing_labels_are_refused(data):
    train, valid = data
    bad = train.copy()
    bad.loc[0, "default_12m"] = pd.NA
    with pytest.raises(ValueError, match="no default_12m"):
        _train(bad, valid, None, _params(), seed=0)


def test_tuning_is_seeded_keeps_the_default_as_trial_zero_and_respects_n_trials():
    train, valid = _data(2_000, seed=11), _data(1_000, seed=12)
    params = _params(num_boost_round=60).model_copy(
        update={"tune": TuneParams(enabled=True, n_trials=3)}
    )
    best, trials = tune_lightgbm(train, valid, FEATURES, CONSTRAINTS, params, seed=5, num_threads=1)
    assert len(trials) == 3
    assert trials[0]["params"]["num_leaves"] == params.lightgbm.num_leaves
    assert best.model_dump() in [
        params.lightgbm.model_copy(update=t["params"]).model_dump() for t in trials
    ]
    best_loss = min(t["valid_logloss"] for t in trials)
    assert best_loss <= trials[0]["valid_logloss"], "tuning never ends worse than the default"
    _, again = tune_lightgbm(train, valid, FEATURES, CONSTRAINTS, params, seed=5, num_threads=1)
    assert [t["params"] for t in again] == [t["params"] for t in trials], "same seed, same trials"


def test_tuning_stops_at_the_time_budget():
    train, valid = _data(2_000, seed=11), _data(1_000, seed=12)
    params = _params(num_boost_round=20).model_copy(
        update={"tune": TuneParams(enabled=True, n_trials=50, time_budget_s=1e-9)}
    )
    _, trials = tune_lightgbm(train, valid, FEATURES, None, params, seed=5, num_threads=1)
    assert len(trials) == 1, "a spent budget stops after the default trial"


@pytest.mark.slow
def test_end_to_end_on_the_simulated_world():
    """Simulator -> features -> out-of-time split -> LightGBM with the registry's monotone
    constraints (default "advanced" method, so the fallback is exercised when needed) ->
    calibration: the constraints hold exactly and the test cohort is ranked and calibrated."""
    from credit_scoring.config import BaseParams, SimulateParams, SplitParams
    from credit_scoring.data.simulate import simulate_world
    from credit_scoring.features.compute import compute_features
    from credit_scoring.features.registry import feature_names, monotone_constraints
    from credit_scoring.modelling.calibrate import choose_calibrator
    from credit_scoring.modelling.metrics import ece
    from credit_scoring.modelling.split import out_of_time_split

    data, _ = simulate_world(SimulateParams(n_users=6_000), BaseParams())
    table = compute_features(data)
    table["default_12m"] = data.outcomes["default_12m"].reset_index(drop=True)
    names = feature_names()
    constraints = monotone_constraints(names)
    split = out_of_time_split(table, SplitParams())
    model = train_lightgbm(
        split.train,
        split.validation,
        names,
        constraints,
        TrainParams(lightgbm=LightGBMParams(learning_rate=0.1, early_stopping_rounds=30)),
        seed=42,
        num_threads=1,
    )
    assert monotone_violations(model.booster, constraints) == []
    calibrator, _ = choose_calibrator(
        predict_margin(model.booster, feature_matrix(split.calibration, names)),
        split.calibration["default_12m"].to_numpy(dtype=float),
        "auto",
        n_bins=10,
        seed=42,
    )
    y = split.test["default_12m"].to_numpy(dtype=float)
    p = calibrator.predict(predict_margin(model.booster, feature_matrix(split.test, names)))
    assert auc(y, p) > 0.7, f"test-cohort AUC {auc(y, p):.3f}"
    assert ece(y, p, 10) < 0.03, f"test-cohort ECE {ece(y, p, 10):.4f}"


# --- small data works or fails loudly (issue #12) ------------------------------------


def test_auto_sizes_scale_with_the_training_rows():
    """auto gives the full-size defaults on the default world's 30,000 training rows and
    small trees on 400, so a small ledger can split at all."""
    from credit_scoring.modelling.train import size_params

    auto = LightGBMParams(num_leaves="auto", min_child_samples="auto")
    assert size_params(auto, 30_000) == (15, 100)
    assert size_params(auto, 29_600) == (15, 100), "the default world's ~30,000 rows: unchanged"
    assert size_params(auto, 400) == (4, 5)
    assert size_params(LightGBMParams(num_leaves=31, min_child_samples=7), 400) == (31, 7)
    got = lightgbm_params(auto, 0, None, n_train=2_400)
    assert (got["num_leaves"], got["min_data_in_leaf"]) == (15, 10)


def test_small_data_splits_with_auto_and_never_with_min_child_samples_100():
    """128 rows: with min_child_samples 100 no tree splits and training stops in one
    line; with auto the model learns and passes the check."""
    from credit_scoring.modelling.train import LearningError, learning_check

    train, valid = _data(128, seed=3), _data(400, seed=4)
    fixed = _train(train, valid, None, _params(min_child_samples=100), seed=0)
    margin = fixed.predict_margin(feature_matrix(valid, FEATURES))
    with pytest.raises(LearningError, match=r"never split \(128 training rows\)") as err:
        learning_check(fixed.booster, margin, valid["default_12m"].to_numpy(float), 128)
    assert "\n" not in str(err.value)
    auto = _train(train, valid, None, _params(min_child_samples="auto", num_leaves="auto"), 0)
    margin = auto.predict_margin(feature_matrix(valid, FEATURES))
    report = learning_check(auto.booster, margin, valid["default_12m"].to_numpy(float), 128)
    assert report["splits"] > 0 and report["validation_auc"]["low"] > 0.5


def test_a_model_no_better_than_chance_stops_training():
    """Labels independent of the features: the validation AUC's interval includes 0.5."""
    from credit_scoring.modelling.train import LearningError, learning_check

    train, valid = _data(3_000, seed=5, signal=False), _data(600, seed=6, signal=False)
    model = _train(train, valid, None, _params(min_child_samples=20), seed=0)
    margin = model.predict_margin(feature_matrix(valid, FEATURES))
    y = valid["default_12m"].to_numpy(float)
    with pytest.raises(LearningError, match=r"no better than chance"):
        learning_check(model.booster, margin, y, len(train))


def test_progress_callback_follows_the_boosting_rounds_without_changing_the_model(data, model):
    """The CLI's train bar: ``progress(round, num_boost_round)`` every 10 rounds, rising,
    and the same trees as a fit without it (the callback only watches)."""
    from credit_scoring.modelling.train import progress_callback

    train, valid = data
    seen: list[tuple[int, int | None]] = []
    watched = train_lightgbm(
        train, valid, FEATURES, CONSTRAINTS, _params(), 7, 1,
        [progress_callback(lambda done, total: seen.append((done, total)))],
    )  # fmt: skip
    assert seen and all(total == 300 for _, total in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and all(d % 10 == 0 for d in done)
    assert done[-1] >= watched.best_iteration - 10
    np.testing.assert_array_equal(
        watched.booster.predict(valid[FEATURES].to_numpy()),
        model.booster.predict(valid[FEATURES].to_numpy()),
    )
