"""The train stage: LightGBM with monotone constraints, its calibrator, and the WoE
baseline scorecard.

Split as ``split`` in params says (:func:`~credit_scoring.modelling.split.make_split`: out
of time by calendar period or cut-off dates when the data allows it, else in time for one
snapshot; a one-line refusal naming the counts when neither fits). A model that never
splits or ranks no better than chance on validation stops here in one line. Writes the
validated model ``models/validated_bundle`` and the deployable bundle ``models/bundle``
(booster, calibrator, score scale and limit policy: the validated model refit on every
labelled cohort when ``train.refit_on_all``, see :mod:`credit_scoring.decision.refit`),
per-slice predictions, the training log (the learning curve, the split and the cohorts of
each slice) and the baseline scorecard table.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring import cluster
from credit_scoring.artefacts import Paths
from credit_scoring.audit.selection_bias import fit_with_method
from credit_scoring.config import Params
from credit_scoring.data import catalogue as byof_catalogue
from credit_scoring.data import validated
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.refit import deploy, development_choices
from credit_scoring.features.registry import feature_names
from credit_scoring.io import write_json, write_parquet
from credit_scoring.modelling.baseline import WoEScorecard, fit_baseline
from credit_scoring.modelling.dask_train import dask_trainer
from credit_scoring.modelling.refit import RefitError
from credit_scoring.modelling.reject_inference import declined_rows
from credit_scoring.modelling.split import SLICES, Split, SplitError, make_split
from credit_scoring.modelling.train import (
    LearningError,
    feature_matrix,
    labels,
    learning_check,
    local_trainer,
    progress_callback,
)
from credit_scoring.monitoring.reference import reference_from_model
from credit_scoring.schemas import DATE, LABEL
from credit_scoring.stages import Progress, StageError
from credit_scoring.tracking import runs


def run(params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Fit and write the model inside the MLflow run of this training (continued by
    register); returns the slice sizes, best iteration, calibration method and the run.
    ``progress(round, rounds)`` follows the boosting rounds (local engine)."""
    with runs.training_run(params) as live:
        return _run(params, live, progress)


def _run(
    params: Params, live: runs.TrainingRun, progress: Progress | None = None
) -> dict[str, Any]:
    paths = Paths.from_params(params)
    table = pd.read_parquet(paths.features)
    runs.log_features(table, paths.features)
    names = feature_names(params.features.windows)
    catalogue = []  # features brought by the lender: their names and declared meaning
    if byof_catalogue.is_byof(paths.features_dir):
        catalogue = [
            m for m in byof_catalogue.read_catalogue(paths.features_dir) if not m.protected
        ]
        names = [m.name for m in catalogue]
    try:
        split = make_split(table, params.split, params.base.seed)
    except SplitError as err:
        raise StageError(str(err)) from None
    if params.engine == "dask" and not _train_dates_whole(table, split):
        # Dask workers read the training rows by date (dask_train), so every labelled row
        # at a training date must be a training row.
        raise StageError(
            f"engine: dask needs a split whose training dates hold only training rows; this "
            f"{split.method} split shares them with other slices (people grouped or drawn "
            "in time): use engine: local, or split.group_by_person: false"
        )
    if params.engine == "dask" and params.train.tune.enabled:
        raise StageError("train.tune.enabled is not supported with engine: dask")
    model = CreditModel(
        names,
        score_params=params.score,
        decision_params=params.decision,
        train_params=params.train,
        calibrate_params=params.calibrate,
        seed=params.base.seed,
        catalogue=catalogue,
    )
    declined = declined_rows(table, _decisions(paths))  # a past policy's declined (issue #18)
    method = params.train.reject_inference
    if params.engine == "dask":
        if method != "none" and not declined.empty:
            raise StageError("train.reject_inference needs engine: local (weighted rows)")
        with cluster.dask_client(params.dask) as client:
            # workers read the feature file too
            model.fit(split, dask_trainer(client, str(paths.features)))
        inference = {"method": method, "declined_rows": len(declined)}
    else:
        bar = [progress_callback(progress)] if progress is not None else []
        trainer = local_trainer(callbacks=[*live.callbacks(), *bar])
        new_model = lambda: copy.deepcopy(model)  # noqa: E731 (the same settings, unfitted)
        model, inference = fit_with_method(
            new_model, split, declined, method, params.base.seed, fit=lambda m, s: m.fit(s, trainer)
        )
    live.finish(model.training["evals_result"])
    learned = check_learning(model, split, params.train.stop_if_chance)
    refit_params = params.train
    if method != "none" and not declined.empty:
        # the refit knows no inferred rows: deploying it would drop the correction
        refit_params = params.train.model_copy(update={"refit_on_all": False})
    try:  # the validated model, or its refit on every labelled cohort (decision/refit.py)
        deployed, deployment = deploy(model, split, refit_params)
    except RefitError as err:
        raise StageError(str(err)) from None
    if refit_params is not params.train:
        deployment["why"] = (
            f"train.reject_inference: {method} with {len(declined):,} declined applicants: "
            "the validated model (trained with the inferred rows) is deployed, not a refit"
        )
    model.save(paths.validated_bundle)
    deployed.save(paths.bundle)
    baseline = fit_baseline(split, names, params.train, params.base.seed)
    write_parquet(predictions(model, baseline, split), paths.predictions)
    write_json(
        {
            **model.training,
            "engine": params.engine,
            "slices": split.sizes(),
            "cohorts": split.selector(),
            "split": split.describe(),
            "learning": learned,
            "deployment": deployment,
            "choices": development_choices(params.train, params.calibrate.method),
            runs.RUN_ID_KEY: live.run_id,
            "reject_inference": inference,
        },
        paths.train_log,
    )
    write_parquet(baseline.bin_table(), paths.baseline_table)
    # The monitor's training reference: bins frozen now (README "Monitoring in production"),
    # of the model that decides in production (the deployed one).
    reference = reference_from_model(
        deployed,
        split.train,
        params.monitor.psi_bins,
        params.monitor.reference_sample,
        params.base.seed,
        {
            "train_default_rate": float(labels(split.train).mean()),
            "validation_auc_low": learned.get("validation_auc", {}).get("low"),
        },
    )
    write_json(reference, paths.monitoring_reference)
    return {
        "split": f"{split.evidence} ({split.why})",
        "train / valid / calib / test rows": " / ".join(f"{n:,}" for n in split.sizes().values()),
        "best iteration": model.best_iteration,
        "calibration": model.calibrator.method,
        "deployed": deployment["deployed"],
        "mlflow run": live.run_id,
        "reject inference": f"{method} ({len(declined):,} declined applicants)",
    }


