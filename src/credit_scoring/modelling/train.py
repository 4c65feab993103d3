"""Gradient-boosted PD model: LightGBM with monotone constraints, early stopping, fixed seeds.

Pure functions: data frames and typed params in, a :class:`TrainedModel` out. Reading and
writing files, tracking and the CLI live elsewhere.

Design choices:
- Native ``lgb.train`` API with ``deterministic=True``, ``force_row_wise=True`` and every
  seed set, so the same data, params and seed give a bit-identical model.
- Monotone constraints come from the feature metadata (domain knowledge such as "more late
  payments never lowers risk"); they make the score explainable and hard to game. Every
  trained model is checked exactly, tree by tree (:func:`monotone_violations`); LightGBM's
  "intermediate"/"advanced" methods can break the constraints when features have missing
  values, and then the model is retrained with the strict "basic" method (logged, and the
  method actually used is in ``TrainedModel.params``).
- No ``is_unbalance`` / ``scale_pos_weight``: re-weighting the classes distorts the
  probabilities. The model is trained on the true 5% default rate and calibrated afterwards
  on its own out-of-time slice.
- Early stopping on the validation cohort's log loss (a proper scoring rule); AUC is
  recorded alongside for the learning curve.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from credit_scoring.config import LightGBMParams, TrainParams
from credit_scoring.features.registry import split_gain_weights
from credit_scoring.modelling.split import Split
from credit_scoring.schemas import LABEL

logger = logging.getLogger(__name__)

#: Optional per-row weight column of a training or validation frame (reject inference,
#: modelling/reject_inference.py); absent = every row weighs 1.
WEIGHT = "sample_weight"
METRICS: tuple[str, ...] = ("binary_logloss", "auc")  # the first one drives early stopping
NUM_THREADS = 2
#: Up to this many rows, predictions (margins and contributions) run on one thread: OpenMP
#: start-up and synchronisation cost more than the trees for a handful of rows (~8 ms for
#: one row on a busy 2-core machine, 10x slower than one thread).
SINGLE_THREAD_ROWS = 64


#: Fits the booster of a model: ``(split, feature_names, constraints, params, seed)``.
Trainer = Callable[[Split, Sequence[str], Sequence[int] | None, TrainParams, int], "TrainedModel"]


def progress_callback(progress: Callable[[int, int | None], None]) -> Callable[[Any], None]:
    """A LightGBM callback reporting ``progress(round, num_boost_round)`` every 10 rounds
    (early stopping may end the bar short: the stage says the best iteration)."""

    def report(env: Any) -> None:
        done = env.iteration + 1
        if done % 10 == 0 or done == env.end_iteration:
            progress(done, env.end_iteration)

    report.order = 40  # type: ignore[attr-defined]  # after early stopping's check
    return report


def local_trainer(num_threads: int = NUM_THREADS, callbacks: Sequence[Any] = ()) -> Trainer:
    """The in-process trainer (:func:`train_lightgbm` on the split's train and validation);
    ``callbacks`` are extra LightGBM callbacks (e.g. the live learning curve of a run)."""

    def fit(
        split: Split,
        names: Sequence[str],
        constraints: Sequence[int] | None,
        params: TrainParams,
        seed: int,
    ) -> TrainedModel:
        return train_lightgbm(
            split.train, split.validation, names, constraints, params, seed, num_threads, callbacks
        )

    return fit


@dataclass
class TrainedModel:
    """A fitted booster and what is needed to use and audit it.

    ``evals_result`` is the learning curve: ``{"train"|"validation": {metric: [per round]}}``
    for ``binary_logloss`` and ``auc``. ``params`` are the exact LightGBM parameters used.
    """

    booster: lgb.Booster
    feature_names: list[str]
    best_iteration: int
    evals_result: dict[str, dict[str, list[float]]]
    params: dict[str, Any]
    train_seconds: float = field(default=0.0)

    def predict_margin(self, X: ArrayLike) -> np.ndarray:
        """Raw log-odds of default at the best iteration; see :func:`predict_margin`."""
        return predict_margin(self.booster, X)


class FeatureInputError(KeyError, ValueError):
    """A feature table lacks columns the model needs (a ``KeyError`` for the training code,
    a ``ValueError`` for callers that treat bad input as such); the message is shown as is."""

    __str__ = Exception.__str__  # not KeyError's repr() of the message


def require_features(df: pd.DataFrame, feature_names: Sequence[str]) -> None:
    """Raise :class:`FeatureInputError` naming (up to five of) the absent feature columns."""
    missing = [c for c in feature_names if c not in df.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FeatureInputError(f"missing {len(missing)} feature column(s): {shown}")


def feature_matrix(df: pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """The float64 matrix LightGBM sees, columns in ``feature_names`` order, missing values
    as NaN; extra columns are ignored. The one conversion of a feature table to model input
    (training, calibration, the bundle, batch scoring)."""
    require_features(df, feature_names)
    return df[list(feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)


def labels(df: pd.DataFrame) -> np.ndarray:
    """The 0/1 default label as float64; refuses missing labels (they belong to scoring)."""
    if LABEL not in df.columns:
        raise KeyError(f"feature table lacks the label column {LABEL!r}")
    y = df[LABEL]
    if y.isna().any():
        raise ValueError(
            f"{int(y.isna().sum())} rows have no {LABEL}; drop them before training "
            "(out_of_time_split does)"
        )
    y_arr = y.to_numpy(dtype=np.float64)
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError(f"{LABEL} must be 0 or 1; got values {np.unique(y_arr)[:5]}")
    return y_arr


def _check_constraints(constraints: Sequence[int] | None, n_features: int) -> list[int] | None:
    if constraints is None:
        return None
    constraints = [int(c) for c in constraints]
    if len(constraints) != n_features:
        raise ValueError(
            f"one monotone constraint per feature is needed; got {len(constraints)} "
            f"constraints for {n_features} features"
        )
    bad = sorted({c for c in constraints if c not in (-1, 0, 1)})
    if bad:
        raise ValueError(f"monotone constraints must be -1, 0 or +1; got {bad}")
    return constraints


#: Training rows assumed by ``auto`` size params when the count is not known (the Dask
#: engine, meant for large data): they resolve to the full-size values 100 and 15.
FULL_SIZE_ROWS = 30_000


def size_params(lgbm: LightGBMParams, n_train: int | None) -> tuple[int, int]:
    """``(num_leaves, min_child_samples)`` with ``auto`` resolved for ``n_train`` rows.

    Small data needs small trees: ``min_child_samples: 100`` on 128 rows never splits.
    ``auto`` = ``clip(rows / 100, 4, 15)`` leaves and ``clip(rows / 250, 5, 100)`` rows
    per leaf; from 25,000 rows (the default world's training slice has about 30,000) these
    are the former fixed defaults 15 and 100, so the default world's model is unchanged;
    at 400 rows 4 and 5. ``n_train`` None = :data:`FULL_SIZE_ROWS`.
    """
    n = FULL_SIZE_ROWS if n_train is None else int(n_train)
    leaves = lgbm.num_leaves
    if leaves == "auto":
        leaves = int(np.clip(round(n / 100), 4, 15))
    min_child = lgbm.min_child_samples
    if min_child == "auto":
        min_child = int(np.clip(round(n / 250), 5, 100))
    return int(leaves), int(min_child)


def lightgbm_params(
    lgbm: LightGBMParams,
    seed: int,
    constraints: Sequence[int] | None,
    num_threads: int = NUM_THREADS,
    n_train: int | None = None,
) -> dict[str, Any]:
    """The full, reproducible LightGBM parameter dict (canonical names, no aliases);
    ``auto`` sizes resolved for ``n_train`` training rows (:func:`size_params`)."""
    num_leaves, min_child = size_params(lgbm, n_train)
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": list(METRICS),
        "learning_rate": lgbm.learning_rate,
        "num_leaves": num_leaves,
        "min_data_in_leaf": min_child,
        "feature_fraction": lgbm.feature_fraction,
        "bagging_fraction": lgbm.bagging_fraction,
        "bagging_freq": lgbm.bagging_freq,
        "lambda_l2": lgbm.lambda_l2,
        "max_bin": lgbm.max_bin,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": num_threads,
        "seed": seed,
        "bagging_seed": seed,
        "feature_fraction_seed": seed,
        "data_random_seed": seed,
        "verbosity": -1,
    }
    if constraints is not None and any(constraints):
        params["monotone_constraints"] = list(constraints)
        params["monotone_constraints_method"] = lgbm.monotone_constraints_method
    return params


def model_inputs(
    feature_names: Sequence[str], constraints: Sequence[int] | None, params: TrainParams
) -> tuple[list[str], list[int] | None]:
    """The feature names and the constraints to train with (None when switched off).

    Checked once here for the local and the Dask trainer alike.
    """
    names = list(feature_names)
    if not names:
        raise ValueError("feature_names is empty; the model needs at least one feature")
    checked = _check_constraints(constraints, len(names))
    return names, checked if params.use_monotone_constraints else None


def training_params(
    params: TrainParams,
    seed: int,
    feature_names: Sequence[str],
    constraints: Sequence[int] | None,
    num_threads: int,
    n_train: int | None = None,
) -> dict[str, Any]:
    """LightGBM params for our features, shared by the local and the Dask trainer.

    On top of :func:`lightgbm_params`, unscored features (cheap to game, see
    ``features.split_gain_weights``) get split-gain weight 0, so no engine's model can
    split on them.
    """
    lgb_params = lightgbm_params(params.lightgbm, seed, constraints, num_threads, n_train)
    gain_weights = split_gain_weights(feature_names)
    if min(gain_weights, default=1.0) < 1.0:
        lgb_params["feature_contri"] = gain_weights
    return lgb_params


def fit_monotone(
    fit: Callable[[dict[str, Any]], tuple[lgb.Booster, Any]],
    lgb_params: dict[str, Any],
    constraints: Sequence[int] | None,
) -> tuple[lgb.Booster, dict[str, Any], Any]:
    """``fit(lgb_params)``, then prove the trees monotone; retry once with 'basic'.

    LightGBM's intermediate/advanced methods can leave trees non-monotone when features
    have missing values; "basic" is the strict, always-safe method. Returns the booster,
    the params it was trained with and whatever else ``fit`` returned. Shared by the local
    and the Dask trainer, so both guarantee the same constraints.
    """
    booster, extra = fit(lgb_params)
    if constraints is None or not any(constraints):
        return booster, lgb_params, extra
    violations = monotone_violations(booster, constraints)
    if violations and lgb_params["monotone_constraints_method"] != "basic":
        logger.warning(
            "monotone_constraints_method=%s left %d non-monotone leaf pairs (%s); "
            "retraining with the strict 'basic' method",
            lgb_params["monotone_constraints_method"],
            len(violations),
            sorted({v["feature"] for v in violations}),
        )
        lgb_params = {**lgb_params, "monotone_constraints_method": "basic"}
        booster, extra = fit(lgb_params)
        violations = monotone_violations(booster, constraints)
    if violations:
        raise RuntimeError(
            f"trained model violates its monotone constraints in {len(violations)} leaf "
            f"pairs, first: {violations[0]}"
        )
    return booster, lgb_params, extra


def train_lightgbm(
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    feature_names: Sequence[str],
    constraints: Sequence[int] | None,
    params: TrainParams,
    seed: int,
    num_threads: int = NUM_THREADS,
    callbacks: Sequence[Any] = (),
) -> TrainedModel:
    """Fit a binary LightGBM PD model on ``train_df`` with early stopping on ``valid_df``.

    Args:
        train_df, valid_df: feature tables with ``default_12m`` and every feature column.
        feature_names: model inputs, in order (the feature registry's order).
        constraints: per feature +1 (risk rises with the value), -1 (falls) or 0; ignored
            when ``params.use_monotone_constraints`` is false.
        params: the ``train`` section of params.yaml.
        seed: the shared ``base.seed``.
        num_threads: LightGBM threads. An execution setting, not a model parameter: keep
            it at or below the free cores, OpenMP slows down badly when oversubscribed.
        callbacks: extra LightGBM callbacks, called every round (they see the curve only).
    """
    feature_names, constraints = model_inputs(feature_names, constraints, params)
    y_train, y_valid = labels(train_df), labels(valid_df)
    for name, y in (("train", y_train), ("validation", y_valid)):
        if not 0 < y.sum() < y.size:
            raise ValueError(f"the {name} slice needs both defaulters and non-defaulters")

    X_train = feature_matrix(train_df, feature_names)
    X_valid = feature_matrix(valid_df, feature_names)
    start = time.perf_counter()
    lgb_params = training_params(
        params, seed, feature_names, constraints, num_threads, n_train=len(y_train)
    )
    data = (X_train, y_train, X_valid, y_valid, feature_names)
    weights = tuple(_weights(df) for df in (train_df, valid_df))
    booster, lgb_params, evals_result = fit_monotone(
        lambda p: _fit(p, data, params, callbacks, weights), lgb_params, constraints
    )
    seconds = time.perf_counter() - start
    best_iteration = int(booster.best_iteration) or booster.current_iteration()
    logger.info(
        "LightGBM: best iteration %d of %d rounds, %.1f s",
        best_iteration,
        len(evals_result["validation"]["binary_logloss"]),
        seconds,
    )
    return TrainedModel(
        booster=booster,
        feature_names=feature_names,
        best_iteration=best_iteration,
        evals_result=evals_result,
        params=lgb_params,
        train_seconds=seconds,
    )


def _weights(df: pd.DataFrame) -> np.ndarray | None:
    return df[WEIGHT].to_numpy(dtype=np.float64) if WEIGHT in df.columns else None


def _fit(
    lgb_params: dict[str, Any],
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]],
    params: TrainParams,
    callbacks: Sequence[Any] = (),
    weights: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> tuple[lgb.Booster, dict[str, dict[str, list[float]]]]:
    """One ``lgb.train`` run with early stopping; returns the booster and learning curves.

    With ``keep_training_booster=False`` (the default) the returned booster holds only the
    trees up to the best iteration.
    """
    X_train, y_train, X_valid, y_valid, names = data
    w_train, w_valid = weights
    train_set = lgb.Dataset(
        X_train, label=y_train, weight=w_train, feature_name=names, free_raw_data=False
    )
    valid_set = lgb.Dataset(
        X_valid,
        label=y_valid,
        weight=w_valid,
        feature_name=names,
        reference=train_set,
        free_raw_data=False,
    )
    evals_result: dict[str, Any] = {}
    booster = lgb.train(
        lgb_params,
        train_set,
        num_boost_round=params.lightgbm.num_boost_round,
        valid_sets=[train_set, valid_set],
        valid_names=["train", "validation"],
        callbacks=[
            lgb.early_stopping(
                params.lightgbm.early_stopping_rounds, first_metric_only=True, verbose=False
            ),
            lgb.record_evaluation(evals_result),
            *callbacks,
        ],
    )
    curves = {
        set_name: {metric: [float(v) for v in values] for metric, values in by_metric.items()}
        for set_name, by_metric in evals_result.items()
    }
    return booster, curves


class LearningError(ValueError):
    """The model learnt nothing usable (never split, or no better than chance): one line."""


def learning_check(
    booster: lgb.Booster,
    valid_margin: np.ndarray,
    y_valid: np.ndarray,
    n_train: int,
    z: float = 1.96,
) -> dict[str, Any]:
    """Did the model learn anything? Raises :class:`LearningError` in one line if not.

    A booster none of whose trees split gives one PD to everyone; a validation AUC whose
    95% interval (Hanley-McNeil standard error) includes 0.5 ranks no better than chance.
    Either way the numbers downstream (bands, gate) would be meaningless. Returns the
    validation AUC, its standard error and interval, and the number of splits.
    """
    from credit_scoring.modelling.metrics import auc_interval

    splits = int(booster.feature_importance(importance_type="split").sum())
    y = np.asarray(y_valid, dtype=np.float64)
    n_bad = int(y.sum())
    if splits == 0:
        raise LearningError(
            f"the model never split ({n_train} training rows): everyone gets one PD; lower "
            "train.lightgbm.min_child_samples (or set it to auto) or add data"
        )
    ci = auc_interval(y, 1.0 / (1.0 + np.exp(-np.asarray(valid_margin))), z=z)
    if not ci["low"] > 0.5:
        raise LearningError(
            f"validation AUC {ci['auc']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}, "
            f"{y.size} rows, {n_bad} defaults) is no better than chance; the model cannot be "
            "trusted (train.stop_if_chance: false to keep it anyway)"
        )
    return {"validation_auc": ci, "splits": splits}


def _leaf_boxes(
    node: dict[str, Any], n_features: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every leaf of one dumped tree as a box: per feature the interval (lo, hi] of values
    that reach it, whether a missing value reaches it, and the leaf value."""
    lows, highs, nans, values = [], [], [], []
    stack = [
        (
            node,
            np.full(n_features, -np.inf),
            np.full(n_features, np.inf),
            np.ones(n_features, dtype=bool),
        )
    ]
    while stack:
        nd, lo, hi, nan = stack.pop()
        if "leaf_value" in nd:
            lows.append(lo)
            highs.append(hi)
            nans.append(nan)
            values.append(nd["leaf_value"])
            continue
        if nd["decision_type"] != "<=" or nd["missing_type"] not in ("None", "NaN"):
            raise ValueError(
                f"cannot verify monotonicity of a {nd['decision_type']!r} split with "
                f"missing_type {nd['missing_type']!r} (categorical or zero_as_missing)"
            )
        g, threshold = nd["split_feature"], nd["threshold"]
        # missing_type NaN: NaN follows default_left; None: NaN is treated as 0.0.
        nan_left = nd["default_left"] if nd["missing_type"] == "NaN" else threshold >= 0.0
        for child, is_left in ((nd["left_child"], True), (nd["right_child"], False)):
            c_lo, c_hi, c_nan = lo.copy(), hi.copy(), nan.copy()
            if is_left:
                c_hi[g] = min(c_hi[g], threshold)
            else:
                c_lo[g] = max(c_lo[g], threshold)
            if nan_left != is_left:
                c_nan[g] = False
            stack.append((child, c_lo, c_hi, c_nan))
    return np.array(lows), np.array(highs), np.array(nans), np.array(values, dtype=np.float64)


def _leaf_summary(lo: float, hi: float, value: float) -> dict[str, Any]:
    return {"interval": [float(lo), float(hi)], "value": float(value)}


def monotone_violations(
    booster: lgb.Booster, constraints: Sequence[int], tol: float = 1e-9
) -> list[dict[str, Any]]:
    """Exact check, tree by tree, that the model honours its monotone constraints.

    For a constrained feature f, a tree breaks the constraint when two leaves can be reached
    by the same values of all other features (their boxes overlap, counting a missing value
    as a point of its own) while the leaf that holds the larger values of f has the lower
    (for +1) or higher (for -1) output. Every tree being monotone is sufficient for the
    sum of trees to be monotone, so an empty result is a guarantee for all inputs, not
    just the ones tested. (LightGBM 4.x's "intermediate" and "advanced" methods can break
    it when features contain missing values; "basic" has held in every test.)

    Returns:
        One dict per offending leaf pair: tree, feature, the two leaf values and the
        feature intervals of the lower and the upper leaf.
    """
    names = booster.feature_name()
    constraints = _check_constraints(constraints, len(names)) or []
    found: list[dict[str, Any]] = []
    for tree in booster.dump_model()["tree_info"]:
        lo, hi, nan, value = _leaf_boxes(tree["tree_structure"], len(names))
        if value.size < 2:
            continue
        overlap = (np.maximum(lo[:, None], lo[None]) < np.minimum(hi[:, None], hi[None])) | (
            nan[:, None] & nan[None]
        )  # leaves x leaves x features
        for f, sign in enumerate(constraints):
            if sign == 0:
                continue
            others = np.delete(overlap, f, axis=2).all(axis=2)
            below = hi[:, None, f] <= lo[None, :, f]  # leaf a lies below leaf b in feature f
            wrong = others & below & (sign * (value[None, :] - value[:, None]) < -tol)
            for a, b in zip(*np.nonzero(wrong), strict=True):
                found.append(
                    {
                        "tree": int(tree["tree_index"]),
                        "feature": names[f],
                        "constraint": sign,
                        "lower_leaf": _leaf_summary(lo[a, f], hi[a, f], value[a]),
                        "upper_leaf": _leaf_summary(lo[b, f], hi[b, f], value[b]),
                    }
                )
    return found


def prediction_threads(n_rows: int) -> int:
    """LightGBM threads for predicting ``n_rows`` rows: one up to :data:`SINGLE_THREAD_ROWS`
    (OpenMP start-up costs more than the trees for a handful of rows), else 0 (all cores)."""
    return 1 if n_rows <= SINGLE_THREAD_ROWS else 0


def predict_margin(
    booster: lgb.Booster,
    X: ArrayLike,
    num_iteration: int | None = None,
    num_threads: int | None = None,
) -> np.ndarray:
    """Raw log-odds of default (what the calibrator maps to a probability).

    The one raw-margin prediction of the project (training reports, the bundle, benchmarks).
    ``X`` is converted to a float64 array with the booster's features in training order.
    ``num_iteration``: trees to use; None = the booster's best (early-stopped) iteration when
    it knows one, else all; <= 0 = all. ``num_threads``: None = :func:`prediction_threads`.
    The thread count never changes the result (each row is summed by one thread).
    """
    X_arr = np.asarray(X, dtype=np.float64)
    if X_arr.ndim != 2 or X_arr.shape[1] != booster.num_feature():
        raise ValueError(
            f"X must be 2-d with {booster.num_feature()} feature columns; got shape {X_arr.shape}"
        )
    if num_iteration is None:
        best = booster.best_iteration
        num_iteration = best if best > 0 else None
    if num_threads is None:
        num_threads = prediction_threads(X_arr.shape[0])
    return np.asarray(
        booster.predict(
            X_arr, raw_score=True, num_iteration=num_iteration, num_threads=num_threads
        ),
        dtype=np.float64,
    )


# Random-search space: (kind, low, high) for continuous, tuple of choices for discrete.
_SEARCH_SPACE: dict[str, Any] = {
    "num_leaves": (7, 15, 31, 63),
    "min_child_samples": (20, 50, 100, 200, 400),
    "learning_rate": ("log", 0.01, 0.1),
    "lambda_l2": ("log", 0.1, 50.0),
    "feature_fraction": ("linear", 0.5, 1.0),
}


def _sample(rng: np.random.Generator) -> dict[str, Any]:
    drawn: dict[str, Any] = {}
    for name, space in _SEARCH_SPACE.items():
        if isinstance(space[0], str):
            kind, low, high = space
            if kind == "log":
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                value = rng.uniform(low, high)
            drawn[name] = round(float(value), 4)
        else:
            drawn[name] = int(space[rng.integers(len(space))])
    return drawn


def tune_lightgbm(
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    feature_names: Sequence[str],
    constraints: Sequence[int] | None,
    params: TrainParams,
    seed: int,
    num_threads: int = NUM_THREADS,
) -> tuple[LightGBMParams, list[dict[str, Any]]]:
    """Seeded random search over a few hyperparameters; best by validation log loss.

    Trial 0 is always the configured parameters, so tuning never returns something worse on
    validation than not tuning. Stops after ``params.tune.n_trials`` trials or once
    ``params.tune.time_budget_s`` has passed (checked between trials, so a run that hits
    the time budget is not reproducible in its trial count). Log loss is the selection
    criterion because early stopping uses it too and it is less noisy than AUC at a 5%
    default rate.

    Returns:
        The best ``LightGBMParams`` and one dict per trial (params, best_iteration,
        validation log loss and AUC at the best iteration, seconds).
    """
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    trials: list[dict[str, Any]] = []
    best_params, best_loss = params.lightgbm, math.inf
    for trial in range(params.tune.n_trials):
        if trial > 0 and time.monotonic() - start >= params.tune.time_budget_s:
            logger.info("tuning stopped by the time budget after %d trials", trial)
            break
        candidate = (
            params.lightgbm if trial == 0 else params.lightgbm.model_copy(update=_sample(rng))
        )
        model = train_lightgbm(
            train_df,
            valid_df,
            feature_names,
            constraints,
            params.model_copy(update={"lightgbm": candidate}),
            seed,
            num_threads,
        )
        curve = model.evals_result["validation"]
        loss = curve["binary_logloss"][model.best_iteration - 1]
        trials.append(
            {
                "trial": trial,
                "params": {k: getattr(candidate, k) for k in _SEARCH_SPACE},
                "best_iteration": model.best_iteration,
                "valid_logloss": loss,
                "valid_auc": curve["auc"][model.best_iteration - 1],
                "seconds": model.train_seconds,
            }
        )
        if loss < best_loss:
            best_params, best_loss = candidate, loss
    return best_params, trials
