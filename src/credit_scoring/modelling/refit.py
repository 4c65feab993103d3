"""Refitting the deployed model on every labelled cohort after validation (pure pieces).

The validated model is fit on the oldest cohorts (booster on ``train``, early stopping on
``validation``, calibrator on ``calibration``) and measured on the untouched ``test``
cohort: that is the evidence. The people scored next are newer still, so the model put in
front of them should learn from the newest labelled rows too. The refit does:

- **booster** on ``train + validation + calibration`` (every labelled row but the test
  cohort's), with the validated model's exact LightGBM parameters (sizes resolved for the
  training slice, monotone constraints and their method, split-gain weights, seeds) and a
  fixed number of rounds (:func:`refit_rounds`): there is no held-out slice left to stop on;
- **calibrator** on the ``test`` cohort, with the method the validated model chose.

Why this calibration scheme: a calibration map must be fit on rows the booster did not
see (on its own training rows a booster is over-confident, so the map would flatten the
PDs of new people), and it should be fit on the newest rows, whose default rate is the
closest to the people scored next. Holding out the newest cohort for the calibrator is
the one scheme that uses every labelled row, keeps the calibrator's rows unseen by the
booster, and calibrates the very booster that is deployed. (Cross-fitted calibration
would fit the map on the margins of K other boosters, not of the one deployed.)

The refit has seen the test cohort, so its numbers on it are not evidence: evaluate and the
gate measure the validated model, which is kept beside it (``models/validated_bundle``).
:func:`fit_record` states which rows each model was fit on, so the gate can re-score a
champion only on rows it never saw (:func:`credit_scoring.audit.gate.unseen_rows`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import (
    TrainedModel,
    feature_matrix,
    fit_monotone,
    labels,
)
from credit_scoring.schemas import DATE, ROW_KEY

#: The slices the refit booster learns from, and the one its calibrator is fit on.
REFIT_BOOSTER_SLICES: tuple[str, ...] = ("train", "validation", "calibration")
REFIT_CALIBRATION_SLICES: tuple[str, ...] = ("test",)
#: What the validated model's booster (train, early stopping) and calibrator were fit on.
VALIDATED_BOOSTER_SLICES: tuple[str, ...] = ("train", "validation")
VALIDATED_CALIBRATION_SLICES: tuple[str, ...] = ("calibration",)


class RefitError(ValueError):
    """The refit cannot be trusted (it ranks people unlike the validated model): one line."""


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in (DATE, ROW_KEY[0]) if c in frame.columns]
    return frame.sort_values(cols, kind="stable").reset_index(drop=True)


def refit_split(split: Split) -> Split:
    """The split the refit is fit with: ``train`` = train + validation + calibration rows,
    ``calibration`` = the test cohort, ``test`` empty (nothing is left to test the refit
    on: its evidence is the validated model's). ``validation`` keeps the validation rows
    only because the fitting code encodes them; the refit trainer never reads them."""
    booster_rows = _ordered(
        pd.concat([getattr(split, s) for s in REFIT_BOOSTER_SLICES], ignore_index=True)
    )
    dates = sorted({d for s in REFIT_BOOSTER_SLICES for d in split.cohorts[s]})
    return Split(
        train=booster_rows,
        validation=split.validation,
        calibration=split.test,
        test=split.test.iloc[:0],
        cohorts={
            "train": dates,
            "validation": [],
            "calibration": list(split.cohorts["test"]),
            "test": [],
        },
        n_unlabelled=split.n_unlabelled,
        method=split.method,
        why=f"refit on every labelled cohort after validation ({split.why})",
        spec=dict(split.spec),
        n_excluded=split.n_excluded,
    )


def refit_rounds(
    best_iteration: int, n_train: int, n_refit: int, rule: str, max_rounds: int
) -> int:
    """Boosting rounds of the refit booster.

    ``unchanged`` (default): the validated best iteration, the count early stopping chose
    on rows the booster did not see; the refit's leaf sizes are the validated ones too, so
    the trees are alike and only better estimated. ``rows_ratio``: that x ``n_refit /
    n_train`` (at most ``max_rounds``), the usual rule when more rows are thought to carry
    more rounds. On a 24,000-person world with a held-out newer cohort (README) neither
    differed from the validated model beyond noise and ``unchanged`` scored higher in three
    of four runs, so it is the default: no rounds are added that nothing validated.
    """
    if best_iteration < 1 or n_train < 1:
        raise ValueError(f"best_iteration and n_train must be >= 1; got {best_iteration}/{n_train}")
    if rule == "unchanged":
        return int(best_iteration)
    if rule != "rows_ratio":
        raise ValueError(f"refit_rounds must be rows_ratio or unchanged; got {rule!r}")
    return int(min(max_rounds, max(1, round(best_iteration * n_refit / n_train))))


def fixed_rounds_trainer(lgb_params: dict[str, Any], num_rounds: int, encodes: bool):
    """A trainer (:data:`credit_scoring.modelling.train.Trainer`) that fits ``num_rounds``
    rounds with exactly ``lgb_params`` on the split's ``train`` rows, no early stopping,
    and proves the trees monotone (:func:`fit_monotone`). ``encodes``: the model encodes
    missing and thin values before the booster (as the validated model did)."""

    def fit(
        split: Split,
        names: Sequence[str],
        constraints: Sequence[int] | None,
        params: Any,
        seed: int,
    ) -> TrainedModel:
        X = feature_matrix(split.train, names)
        y = labels(split.train)
        start = time.perf_counter()

        def one(p: dict[str, Any]) -> tuple[lgb.Booster, dict[str, Any]]:
            data = lgb.Dataset(X, label=y, feature_name=list(names), free_raw_data=False)
            return lgb.train(p, data, num_boost_round=num_rounds), {}

        booster, used, _ = fit_monotone(one, dict(lgb_params), constraints)
        return TrainedModel(
            booster=booster,
            feature_names=list(names),
            best_iteration=num_rounds,
            evals_result={},
            params=used,
            train_seconds=time.perf_counter() - start,
        )

    fit.encodes_features = encodes  # type: ignore[attr-defined]
    return fit


def rows_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a table's row keys (person, observation date), order-free: names a set of
    rows without storing who is in it."""
    keys = frame[list(ROW_KEY)].astype(str).agg("|".join, axis=1).sort_values()
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def fit_record(split: Split, role: str) -> dict[str, Any]:
    """Which rows a model was fit on, kept in its bundle's metadata (``fit``).

    ``dates``: every observation date of a row its booster, early stopping or calibrator
    read; ``heldout_test``: the fingerprint of the test cohort it never saw (None for the
    refit, which saw every labelled row). The gate re-scores a champion only on rows
    outside these dates, or on exactly its held-out test (:func:`unseen_rows` in
    ``audit/gate.py``).
    """
    if role == "validated":
        booster, calibration = VALIDATED_BOOSTER_SLICES, VALIDATED_CALIBRATION_SLICES
        heldout: str | None = rows_fingerprint(split.test)
    elif role == "refit":
        booster, calibration, heldout = REFIT_BOOSTER_SLICES, REFIT_CALIBRATION_SLICES, None
    else:
        raise ValueError(f"role must be validated or refit; got {role!r}")
    frames = [getattr(split, s) for s in (*booster, *calibration)]
    dates = sorted({str(pd.Timestamp(d).date()) for f in frames for d in f[DATE].unique()})
    return {
        "role": role,
        "booster_slices": list(booster),
        "calibration_slices": list(calibration),
        "rows": {s: len(getattr(split, s)) for s in (*booster, *calibration)},
        "dates": dates,
        "heldout_test": heldout,
    }


def rank_agreement(validated_margin: np.ndarray, refit_margin: np.ndarray) -> float:
    """Spearman correlation of two models' scores of the same people (both monotone in the
    margin, so margins rank people as scores do)."""
    a, b = np.asarray(validated_margin, float), np.asarray(refit_margin, float)
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"need two same-shape margin arrays, >= 3 people; got {a.shape} {b.shape}")
    rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def check_agreement(rho: float, minimum: float, n: int) -> None:
    """Refuse (one line) a refit that ranks the test cohort unlike the validated model."""
    if rho < minimum:
        raise RefitError(
            f"the refit model ranks the {n:,} test-cohort people unlike the validated model "
            f"(Spearman {rho:.3f} < train.refit_min_correlation {minimum}): not deployed; "
            "check the newest cohorts, or set train.refit_on_all: false"
        )


__all__ = [
    "REFIT_BOOSTER_SLICES",
    "REFIT_CALIBRATION_SLICES",
    "RefitError",
    "check_agreement",
    "fit_record",
    "fixed_rounds_trainer",
    "rank_agreement",
    "refit_rounds",
    "refit_split",
    "rows_fingerprint",
]