def _decisions(paths: Paths) -> pd.DataFrame | None:
    """The historical decisions of the validated outcomes, if they carry any."""
    if not Path(validated.table_path(paths.validated_dir, "outcomes")).is_file():
        return None  # features brought by the lender: no outcomes table
    return validated.read_table(paths.validated_dir, "outcomes")


def _train_dates_whole(table: pd.DataFrame, split: Split) -> bool:
    """Is every labelled row observed at a training date in the training slice?"""
    dates = pd.to_datetime(pd.Series([str(d) for d in split.cohorts["train"]]))
    at = table[LABEL].notna().to_numpy() & pd.to_datetime(table[DATE]).isin(dates).to_numpy()
    return int(at.sum()) == len(split.train)


def check_learning(model: CreditModel, split: Split, stop: bool) -> dict[str, Any]:
    """The validation AUC with its interval and the number of splits; with ``stop`` a model
    that never splits or ranks no better than chance is a one-line :class:`StageError`."""
    margin = model.margin(feature_matrix(split.validation, model.feature_names))
    y = labels(split.validation)
    try:
        return learning_check(model.booster, margin, y, len(split.train))
    except LearningError as err:
        if stop:
            raise StageError(str(err)) from None
        return {"warning": str(err)}


def predictions(model: CreditModel, baseline: WoEScorecard, split: Split) -> pd.DataFrame:
    """Every slice's margin, PD before and after calibration and the baseline's PD: the
    ``models/predictions.parquet`` of :data:`credit_scoring.artefacts.PREDICTION_COLUMNS`."""
    names = model.feature_names
    frames = []
    for slice_name in SLICES:
        df = getattr(split, slice_name)
        margin = model.margin(feature_matrix(df, names))
        frames.append(
            pd.DataFrame(
                {
                    "slice": slice_name,
                    "person_id": df["person_id"].to_numpy(),
                    DATE: df[DATE].to_numpy(),
                    LABEL: labels(df).astype(np.int8),
                    "margin": margin,
                    "pd_uncalibrated": 1.0 / (1.0 + np.exp(-margin)),
                    "pd": model.calibrator.predict(margin),
                    "pd_baseline": baseline.predict_proba(df[names])[:, 1],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
