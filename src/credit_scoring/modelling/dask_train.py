"""The Dask trainer (``engine: dask``): the same LightGBM model, trained on a cluster.

``lightgbm.dask.DaskLGBMClassifier`` (data-parallel LightGBM, one LightGBM machine per Dask
worker) with the parameters of :func:`credit_scoring.modelling.train.training_params` and the
monotone constraints. Each worker reads its share of the training cohorts from the feature
Parquet itself. ``lightgbm.dask`` has no early stopping (and each worker's ``evals_result_``
covers only its own rows, LightGBM issue #6963), so all ``num_boost_round`` rounds are
trained, the learning curves are computed here from the whole train and validation slices,
the best iteration is picked by the early-stopping rule (first round after which the
validation log loss did not improve for ``early_stopping_rounds`` rounds) and the model is
cut to it: the choice early stopping would make on the same curve, at the price of the
extra rounds. :func:`dask_trainer` plugs it into
:meth:`credit_scoring.decision.bundle.CreditModel.fit`.

Paths are resolved to absolute paths (or kept as URIs such as ``s3://...``) on the client;
with a real cluster every worker must see them at the same place (shared filesystem or object
store) and have this package installed. The cluster itself comes from
:func:`credit_scoring.cluster.dask_client`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from credit_scoring.cluster import location, worker_addresses
from credit_scoring.config import TrainParams
from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import (
    TrainedModel,
    Trainer,
    feature_matrix,
    fit_monotone,
    labels,
    model_inputs,
    training_params,
)
from credit_scoring.schemas import LABEL

logger = logging.getLogger(__name__)

#: LightGBM ``lightgbm_params`` names -> ``LGBMClassifier`` argument names, so that the
#: scikit-learn defaults of the estimator do not sit beside our values as aliases.
_SKLEARN_NAMES: dict[str, str] = {
    "min_data_in_leaf": "min_child_samples",
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "lambda_l2": "reg_lambda",
    "seed": "random_state",
}


# --------------------------------------------------------------------------- training


def _training_part(
    features_path: str, names: list[str], dates: list[str], index: int, n_parts: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``n_parts``-th labelled training row, from ``index``: this worker's share.

    Rows are ordered like :func:`credit_scoring.modelling.split.out_of_time_split` (date, person),
    so together the parts are exactly the training slice.
    """
    stamps = pa.array(pd.to_datetime(dates).to_numpy())
    dataset = ds.dataset(features_path, format="parquet")
    date_type = dataset.schema.field("observation_date").type
    flt = pc.field("observation_date").isin(stamps.cast(date_type)) & pc.field(LABEL).is_valid()
    table = dataset.to_table(
        columns=["person_id", "observation_date", LABEL, *names], filter=flt
    ).to_pandas()
    table = table.sort_values(["observation_date", "person_id"], kind="stable")
    share = table.iloc[index::n_parts]
    return feature_matrix(share, names), labels(share)


def _on(client: Any, worker: str, fn: Callable[[Any], Any], part: Any) -> Any:
    """``fn(part)`` on the worker that holds ``part``: no training share is ever copied to
    another worker, so each LightGBM machine trains on exactly its own share."""
    return client.submit(fn, part, workers=[worker], allow_other_workers=False, pure=False)


def _dask_params(lgb_params: dict[str, Any], n_rounds: int) -> dict[str, Any]:
    """``lightgbm_params`` as ``DaskLGBMClassifier`` arguments (same values, sklearn names)."""
    out = {_SKLEARN_NAMES.get(k, k): v for k, v in lgb_params.items()}
    out.pop("num_threads", None)  # lightgbm.dask sets it to each worker's thread count
    out["n_estimators"] = n_rounds
    return out


