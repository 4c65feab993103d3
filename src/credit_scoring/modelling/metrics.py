"""Model-quality metrics for probability-of-default models, as credit-risk teams report them.

Discrimination (AUC, Gini, KS), accuracy of the probabilities (Brier, log loss, ECE) and
stability of a score distribution (PSI). Pure numpy/scikit-learn functions, so training,
evaluation, the promotion gate and monitoring all compute each number the same way.

Conventions: ``y`` is the 0/1 default label (1 = default, the "event"), ``p`` the predicted
probability of default. Higher ``p`` means riskier.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

#: Floor for bin shares in PSI, so an empty bin adds a large but finite term instead of inf.
PSI_EPSILON = 1e-4
#: Probabilities are clipped to [eps, 1 - eps] in the log loss, so a confident miss is finite.
LOG_LOSS_EPSILON = 1e-15


def _as_labels_and_probs(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate once at the edge: 1-d, same length, labels 0/1, probabilities in [0, 1]."""
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and p must have the same length; got {y_arr.size} and {p_arr.size}")
    if y_arr.size == 0:
        raise ValueError("y and p are empty; metrics need at least one row")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        bad = np.unique(y_arr[~np.isin(y_arr, (0.0, 1.0))])[:5]
        raise ValueError(f"y must contain only 0 and 1 (missing labels removed); got {bad}")
    if not np.isfinite(p_arr).all() or p_arr.min() < 0.0 or p_arr.max() > 1.0:
        raise ValueError(
            f"p must be probabilities in [0, 1]; got range [{np.nanmin(p_arr)}, {np.nanmax(p_arr)}]"
        )
    return y_arr, p_arr


def _both_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < y.size


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve: the chance a random defaulter is ranked riskier than a payer.

    Returns NaN when only one class is present (e.g. a small group with no defaults), so
    per-group or per-cohort reports degrade gracefully instead of crashing.
    """
    y_arr, p_arr = _as_labels_and_probs(y, p)
    if not _both_classes(y_arr):
        return float("nan")
    return float(roc_auc_score(y_arr, p_arr))


def gini(y: ArrayLike, p: ArrayLike) -> float:
    """Gini coefficient (accuracy ratio) = 2·AUC − 1, the form most scorecard reports quote."""
    return 2.0 * auc(y, p) - 1.0


def ks(y: ArrayLike, p: ArrayLike) -> float:
    """Kolmogorov–Smirnov statistic: the largest gap between the score CDFs of the two classes.

    Equal to max(TPR − FPR) over all thresholds; NaN when only one class is present.
    """
    y_arr, p_arr = _as_labels_and_probs(y, p)
    if not _both_classes(y_arr):
        return float("nan")
    fpr, tpr, _ = roc_curve(y_arr, p_arr)
    return float(np.max(tpr - fpr))


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Brier score: mean squared error of the probability; rewards calibration and ranking."""
    y_arr, p_arr = _as_labels_and_probs(y, p)
    return float(np.mean((p_arr - y_arr) ** 2))


def log_loss(y: ArrayLike, p: ArrayLike) -> float:
    """Mean negative log-likelihood (cross-entropy); p clipped to [1e-15, 1 − 1e-15]."""
    y_arr, p_arr = _as_labels_and_probs(y, p)
    p_arr = np.clip(p_arr, LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON)
    return float(-np.mean(y_arr * np.log(p_arr) + (1.0 - y_arr) * np.log1p(-p_arr)))


