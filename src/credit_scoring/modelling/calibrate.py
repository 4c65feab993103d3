"""Map the booster's raw margin (log-odds) to a calibrated probability of default.

Boosted trees rank well but their probabilities drift with early stopping, regularisation
and cohort shift; the score scale, the limits and the promotion gate's ECE bound all need
probabilities that mean what they say. The calibrator is fitted on its own out-of-time
slice (never the training or test cohorts).

At predict time it is pure numpy over stored numbers (Platt coefficients or isotonic
thresholds), so the web service can call it per request, and it round-trips through a plain
JSON dict, so the deployable bundle saves it without pickle.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from credit_scoring.modelling import metrics

Method = Literal["isotonic", "sigmoid"]
METHODS: tuple[str, ...] = ("isotonic", "sigmoid")
#: Isotonic output is kept inside (P_MIN, P_MAX), so log-odds and log loss stay finite.
P_MIN, P_MAX = 1e-6, 1.0 - 1e-6
#: Platt scaling is almost unregularised: it only has two parameters and many rows.
PLATT_C = 1e6
N_FOLDS = 5


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function in plain numpy (no overflow warnings)."""
    return np.exp(-np.logaddexp(0.0, -z))


def _as_margin(margin: ArrayLike) -> np.ndarray:
    m = np.asarray(margin, dtype=np.float64)
    if not np.isfinite(m).all():
        raise ValueError("margin contains NaN or infinite values")
    return m


