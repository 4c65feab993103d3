"""The train stage: LightGBM out of time with monotone constraints, its calibrator, and the
WoE baseline scorecard.

Split by observation date (oldest train, then validation for early stopping, then
calibration, newest test). Writes the deployable bundle ``models/bundle`` (booster,
calibrator, score scale and limit policy), per-slice predictions, the training log (the
learning curve, the cohorts of each slice) and the baseline scorecard table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from credit_scoring import cluster
from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data import catalogue as byof_catalogue
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.features.registry import feature_names
from credit_scoring.io import write_json, write_parquet
from credit_scoring.modelling.baseline import WoEScorecard
from credit_scoring.modelling.dask_train import dask_trainer
from credit_scoring.modelling.split import SLICES, Split, out_of_time_split
from credit_scoring.modelling.train import feature_matrix, labels
from credit_scoring.schemas import DATE, LABEL
from credit_scoring.stages import StageError


def run(params: Params) -> dict[str, Any]:
    """Fit and write the model; returns the slice sizes, best iteration, calibration method."""
    paths = Paths.from_params(params)
    table = pd.read_parquet(paths.features)
    names = feature_names(params.features.windows)
    catalogue = []  # features brought by the lender: their names and declared meaning
    if byof_catalogue.is_byof(paths.features_dir):
        catalogue = [
            m for m in byof_catalogue.read_catalogue(paths.features_dir) if not m.protected
        ]
        names = [m.name for m in catalogue]
    try:
        split = out_of_time_split(table, params.split)
    except ValueError as err:
        raise StageError(str(err)) from None
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
    if params.engine == "dask":
        with cluster.dask_client(params.dask) as client:
            # workers read the feature file too
            model.fit(split, dask_trainer(client, str(paths.features)))
    else:
        model.fit(split)
    model.save(paths.bundle)
    baseline = WoEScorecard(
        max_bins=params.train.baseline_max_bins,
        C=params.train.baseline_C,
        random_state=params.base.seed,
    ).fit(split.train[names], labels(split.train))
    write_parquet(predictions(model, baseline, split), paths.predictions)
    write_json(
        {
            **model.training,
            "engine": params.engine,
            "slices": split.sizes(),
            "cohorts": {k: [str(d) for d in v] for k, v in split.cohorts.items()},
        },
        paths.train_log,
    )
    write_parquet(baseline.bin_table(), paths.baseline_table)
    return {
        "train / valid / calib / test rows": " / ".join(f"{n:,}" for n in split.sizes().values()),
        "best iteration": model.best_iteration,
        "calibration": model.calibrator.method,
    }


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