def _fit_dask(
    client: Any,
    workers: list[str],
    parts: list[Any],
    lgb_params: dict[str, Any],
    names: list[str],
    n_rounds: int,
) -> lgb.Booster:
    """One ``DaskLGBMClassifier`` fit on the training shares ``parts`` (part i on worker i)."""
    import dask.array as da
    from lightgbm.dask import DaskLGBMClassifier

    shapes = client.gather(
        [_on(client, w, lambda p: len(p[1]), f) for w, f in zip(workers, parts, strict=True)]
    )
    xs, ys = [], []
    for worker, future, n in zip(workers, parts, shapes, strict=True):
        x, y = (
            _on(client, worker, lambda p: p[0], future),
            _on(client, worker, lambda p: p[1], future),
        )
        xs.append(da.from_delayed(x, shape=(n, len(names)), dtype=np.float64))
        ys.append(da.from_delayed(y, shape=(n,), dtype=np.float64))
    X = da.concatenate(xs)
    y = da.concatenate(ys)
    model = DaskLGBMClassifier(client=client, **_dask_params(lgb_params, n_rounds))
    with warnings.catch_warnings():
        # n_jobs is the estimator's own default; lightgbm.dask sets the threads per worker.
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored", UserWarning)
        model.fit(X, y, feature_name=names)
    return model.booster_


#: Run-specific network settings LightGBM writes into the model text; dropped so that the
#: saved model is the same file run after run.
_NETWORK_LINES: tuple[str, ...] = ("[machines:", "[local_listen_port:", "[time_out:")


def _portable(booster: lgb.Booster, num_iteration: int) -> lgb.Booster:
    """The first ``num_iteration`` trees as a plain booster, without the run's network ports."""
    text = booster.model_to_string(num_iteration=num_iteration)
    kept = [line for line in text.split("\n") if not line.startswith(_NETWORK_LINES)]
    return lgb.Booster(model_str="\n".join(kept))


def _log_loss(y: np.ndarray, margin: np.ndarray) -> float:
    """LightGBM's binary_logloss from raw scores, computed stably."""
    return float(np.mean(np.logaddexp(0.0, margin) - y * margin))


def early_stopping_iteration(curve: Sequence[float], patience: int) -> int:
    """The best iteration (1-based) ``lgb.early_stopping`` would return on this loss curve.

    The best round is the lowest loss seen so far; the scan stops at the first round
    ``patience`` rounds after it without a strict improvement (lower is better).
    """
    if len(curve) == 0:
        raise ValueError("the learning curve is empty")
    best, best_i = math.inf, 0
    for i, value in enumerate(curve):
        if value < best:
            best, best_i = value, i
        elif i - best_i >= patience:
            break
    return best_i + 1


def learning_curves(
    booster: lgb.Booster,
    slices: dict[str, tuple[np.ndarray, np.ndarray]],
    patience: int,
) -> tuple[dict[str, dict[str, list[float]]], int]:
    """Log loss and AUC per round on whole slices, and the early-stopping best iteration.

    Curves stop where early stopping on ``slices["validation"]``'s log loss would have
    stopped (best iteration + ``patience``, or the last round), like the local engine's.
    """
    from sklearn.metrics import roc_auc_score

    n_trees = booster.current_iteration()
    margins = {k: np.zeros(len(y)) for k, (_, y) in slices.items()}
    losses: dict[str, list[float]] = {k: [] for k in slices}
    aucs: dict[str, list[float]] = {k: [] for k in slices}
    best_loss, best = math.inf, 0  # the same scan as early_stopping_iteration, round by round
    for i in range(n_trees):
        for k, (X, y) in slices.items():
            margins[k] += booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1)
            losses[k].append(_log_loss(y, margins[k]))
            aucs[k].append(float(roc_auc_score(y, margins[k])))
        if losses["validation"][-1] < best_loss:
            best_loss, best = losses["validation"][-1], i + 1
        elif i + 1 - best >= patience:
            break
    stop = len(losses["validation"])
    best = early_stopping_iteration(losses["validation"], patience)
    curves = {k: {"binary_logloss": losses[k][:stop], "auc": aucs[k][:stop]} for k in slices}
    return curves, best


