"""The promotion gate: a pure rule that says whether a challenger may become champion.

The challenger must be calibrated (ECE), stable (score PSI) and *measurably* better than
the champion: both are re-scored on the same people (the test cohort) and the difference
of their AUCs gets a DeLong confidence interval (:func:`delong_auc_difference`, the paired
test for two correlated ROC curves). Promotion needs the interval's lower bound to clear
``gate.min_auc_gain``: a gain inside the noise (AUC's standard error is about 0.01 on a
few thousand people) does not replace a model that works.

A model is never compared on rows it was fit on. The challenger is the *validated* model
(train and calibration slices; never the deployed refit, which saw the test cohort). The
champion is re-scored as its own validated twin when its run kept one (else as the
registered model), and only on the rows :func:`unseen_rows` allows: exactly its held-out
test cohort, or rows observed at dates none of its fitting rows had (README "Validated
model and deployed refit"). When no such row is left, the champion counts as not
re-scorable.

There is no fallback to metrics logged on another cohort. When the champion cannot be
re-scored on today's cohort (its feature set changed, its artefact is gone), the gate says
so and applies the stated rule ``gate.on_unscorable_champion``: ``refuse`` (default: the
champion stays until a person compares the two) or ``promote`` (the challenger replaces it
on its own merits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm

from credit_scoring.config import GateParams
from credit_scoring.modelling.refit import rows_fingerprint
from credit_scoring.schemas import DATE


@dataclass(frozen=True)
class AucComparison:
    """Challenger vs champion AUC on the same people, with a DeLong interval of the gain."""

    auc_challenger: float
    auc_champion: float
    difference: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    n: int
    n_defaults: int
    method: str = "DeLong"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = len(x)
    ranks = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j < n and xs[j] == xs[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n, dtype=np.float64)
    out[order] = ranks
    return out


def _delong_components(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and its structural components V10 (per defaulter) and V01 (per payer).

    Fast DeLong (Sun & Xu 2014): with midranks over all, over defaulters and over payers,
    ``V10_i = (R_i - R^pos_i) / n_neg`` and ``V01_j = 1 - (R_j - R^neg_j) / n_pos``.
    Higher ``p`` = riskier, so the AUC is P(p(defaulter) > p(payer)).
    """
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    r_all = _midranks(np.concatenate([pos, neg]))
    r_pos, r_neg = _midranks(pos), _midranks(neg)
    v10 = (r_all[:m] - r_pos) / n
    v01 = 1.0 - (r_all[m:] - r_neg) / m
    return float(v10.mean()), v10, v01


def delong_auc_difference(
    y: ArrayLike, p_challenger: ArrayLike, p_champion: ArrayLike, confidence: float = 0.95
) -> AucComparison:
    """AUC(challenger) - AUC(champion) on the same people, DeLong standard error, two-sided
    ``confidence`` interval and p-value (DeLong, DeLong & Clarke-Pearson 1988)."""
    y_arr = np.asarray(y).astype(int).ravel()
    a = np.asarray(p_challenger, dtype=np.float64).ravel()
    b = np.asarray(p_champion, dtype=np.float64).ravel()
    if not (len(y_arr) == len(a) == len(b)):
        raise ValueError(
            f"y, challenger and champion lengths differ: {len(y_arr)}, {len(a)}, {len(b)}"
        )
    if not np.isin(y_arr, (0, 1)).all() or not 0 < y_arr.sum() < len(y_arr):
        raise ValueError("y must be 0/1 with both classes present")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("predictions contain NaN or infinite values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    auc_a, v10_a, v01_a = _delong_components(y_arr, a)
    auc_b, v10_b, v01_b = _delong_components(y_arr, b)
    m, n = len(v10_a), len(v01_a)
    s10 = np.cov(np.vstack([v10_a, v10_b])) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack([v01_a, v01_b])) if n > 1 else np.zeros((2, 2))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    se = float(np.sqrt(max(var, 0.0)))
    diff = auc_a - auc_b
    z = float(norm.ppf(0.5 + confidence / 2))
    p_value = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return AucComparison(
        auc_challenger=auc_a,
        auc_champion=auc_b,
        difference=diff,
        std_error=se,
        ci_low=diff - z * se,
        ci_high=diff + z * se,
        confidence=confidence,
        p_value=p_value,
        n=len(y_arr),
        n_defaults=int(y_arr.sum()),
    )


def delong_auc_ci(
    y: ArrayLike, p: ArrayLike, confidence: float = 0.95
) -> tuple[float, float, float]:
    """One model's AUC and its two-sided DeLong ``confidence`` interval (clipped to [0, 1])."""
    y_arr = np.asarray(y).astype(int).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    if not 0 < y_arr.sum() < len(y_arr):
        raise ValueError("y must be 0/1 with both classes present")
    auc_, v10, v01 = _delong_components(y_arr, p_arr)
    var = (np.var(v10, ddof=1) if len(v10) > 1 else 0.0) / len(v10)
    var += (np.var(v01, ddof=1) if len(v01) > 1 else 0.0) / len(v01)
    half = float(norm.ppf(0.5 + confidence / 2)) * float(np.sqrt(var))
    return auc_, max(0.0, auc_ - half), min(1.0, auc_ + half)