class Calibrator:
    """Monotone map from raw margin (log-odds) to calibrated probability of default.

    ``method="sigmoid"``: Platt scaling, p = sigmoid(a·margin + b), fitted by a logistic
    regression on the 1-d margin; smooth, keeps every distinction of the ranking.
    ``method="isotonic"``: a non-decreasing step-linear curve (isotonic regression on the
    margin); more flexible, needs more data, can tie neighbouring scores.

    Learned attributes: ``coef_``/``intercept_`` (sigmoid) or ``x_thresholds_``/
    ``y_thresholds_`` (isotonic; predictions interpolate linearly and clip at the ends).
    """

    def __init__(self, method: Method = "sigmoid") -> None:
        self.method = method

    def fit(self, margin: ArrayLike, y: ArrayLike) -> Calibrator:
        """Fit on the calibration slice's margins and 0/1 default labels."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        m = _as_margin(margin).ravel()
        y_arr = np.asarray(y, dtype=np.float64).ravel()
        if m.size != y_arr.size:
            raise ValueError(f"margin has {m.size} rows but y has {y_arr.size}")
        if not np.isin(y_arr, (0.0, 1.0)).all() or not 0 < y_arr.sum() < y_arr.size:
            raise ValueError("y must be 0/1 with both classes present")
        ranking = metrics.auc(y_arr, _sigmoid(m))  # the margin's own ranking
        if not ranking > 0.5:
            raise CalibrationError(
                f"the margin ranks defaults backwards or not at all on the calibration slice "
                f"(AUC {ranking:.3f} <= 0.5): a monotone calibrator cannot keep the ranking"
            )
        if self.method == "sigmoid":
            lr = LogisticRegression(C=PLATT_C, solver="lbfgs", max_iter=1000)
            lr.fit(m.reshape(-1, 1), y_arr.astype(int))
            self.coef_ = float(lr.coef_[0, 0])
            self.intercept_ = float(lr.intercept_[0])
        else:
            iso = IsotonicRegression(
                out_of_bounds="clip", y_min=P_MIN, y_max=P_MAX, increasing=True
            ).fit(m, y_arr)
            self.x_thresholds_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.y_thresholds_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        check_ranking(self)
        return self

    def _check_fitted(self) -> None:
        attr = "coef_" if self.method == "sigmoid" else "x_thresholds_"
        if not hasattr(self, attr):
            raise RuntimeError(f"this {self.method} Calibrator is not fitted; call fit first")

    def predict(self, margin: ArrayLike) -> np.ndarray:
        """Calibrated probability of default, same shape as ``margin``; numpy only."""
        self._check_fitted()
        m = _as_margin(margin)
        if self.method == "sigmoid":
            return _sigmoid(self.coef_ * m + self.intercept_)
        return np.interp(m, self.x_thresholds_, self.y_thresholds_)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable parameters (floats round-trip exactly through JSON)."""
        self._check_fitted()
        if self.method == "sigmoid":
            return {"method": "sigmoid", "coef": self.coef_, "intercept": self.intercept_}
        return {
            "method": "isotonic",
            "x_thresholds": self.x_thresholds_.tolist(),
            "y_thresholds": self.y_thresholds_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output."""
        method = data.get("method")
        if method == "sigmoid":
            cal = cls("sigmoid")
            cal.coef_ = float(data["coef"])
            cal.intercept_ = float(data["intercept"])
            return check_ranking(cal)
        if method == "isotonic":
            x = np.asarray(data["x_thresholds"], dtype=np.float64)
            y = np.asarray(data["y_thresholds"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or x.size == 0:
                raise ValueError("isotonic thresholds must be two equal-length, non-empty lists")
            if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic thresholds must be increasing in x, non-decreasing y")
            cal = cls("isotonic")
            cal.x_thresholds_, cal.y_thresholds_ = x, y
            return check_ranking(cal)
        raise ValueError(f"unknown calibrator method {method!r}; expected one of {METHODS}")

    def __repr__(self) -> str:
        return f"Calibrator(method={self.method!r})"


class CalibrationError(ValueError):
    """A calibrator that would invert (or erase) the model's ranking."""


def check_ranking(cal: Calibrator) -> Calibrator:
    """Refuse a calibrator that cannot keep the booster's ranking; return it unchanged.

    The score, the limits and the reasons all assume that a larger margin (more risk)
    never gives a lower PD and that the calibrator still separates people. A Platt slope
    ``<= 0`` would invert (or flatten) every score; an isotonic curve that decreases
    anywhere would invert part of it, and one that is flat end to end (sklearn's answer
    when the margin ranks defaults backwards) would give everyone the same PD. Each is one
    line of ``CalibrationError``.
    """
    if cal.method == "sigmoid":
        if not np.isfinite(cal.coef_) or cal.coef_ <= 0:
            raise CalibrationError(
                f"Platt slope must be > 0 (a larger margin must mean a larger PD); got "
                f"{cal.coef_:.6g}: the margin does not rank defaults on the calibration slice"
            )
        return cal
    y = cal.y_thresholds_
    if np.any(np.diff(y) < 0):
        raise CalibrationError("isotonic calibration decreases: it would invert the ranking")
    if y.size < 2 or y[-1] <= y[0]:
        raise CalibrationError(
            "isotonic calibration is flat: the margin does not rank defaults on the "
            "calibration slice"
        )
    return cal


def _out_of_fold(margin: np.ndarray, y: np.ndarray, method: str, seed: int) -> np.ndarray:
    """Out-of-fold predictions of one method (5-fold stratified; same folds for both)."""
    folds = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    oof = np.empty_like(margin)
    for fit_idx, held_idx in folds.split(margin.reshape(-1, 1), y):
        oof[held_idx] = (
            Calibrator(method).fit(margin[fit_idx], y[fit_idx]).predict(margin[held_idx])
        )
    return oof


def choose_calibrator(
    margin: ArrayLike, y: ArrayLike, method: str, n_bins: int, seed: int
) -> tuple[Calibrator, dict[str, Any]]:
    """Fit the calibrator named by ``method``; for ``"auto"`` pick it on held-out Brier.

    "auto" compares isotonic and sigmoid by 5-fold stratified cross-validation on the
    calibration slice (out-of-fold Brier, ECE with ``n_bins`` quantile bins, and AUC) and
    refits the winner on the whole slice. Isotonic wins only if its held-out Brier is lower
    by more than one standard error of the paired per-row difference (the "one-SE rule"):
    Platt scaling has two parameters and keeps every distinction of the ranking, while the
    isotonic steps tie neighbouring people and cost AUC, so a difference within noise goes
    to the simpler method. The report always has the uncalibrated sigmoid(margin) metrics.

    Returns:
        The fitted calibrator and a JSON-serialisable report.
    """
    m = _as_margin(margin).ravel()
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    if method not in (*METHODS, "auto"):
        raise ValueError(f"method must be 'auto', 'isotonic' or 'sigmoid'; got {method!r}")
    report: dict[str, Any] = {
        "method_requested": method,
        "n": int(m.size),
        "n_events": int(y_arr.sum()),
        "uncalibrated": {
            "brier": metrics.brier(y_arr, _sigmoid(m)),
            "ece": metrics.ece(y_arr, _sigmoid(m), n_bins),
        },
    }
    if method == "auto":
        n_minority = int(min(y_arr.sum(), y_arr.size - y_arr.sum()))
        if n_minority < N_FOLDS:
            raise ValueError(
                f"auto calibration needs at least {N_FOLDS} defaults and {N_FOLDS} "
                f"non-defaults for {N_FOLDS}-fold cross-validation; the smaller class has "
                f"{n_minority}. Use more calibration cohorts or a fixed method."
            )
        oof = {name: _out_of_fold(m, y_arr, name, seed) for name in METHODS}
        report["cv"] = {
            name: {
                "brier": metrics.brier(y_arr, p),
                "ece": metrics.ece(y_arr, p, n_bins),
                "auc": metrics.auc(y_arr, p),
            }
            for name, p in oof.items()
        }
        diff = (oof["isotonic"] - y_arr) ** 2 - (oof["sigmoid"] - y_arr) ** 2
        brier_gain, se = float(-diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))
        report["isotonic_brier_gain"] = {"mean": brier_gain, "standard_error": se}
        report["n_folds"] = N_FOLDS
        chosen: Method = "isotonic" if brier_gain > se else "sigmoid"
    else:
        chosen = "isotonic" if method == "isotonic" else "sigmoid"
    report["method"] = chosen
    return Calibrator(chosen).fit(m, y_arr), report
