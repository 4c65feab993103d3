"""Reject inference: training on the people a past policy declined, and measuring the bias.

Outcomes exist only for applicants a past policy approved (``outcomes.decision``), so a
model trained on them learns the risk of the approved; "through the door" (on everyone who
applies) it may under-state the risk of the people it never saw perform. The methods
(``train.reject_inference``) turn the split's training, validation and calibration slices
into a through-the-door sample; the test slice is never touched (it keeps the observed
outcomes, so the usual metrics stay approved-only and comparable):

- ``none``: approved applicants only (today's behaviour).
- ``reweight``: each approved row weighs ``1 / P(approved | features)``, the probability
  learnt by a small LightGBM classifier on every applicant of the training slice's dates
  (clipped at :data:`MIN_APPROVAL_PROBABILITY`). Correct when the old policy decided on
  what the features show (missing at random); no help beyond that.
- ``augment`` (fuzzy augmentation): each declined row enters twice, as a default with
  weight PD and as a non-default with weight 1 - PD, PD from the approved-only model.
- ``parcel``: declined rows get a drawn label: default with the observed default rate of
  the approved people in their approved-only PD decile (seeded draws).

LightGBM takes the weights as they are (:data:`~credit_scoring.modelling.train.WEIGHT`);
the calibrator takes none, so the calibration slice realises them by seeded resampling
(:func:`realise`), an unbiased stand-in for weights. The grey-zone applicants (approved at
random near the old cut-off) are an unbiased sample of their band: evaluation reports the
model against their observed outcomes (:func:`grey_zone_check`), the one check a lender
can run without the simulator's truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import WEIGHT, feature_matrix
from credit_scoring.schemas import APPROVED_DECISIONS, DATE, DECISION, LABEL, ROW_KEY

METHODS: tuple[str, ...] = ("none", "reweight", "augment", "parcel")
#: Slices the methods change; the test slice keeps its observed outcomes.
FIT_SLICES: tuple[str, ...] = ("train", "validation", "calibration")
#: Floor of P(approved | features) in the reweighting (caps a weight at 20).
MIN_APPROVAL_PROBABILITY = 0.05
PARCEL_BANDS = 10
DECLINED: tuple[str, ...] = ("declined", "grey_declined")

#: PD of a feature table under the approved-only model.
PDFunction = Callable[[pd.DataFrame], np.ndarray]


def declined_rows(features: pd.DataFrame, outcomes: pd.DataFrame | None) -> pd.DataFrame:
    """The feature rows of applicants the historical policy declined (and whose outcome is
    therefore unknown); empty when the outcomes carry no decision."""
    if outcomes is None or DECISION not in outcomes.columns:
        return features.iloc[:0]
    keys = list(ROW_KEY)
    if DECISION in features.columns:
        joined = features
    else:
        joined = features.merge(outcomes[[*keys, DECISION]], on=keys, how="left")
    mask = joined[DECISION].isin(DECLINED).to_numpy() & joined[LABEL].isna().to_numpy()
    return features.loc[mask].reset_index(drop=True)


def _slice_of(declined: pd.DataFrame, split: Split, seed: int) -> np.ndarray:
    """Slice of each declined row: the slice whose dates hold its date (out of time), else
    a seeded draw in proportion to the slices' sizes (in time, or a date in none)."""
    dates = pd.to_datetime(declined[DATE]).dt.date.to_numpy()
    out = np.full(len(declined), "", dtype=object)
    owners: dict[Any, list[str]] = {}
    for name in (*FIT_SLICES, "test"):
        for d in split.cohorts.get(name, []):
            owners.setdefault(pd.Timestamp(d).date(), []).append(name)
    sizes = np.array([len(getattr(split, n)) for n in FIT_SLICES], dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(18, 0)))
    drawn = rng.choice(
        np.array(FIT_SLICES, dtype=object), size=len(declined), p=sizes / sizes.sum()
    )
    for i, d in enumerate(dates):
        names = owners.get(d, [])
        out[i] = names[0] if len(names) == 1 else drawn[i]
    return out