def ece(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error with EQUAL-FREQUENCY (quantile) bins of the predicted p.

    ECE = Σ_b (n_b / n) · |mean(y_b) − mean(p_b)|.

    Why equal-frequency rather than the textbook equal-width bins: with a ~5% default rate
    almost every prediction falls in the first of ten equal-width bins [0, 0.1), so the
    textbook ECE only checks the overall mean and says nothing about the low-risk vs the
    medium-risk population. Quantile bins give every bin n/n_bins rows, so the error is
    measured across the whole risk range where the people actually are. Rows are sorted by
    p (stable sort) and cut into ``n_bins`` nearly equal groups, so ties never leave a bin
    empty.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    y_arr, p_arr = _as_labels_and_probs(y, p)
    order = np.argsort(p_arr, kind="stable")
    groups = np.array_split(order, min(n_bins, y_arr.size))
    n = y_arr.size
    return float(sum(g.size / n * abs(y_arr[g].mean() - p_arr[g].mean()) for g in groups))


def psi(expected_scores: ArrayLike, actual_scores: ArrayLike, n_bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (e.g. train vs test).

    Bins are the quantiles of the EXPECTED distribution (deciles by default); the outer bins
    are open-ended so actual scores outside the expected range still count. Repeated
    quantile edges (a point mass, e.g. scores clipped at 350) are merged. Bin shares are
    floored at 1e-4 so an empty bin gives a large but finite contribution.
    PSI = Σ (a_i − e_i) · ln(a_i / e_i); < 0.10 stable, 0.10–0.25 watch, > 0.25 act.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    expected = np.asarray(expected_scores, dtype=np.float64).ravel()
    actual = np.asarray(actual_scores, dtype=np.float64).ravel()
    for name, arr in (("expected_scores", expected), ("actual_scores", actual)):
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    inner_edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    n_out = inner_edges.size + 1
    # Bins [edge_{i-1}, edge_i): a value equal to an edge goes to the upper bin.
    e_counts = np.bincount(np.searchsorted(inner_edges, expected, side="right"), minlength=n_out)
    a_counts = np.bincount(np.searchsorted(inner_edges, actual, side="right"), minlength=n_out)
    e_share = np.maximum(e_counts / expected.size, PSI_EPSILON)
    a_share = np.maximum(a_counts / actual.size, PSI_EPSILON)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def classification_metrics(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> dict[str, float]:
    """All probability metrics in one dict (keys auc, gini, ks, brier, ece, log_loss)."""
    return {
        "auc": auc(y, p),
        "gini": gini(y, p),
        "ks": ks(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p, n_bins),
        "log_loss": log_loss(y, p),
    }


def auc_interval(y: ArrayLike, p: ArrayLike, z: float = 1.96) -> dict[str, float]:
    """AUC with its Hanley-McNeil (1982) standard error and a normal ``z`` interval.

    Closed form and instant: SE² = (A(1-A) + (n₁-1)(Q₁-A²) + (n₀-1)(Q₂-A²)) / (n₁n₀) with
    Q₁ = A/(2-A), Q₂ = 2A²/(1+A). NaN everywhere with only one class.
    """
    y_arr, p_arr = _as_labels_and_probs(y, p)
    a = auc(y_arr, p_arr)
    n1 = float(y_arr.sum())
    n0 = float(y_arr.size - n1)
    if not np.isfinite(a):
        nan = float("nan")
        return {"auc": nan, "se": nan, "low": nan, "high": nan}
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    se = float(np.sqrt(max(var, 0.0)))
    return {"auc": a, "se": se, "low": max(0.0, a - z * se), "high": min(1.0, a + z * se)}


def default_rate(y: ArrayLike, p: ArrayLike) -> float:
    """Observed default rate (``p`` unused; the signature of the other metrics)."""
    y_arr, _ = _as_labels_and_probs(y, p)
    return float(y_arr.mean())


#: The metrics :func:`bootstrap_intervals` gives intervals for by default.
BOOTSTRAP_METRICS = ("auc", "ks", "ece", "default_rate")


def bootstrap_intervals(
    y: ArrayLike,
    p: ArrayLike,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    n_bins: int = 10,
    metrics: tuple[str, ...] = BOOTSTRAP_METRICS,
) -> dict[str, dict[str, float]]:
    """Percentile bootstrap intervals of AUC, KS, ECE and the default rate.

    Rows are resampled with replacement ``n_boot`` times (seeded); resamples with one class
    only are skipped for AUC and KS. Each metric gets ``{"value", "low", "high", "n_boot"}``
    so a test slice with 11 defaults is read as the range it is, not as a verdict.
    """
    y_arr, p_arr = _as_labels_and_probs(y, p)
    funcs = {
        "auc": auc,
        "ks": ks,
        "ece": lambda a, b: ece(a, b, n_bins),
        "brier": brier,
        "default_rate": default_rate,
    }
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in metrics}
    n = y_arr.size
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yb, pb = y_arr[idx], p_arr[idx]
        for m in metrics:
            v = funcs[m](yb, pb)
            if np.isfinite(v):
                draws[m].append(v)
    alpha = (1.0 - level) / 2.0
    out = {}
    for m in metrics:
        vals = np.asarray(draws[m])
        lo, hi = (
            (float(np.quantile(vals, alpha)), float(np.quantile(vals, 1 - alpha)))
            if vals.size
            else (float("nan"), float("nan"))
        )
        out[m] = {
            "value": float(funcs[m](y_arr, p_arr)),
            "low": lo,
            "high": hi,
            "n_boot": int(vals.size),
        }
    return out
