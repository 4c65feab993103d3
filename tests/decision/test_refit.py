"""The deployed model (decision/refit.py) and the choices made while building: the refit
learns from every labelled cohort with the validated model's settings, ``refit_on_all:
false`` deploys the validated model itself, and no choice (early stopping, tuning, the
calibration method) reads the test cohort: perturbing the test rows changes none."""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import pytest

from credit_scoring.config import CalibrateParams, Params
from credit_scoring.decision import bundle as bundle_mod
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.refit import deploy
from credit_scoring.features.registry import feature_names
from credit_scoring.modelling.split import out_of_time_split
from credit_scoring.modelling.train import local_trainer, monotone_violations, tune_lightgbm
from credit_scoring.schemas import LABEL

PARAMS = Params()


def _model(train_params, method="sigmoid") -> CreditModel:
    return CreditModel(
        feature_names(),
        train_params=train_params,
        calibrate_params=CalibrateParams(method=method, ece_bins=10),
        seed=0,
    )


def _train_params(**update):
    lgbm = PARAMS.train.lightgbm.model_copy(update={"num_boost_round": 80, "learning_rate": 0.1})
    return PARAMS.train.model_copy(update={"lightgbm": lgbm, **update})


@pytest.fixture(scope="module")
def split(small_world):
    return out_of_time_split(small_world[2], PARAMS.split)


@pytest.fixture(scope="module")
def deployed(split):
    validated = _model(_train_params()).fit(split, local_trainer(num_threads=1))
    model, record = deploy(validated, split, _train_params())
    return validated, model, record


def test_refit_learns_from_every_labelled_cohort_with_the_validated_settings(split, deployed):
    """Row counts: booster on train + validation + calibration, calibrator on the test
    cohort; same LightGBM parameters and monotone constraints (checked tree by tree);
    rounds = the validated best iteration (default rule); the test-cohort ranking agrees."""
    validated, model, record = deployed
    sizes = split.sizes()
    fit = record["refit_fit"]
    assert record["deployed"] == "refit" and model is not validated
    assert fit["rows"] == sizes, "every slice's rows are in the refit"
    assert model.calibrator.method == validated.calibrator.method
    assert len(model.calibrator.to_dict()) > 0
    same = {k: v for k, v in validated.metadata["lightgbm_params"].items()}
    assert model.metadata["lightgbm_params"] == same
    assert model.metadata["monotone_constraints"] == validated.metadata["monotone_constraints"]
    constraints = list(model.metadata["monotone_constraints"].values())
    assert monotone_violations(model.booster, constraints) == []
    assert PARAMS.train.refit_rounds == "unchanged"
    expected = validated.best_iteration
    assert model.best_iteration == model.booster.current_iteration() == expected
    assert record["test_rank_correlation"] >= PARAMS.train.refit_min_correlation


def test_the_refit_calibrator_saw_only_rows_the_booster_did_not(split, deployed):
    """The calibration slice of the refit is the test cohort; its booster's dates exclude it."""
    _, model, _ = deployed
    cohorts = model.metadata["cohorts"]
    assert set(cohorts["calibration"]) == {str(d) for d in split.cohorts["test"]}
    assert set(cohorts["train"]).isdisjoint(cohorts["calibration"])
    assert model.training["calibration"]["n"] == len(split.test)


def test_refit_off_deploys_the_validated_model_itself(split, deployed, tmp_path):
    """``train.refit_on_all: false``: the deployed model is the validated one (today's
    behaviour): same object, same saved booster."""
    validated, _, _ = deployed
    model, record = deploy(validated, split, _train_params(refit_on_all=False))
    assert model is validated and record["deployed"] == "validated"
    validated.save(tmp_path / "a")
    model.save(tmp_path / "b")
    assert (tmp_path / "a/booster.txt").read_text() == (tmp_path / "b/booster.txt").read_text()


# --- choices made while building never read the test cohort ---------------------------


@pytest.fixture(scope="module")
def choices(split):
    """The same fit (tuning on, calibration auto) on the split and on the split whose test
    rows are destroyed (labels flipped, features shuffled across rows). One LightGBM
    thread (an execution setting: the shared test machine is oversubscribed)."""
    rng = np.random.default_rng(3)
    test = split.test.copy()
    test[LABEL] = 1 - test[LABEL]
    names = feature_names()
    test[names] = test[names].to_numpy()[rng.permutation(len(test))]
    perturbed = dataclasses.replace(split, test=test)
    params = _train_params(
        tune=PARAMS.train.tune.model_copy(update={"enabled": True, "n_trials": 2})
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bundle_mod, "tune_lightgbm", partial(tune_lightgbm, num_threads=1))
        mp.setattr(bundle_mod, "local_trainer", partial(local_trainer, 1))
        return [_model(params, "auto").fit(s) for s in (split, perturbed)]


def test_early_stopping_does_not_read_the_test_cohort(choices):
    """The best iteration and the learning curve are identical with destroyed test rows."""
    a, b = choices
    assert a.best_iteration == b.best_iteration
    assert a.training["evals_result"] == b.training["evals_result"]


def test_tuning_does_not_read_the_test_cohort(choices):
    """Every tuning trial's parameters and validation loss are identical."""
    a, b = choices
    assert a.training["tuning_trials"] and [
        {k: v for k, v in t.items() if k != "seconds"} for t in a.training["tuning_trials"]
    ] == [{k: v for k, v in t.items() if k != "seconds"} for t in b.training["tuning_trials"]]


def test_the_calibration_method_choice_does_not_read_the_test_cohort(choices):
    """calibrate.method auto picks the same method with the same fitted map."""
    a, b = choices
    assert a.training["calibration"]["method_requested"] == "auto"
    assert a.calibrator.method == b.calibrator.method
    assert a.calibrator.to_dict() == b.calibrator.to_dict()


def test_a_refit_whose_calibrator_would_invert_the_ranking_is_refused_in_one_line(split, deployed):
    """A test cohort on which the refit's margin ranks defaults backwards (labels given to
    the people it finds safest) cannot calibrate it: RefitError, one line, no model."""
    from credit_scoring.modelling.refit import RefitError

    validated, _, _ = deployed
    test = split.test.copy()
    margin = validated.margin(validated.feature_matrix(test))
    test[LABEL] = (margin < np.quantile(margin, 0.1)).astype(float)
    with pytest.raises(RefitError, match="calibrator cannot be fit") as err:
        deploy(validated, dataclasses.replace(split, test=test), _train_params())
    assert "\n" not in str(err.value)