def realise(frame: pd.DataFrame, weights: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn so that each row appears ``n * w / sum(w)`` times in expectation
    (systematic resampling of a shuffled order: low noise, seeded), without a weight column."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(18, 1)))
    order = rng.permutation(len(frame))
    cum = np.cumsum(weights[order]) / weights.sum() * n
    points = rng.random() + np.arange(n)
    picks = order[np.minimum(np.searchsorted(cum, points, side="right"), len(order) - 1)]
    return frame.iloc[np.sort(picks)].drop(columns=[WEIGHT], errors="ignore").reset_index(drop=True)


def approval_model(
    approved: pd.DataFrame, declined: pd.DataFrame, names: Sequence[str], seed: int
) -> lgb.Booster:
    """A small LightGBM classifier of P(approved | features) (the old policy's odds)."""
    X = np.vstack([feature_matrix(approved, names), feature_matrix(declined, names)])
    y = np.r_[np.ones(len(approved)), np.zeros(len(declined))]
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.8,
        "lambda_l2": 5.0,
        "seed": seed,
        "num_threads": 2,
        "verbose": -1,
    }
    return lgb.train(params, lgb.Dataset(X, label=y, feature_name=list(names)), 200)


def _with(frame: pd.DataFrame, label: np.ndarray | float, weight: np.ndarray | float):
    out = frame.copy()
    out[LABEL] = pd.array(np.broadcast_to(label, len(frame)).astype(np.int64), dtype="Int64")
    out[WEIGHT] = np.broadcast_to(np.asarray(weight, dtype=np.float64), len(frame)).copy()
    return out


def infer(
    split: Split,
    declined: pd.DataFrame,
    method: str,
    names: Sequence[str],
    seed: int,
    approved_pd: PDFunction | None = None,
) -> tuple[Split, dict[str, Any]]:
    """The split to fit on under ``method``, and a report of what was done.

    ``declined``: feature rows of declined applicants (:func:`declined_rows`);
    ``approved_pd``: the approved-only model's PD (needed by ``augment`` and ``parcel``).
    """
    if method not in METHODS:
        raise ValueError(f"reject_inference must be one of {METHODS}; got {method!r}")
    report: dict[str, Any] = {"method": method, "declined_rows": len(declined)}
    if method == "none" or declined.empty:
        if method != "none":
            report["note"] = "no declined applicants (no historical decision): trained as none"
        return split, report
    where = _slice_of(declined, split, seed)
    parts = {n: declined.loc[where == n].reset_index(drop=True) for n in FIT_SLICES}
    report["declined_by_slice"] = {n: len(parts[n]) for n in FIT_SLICES}
    new: dict[str, pd.DataFrame] = {}
    if method == "reweight":
        booster = approval_model(split.train, parts["train"], names, seed)
        spread = []
        for n in FIT_SLICES:
            app = getattr(split, n)
            p = np.clip(booster.predict(feature_matrix(app, names)), MIN_APPROVAL_PROBABILITY, 1)
            w = 1.0 / p
            w = w * (len(app) + len(parts[n])) / w.sum()  # weights sum to the applicants
            new[n] = app.assign(**{WEIGHT: w})
            spread.append(float(w.max() / w.min()))
        report["max_weight_ratio"] = max(spread)
    else:
        if approved_pd is None:
            raise ValueError(f"reject_inference {method!r} needs the approved-only model's PD")
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(18, 2)))
        if method == "parcel":
            p_train = approved_pd(split.train)
            edges = np.unique(np.quantile(p_train, np.linspace(0, 1, PARCEL_BANDS + 1)[1:-1]))
            band = np.searchsorted(edges, p_train, side="right")
            y = split.train[LABEL].to_numpy(dtype=np.float64)
            rate = np.array(
                [
                    y[band == b].mean() if (band == b).any() else np.nan
                    for b in range(len(edges) + 1)
                ]
            )
            rate = pd.Series(rate).ffill().bfill().to_numpy()
            report["parcel_band_default_rates"] = [round(float(r), 6) for r in rate]
        inferred = []
        for n in FIT_SLICES:
            app = getattr(split, n).assign(**{WEIGHT: 1.0})
            d, pd_d = parts[n], approved_pd(parts[n]) if len(parts[n]) else np.array([])
            inferred.append(float(pd_d.mean()) if len(pd_d) else None)
            if method == "augment":
                rows = [app, _with(d, 1, pd_d), _with(d, 0, 1.0 - pd_d)]
            else:
                r = rate[np.searchsorted(edges, pd_d, side="right")]
                rows = [app, _with(d, (rng.random(len(d)) < r).astype(np.int64), 1.0)]
            new[n] = pd.concat(rows, ignore_index=True)
        report["mean_inferred_pd_declined"] = dict(zip(FIT_SLICES, inferred, strict=True))
    calib = new["calibration"]  # the calibrator takes no weights: resample instead
    n_applicants = len(split.calibration) + len(parts["calibration"])
    new["calibration"] = realise(calib, calib[WEIGHT].to_numpy(), n_applicants, seed)
    report["rows_by_slice"] = {n: len(new[n]) for n in FIT_SLICES}
    return dataclasses.replace(split, **new), report