def train_lightgbm_dask(
    client: Any,
    features_path: str | Path,
    split: Split,
    feature_names: Sequence[str],
    constraints: Sequence[int] | None,
    params: TrainParams,
    seed: int,
) -> TrainedModel:
    """:func:`~credit_scoring.modelling.train.train_lightgbm` on a Dask cluster, same in and out.

    Workers read the training cohorts (``split.cohorts["train"]``) from ``features_path``
    themselves, one strided share each (share i on the i-th worker in sorted order). The
    trees are the same for the same data, seed and LightGBM rank order; ``lightgbm.dask``
    takes the rank order from a Python set, so reruns can differ slightly. The monotone
    check and the fallback to the strict "basic" method are the local ones. The returned
    booster holds the trees up to the best iteration (chosen as the module docstring says).
    """
    names, constraints = model_inputs(feature_names, constraints, params)
    y_train, y_valid = labels(split.train), labels(split.validation)
    for name, y in (("train", y_train), ("validation", y_valid)):
        if not 0 < y.sum() < y.size:
            raise ValueError(f"the {name} slice needs both defaulters and non-defaulters")

    workers = worker_addresses(client)
    path = location(features_path)
    dates = [str(d) for d in split.cohorts["train"]]
    parts = [
        client.submit(
            _training_part,
            path,
            names,
            dates,
            i,
            len(workers),
            workers=[w],
            allow_other_workers=False,
            pure=False,
        )
        for i, w in enumerate(workers)
    ]
    shares = zip(workers, parts, strict=True)
    sizes = client.gather([_on(client, w, lambda p: (len(p[1]), p[1].sum()), f) for w, f in shares])
    if sum(n for n, _ in sizes) != len(y_train) or sum(s for _, s in sizes) != y_train.sum():
        raise RuntimeError(
            f"workers read {sum(n for n, _ in sizes)} training rows from {path}, the split "
            f"has {len(y_train)}: is the feature file the same on the workers?"
        )
    start = time.perf_counter()
    threads = min(client.nthreads().values())
    lgb_params = training_params(params, seed, names, constraints, threads)
    n_rounds = params.lightgbm.num_boost_round
    booster, lgb_params, _ = fit_monotone(
        lambda p: (_fit_dask(client, workers, parts, p, names, n_rounds), None),
        lgb_params,
        constraints,
    )
    parts.clear()  # release the workers' training shares
    slices = {
        "train": (feature_matrix(split.train, names), y_train),
        "validation": (feature_matrix(split.validation, names), y_valid),
    }
    curves, best = learning_curves(booster, slices, params.lightgbm.early_stopping_rounds)
    booster = _portable(booster, best)
    seconds = time.perf_counter() - start
    logger.info(
        "LightGBM on Dask (%d workers): best iteration %d of %d rounds, %.1f s",
        len(workers),
        best,
        n_rounds,
        seconds,
    )
    used = {
        **lgb_params,
        "tree_learner": "data",
        "num_machines": len(workers),
        "num_boost_round": n_rounds,
    }
    return TrainedModel(
        booster=booster,
        feature_names=names,
        best_iteration=best,
        evals_result=curves,
        params=used,
        train_seconds=seconds,
    )


def dask_trainer(client: Any, features_path: str | Path) -> Trainer:
    """A :data:`~credit_scoring.modelling.train.Trainer` that fits on the Dask cluster.

    Workers read their share of ``features_path`` themselves; the rest of
    :meth:`~credit_scoring.decision.bundle.CreditModel.fit` (calibration, metadata) is the
    same as for the local trainer.
    """

    def fit(
        split: Split,
        names: Sequence[str],
        constraints: Sequence[int] | None,
        params: TrainParams,
        seed: int,
    ) -> TrainedModel:
        return train_lightgbm_dask(client, features_path, split, names, constraints, params, seed)

    return fit
