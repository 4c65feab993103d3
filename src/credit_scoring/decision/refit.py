"""The deployed model: the validated one, or its refit on every labelled cohort.

:func:`deploy` is the one place that decides (``train.refit_on_all``); the scheme, the
rounds rule and why the calibrator is fit on the test cohort are in
:mod:`credit_scoring.modelling.refit`. Both models carry a ``fit`` record in their metadata
(which rows they were fit on) so the gate never compares a model on rows it saw.
"""

from __future__ import annotations

import logging
from typing import Any

from credit_scoring.config import TrainParams
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.modelling import refit as rf
from credit_scoring.modelling.calibrate import CalibrationError
from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import feature_matrix

logger = logging.getLogger(__name__)

VALIDATED = "validated"
REFIT = "refit"


def refit_model(validated: CreditModel, split: Split, params: TrainParams) -> CreditModel:
    """The validated model refit on every labelled cohort (booster on all but the test
    cohort, calibrator on it), same LightGBM parameters, monotone constraints and
    calibration method; rounds by ``params.refit_rounds``."""
    data = rf.refit_split(split)
    rounds = rf.refit_rounds(
        validated.best_iteration,
        len(split.train),
        len(data.train),
        params.refit_rounds,
        params.lightgbm.num_boost_round,
    )
    trainer = rf.fixed_rounds_trainer(
        validated.metadata["lightgbm_params"], rounds, encodes=bool(validated.encoding)
    )
    model = CreditModel(
        validated.feature_names,
        score_params=validated.score_params,
        decision_params=validated.decision_params,
        # the tuned parameters are already in lightgbm_params: no second search
        train_params=validated.train_params.model_copy(
            update={"tune": validated.train_params.tune.model_copy(update={"enabled": False})}
        ),
        calibrate_params=validated.calibrate_params.model_copy(
            update={"method": validated.calibrator.method}
        ),
        seed=validated.seed,
        catalogue=validated.catalogue,
    )
    model.fit(data, trainer)
    model.metadata["fit"] = rf.fit_record(split, REFIT)
    model.metadata["refit_rounds"] = {"rule": params.refit_rounds, "rounds": rounds}
    return model


def deploy(
    validated: CreditModel, split: Split, params: TrainParams
) -> tuple[CreditModel, dict[str, Any]]:
    """The model to deploy and the record of it (train_log's ``deployment``).

    ``params.refit_on_all`` false: the validated model itself (today's behaviour). True:
    :func:`refit_model`, refused in one line (:class:`~credit_scoring.modelling.refit.
    RefitError`) when it ranks the test cohort unlike the validated model.
    """
    validated.metadata["fit"] = rf.fit_record(split, VALIDATED)
    record: dict[str, Any] = {
        "deployed": VALIDATED,
        "bundle": "models/bundle",
        "validated_bundle": "models/validated_bundle",
        "validated_fit": validated.metadata["fit"],
    }
    if not params.refit_on_all:
        record["why"] = "train.refit_on_all: false: the validated model is deployed"
        return validated, record
    try:
        deployed = refit_model(validated, split, params)
    except CalibrationError as err:  # e.g. too few defaults in the test cohort to calibrate
        raise rf.RefitError(
            f"the refit's calibrator cannot be fit on the test cohort: {err} "
            "(set train.refit_on_all: false to deploy the validated model)"
        ) from None
    X = feature_matrix(split.test, validated.feature_names)
    rho = rf.rank_agreement(validated.margin(X), deployed.margin(X))
    rf.check_agreement(rho, params.refit_min_correlation, len(split.test))
    logger.info(
        "refit on every labelled cohort: %d rounds, test-cohort Spearman %.3f with the "
        "validated model",
        deployed.best_iteration,
        rho,
    )
    record |= {
        "deployed": REFIT,
        "why": "train.refit_on_all: true: the validated model measured on the test cohort, "
        "then refit on every labelled cohort (booster: train + validation + calibration, "
        "calibrator: test cohort); its test-cohort numbers are not evidence",
        "refit_fit": deployed.metadata["fit"],
        "refit_rounds": deployed.metadata["refit_rounds"],
        "validated_best_iteration": validated.best_iteration,
        "calibration_method": deployed.calibrator.method,
        "test_rank_correlation": rho,
        "min_rank_correlation": params.refit_min_correlation,
    }
    return deployed, record


def development_choices(params: TrainParams, calibrate_method: str) -> dict[str, str]:
    """Which slice each choice made while building read (train_log's and metrics.json's
    ``choices``): never the test cohort. The robustness stage records its own
    (``robustness.json``'s ``slice``: the development slice by default)."""
    return {
        "early_stopping": "validation",
        "tuning": "validation" if params.tune.enabled else "off",
        "calibration_method": f"calibration ({calibrate_method})",
        "refit_rounds": (
            f"validation (validated best iteration, rule {params.refit_rounds})"
            if params.refit_on_all
            else "off"
        ),
        "test": "measurement only (evaluate, the gate: the validated model)"
        + ("; the refit's calibrator is fit on it after" if params.refit_on_all else ""),
    }