# --------------------------------------------------------------------------- evaluation


def expected_auc(true_pd: np.ndarray, score: np.ndarray) -> float | None:
    """AUC against outcomes drawn from ``true_pd`` (its expectation over the draws, by the
    ratio of expected concordant pairs to expected default/non-default pairs): ranking
    quality through the door, where the declined people's outcomes were never observed."""
    p = np.asarray(true_pd, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    if len(p) < 2:
        return None
    uniq, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse, weights=p, minlength=len(uniq))
    neg = np.bincount(inverse, weights=1.0 - p, minlength=len(uniq))
    neg_below = np.cumsum(neg) - neg
    # pairs (i default, j not) with s_i > s_j, ties half; minus each person paired with self
    num = (pos * neg_below).sum() + 0.5 * (pos * neg).sum() - 0.5 * (p * (1 - p)).sum()
    den = p.sum() * (1 - p).sum() - (p * (1 - p)).sum()
    return float(num / den) if den > 0 else None


def ece_vs_truth(p: np.ndarray, true_pd: np.ndarray, n_bins: int = 10) -> float | None:
    """|mean predicted - mean true PD| over quantile bins of the prediction, size-weighted."""
    if len(p) == 0:
        return None
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, min(n_bins, len(p))) if len(g)]
    return float(sum(len(g) / len(p) * abs(p[g].mean() - true_pd[g].mean()) for g in groups))


def _group(p, tp, limit, lgd, n_bins) -> dict[str, Any]:
    if len(p) == 0:
        return {"n": 0}
    granted = limit > 0
    return {
        "n": len(p),
        "auc_vs_true_pd": expected_auc(tp, p),
        "ece_vs_true_pd": ece_vs_truth(p, tp, n_bins),
        "mean_pd": float(p.mean()),
        "mean_true_pd": float(tp.mean()),
        "pd_bias": float(p.mean() - tp.mean()),  # < 0: the model under-states the risk
        "approval_rate": float(granted.mean()),
        "mean_limit": float(limit.mean()),
        # per applicant, CNY: the loss the limits really carry vs what the model believes
        "expected_loss_true": float((tp * lgd * limit).mean()),
        "expected_loss_model": float((p * lgd * limit).mean()),
    }


def through_the_door(
    pd_: np.ndarray,
    true_pd: np.ndarray,
    limit: np.ndarray,
    decision: np.ndarray,
    lgd: float,
    n_bins: int = 10,
) -> dict[str, Any]:
    """The model on every applicant against the simulator's true PD: ranking, calibration
    and the expected loss of the limits it grants (true PD x LGD x limit), for everyone,
    the previously approved and the previously declined."""
    pd_, true_pd, limit = (np.asarray(a, dtype=np.float64) for a in (pd_, true_pd, limit))
    approved = pd.Series(decision, dtype="string").isin(APPROVED_DECISIONS).to_numpy(dtype=bool)
    return {
        name: _group(pd_[m], true_pd[m], limit[m], lgd, n_bins)
        for name, m in (
            ("all", np.ones(len(pd_), dtype=bool)),
            ("previously_approved", approved),
            ("previously_declined", ~approved),
        )
    }


def grey_zone_check(pd_: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
    """The model against the observed outcomes of the grey-zone approvals (approved at
    random, so unbiased for their band): mean PD vs default rate with a Wilson 95% interval."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n == 0:
        return None
    rate, z = float(y.mean()), 1.96
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {
        "n": n,
        "default_rate": rate,
        "default_rate_ci": [float(centre - half), float(centre + half)],
        "mean_pd": float(np.mean(pd_)),
    }