@dataclass
class GateDecision:
    """Whether the challenger becomes champion, and every reason, pass or fail."""

    promote: bool
    reasons: list[str] = field(default_factory=list)
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, Any] | None,
    gate: GateParams,
    comparison: AucComparison | None = None,
    fairness_breaches: list[str] | None = None,
    block_on_fairness: bool = False,
) -> GateDecision:
    """Pure promotion rule: calibrated, stable and better than the champion on the same test.

    ``champion`` is None when there is no champion; otherwise it describes it (version,
    and ``rescored`` false with ``why`` when it could not be re-scored). ``comparison``
    is the paired AUC comparison on the same cohort (None when the champion could not be
    re-scored: then ``gate.on_unscorable_champion`` decides). ``fairness_breaches``
    (from reports/fairness.json; None = no fairness report) refuse promotion only when
    ``block_on_fairness`` (params ``fairness.block_promotion``) is true; otherwise they are
    listed as warnings so the decision record still shows them.
    """
    reasons: list[str] = []
    ok = True
    ece, psi = challenger["ece"], challenger["psi"]
    if ece <= gate.max_ece:
        reasons.append(f"pass: ECE {ece:.4f} <= {gate.max_ece}")
    else:
        ok = False
        reasons.append(f"fail: ECE {ece:.4f} > {gate.max_ece} (not calibrated enough)")
    if psi <= gate.max_psi:
        reasons.append(f"pass: score PSI {psi:.4f} <= {gate.max_psi}")
    else:
        ok = False
        reasons.append(f"fail: score PSI {psi:.4f} > {gate.max_psi} (score not stable)")
    if champion is None:
        reasons.append("pass: no current champion")
    elif comparison is None:
        why = champion.get("why", "no paired comparison")
        rule = gate.on_unscorable_champion
        if rule == "promote":
            reasons.append(
                f"warn: champion cannot be re-scored on this cohort ({why}); rule "
                "gate.on_unscorable_champion=promote: decided on the challenger alone"
            )
        else:
            ok = False
            reasons.append(
                f"fail: champion cannot be re-scored on this cohort ({why}); rule "
                "gate.on_unscorable_champion=refuse: the champion stays until a person "
                "compares them"
            )
    else:
        c = comparison
        ci = f"{100 * c.confidence:g}% CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
        head = (
            f"AUC {c.auc_challenger:.4f} vs champion {c.auc_champion:.4f} on the same "
            f"{c.n:,} people: gain {c.difference:+.4f}, {c.method} {ci}"
        )
        if c.ci_low > gate.min_auc_gain:
            reasons.append(f"pass: {head}; lower bound > margin {gate.min_auc_gain}")
        else:
            ok = False
            reasons.append(f"fail: {head}; lower bound <= margin {gate.min_auc_gain}")
    if fairness_breaches is not None:
        if not fairness_breaches:
            reasons.append("pass: no fairness breach")
        elif block_on_fairness:
            ok = False
            reasons += [f"fail: fairness: {b}" for b in fairness_breaches]
        else:
            reasons += [
                f"warn: fairness (not blocking, fairness.block_promotion false): {b}"
                for b in fairness_breaches
            ]
    return GateDecision(
        promote=ok,
        reasons=reasons,
        challenger=challenger,
        champion=champion,
        comparison=None if comparison is None else comparison.to_dict(),
    )


def unseen_rows(test: pd.DataFrame, fit: Mapping[str, Any] | None) -> np.ndarray:
    """Which rows of ``test`` a model was provably not fit on (boolean mask).

    ``fit`` is the model's fit record (``metadata["fit"]``, modelling/refit.py). When
    ``test`` is exactly the test cohort the model held out (same row keys, by fingerprint)
    every row is unseen; otherwise only rows observed at a date none of its booster,
    early-stopping or calibration rows had. A model without a record (or a record without
    dates) is trusted with no row.
    """
    n = len(test)
    if not fit or not fit.get("dates"):
        return np.zeros(n, dtype=bool)
    if fit.get("heldout_test") and rows_fingerprint(test) == fit["heldout_test"]:
        return np.ones(n, dtype=bool)
    seen = pd.to_datetime(pd.Series(list(fit["dates"]), dtype=object))
    return ~pd.to_datetime(test[DATE]).isin(seen).to_numpy()


def legacy_fit_record(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fit record of a bundle written before records existed: a validated model fit on
    the train, validation and calibration dates its ``cohorts`` list (held-out test
    unknown)."""
    if metadata.get("fit"):
        return dict(metadata["fit"])
    cohorts = metadata.get("cohorts") or {}
    fitted = ("train", "validation", "calibration")
    dates = sorted({str(d) for s in fitted for d in cohorts.get(s, [])})
    return {"role": "validated", "dates": dates, "heldout_test": None} if dates else None
