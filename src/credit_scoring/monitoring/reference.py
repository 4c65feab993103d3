"""The training reference the monitor compares production with, frozen at training.

Written by the train stage (``models/monitoring_reference.json``) from the training slice:
the quantile bins of the score, the limit and every model feature (with their shares and
missing rates), the approval rate, band and tier mix and reason-code frequencies. Bins are
frozen here so every later window is measured with the same ruler; re-binning each window
would hide a shift inside moved edges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from credit_scoring.decision.bundle import CreditModel
from credit_scoring.modelling.metrics import PSI_EPSILON

REFERENCE_VERSION = 1


def frozen_edges(values: ArrayLike, n_bins: int) -> list[float]:
    """Inner edges of ``n_bins`` quantile bins of the non-missing ``values`` (repeated
    edges of a point mass merged); an empty or all-missing column has no edges."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return []
    inner = np.quantile(arr, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def bin_shares(values: ArrayLike, edges: Sequence[float]) -> list[float]:
    """Shares of ``values`` in the bins ``[edge_{i-1}, edge_i)`` (outer bins open), then
    the share of missing values as the last bin; sums to 1 (all zeros when empty)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        return [0.0] * (len(edges) + 2)
    finite = np.isfinite(arr)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), arr[finite], side="right"),
        minlength=len(edges) + 1,
    )
    return [float(c) / arr.size for c in counts] + [float((~finite).sum()) / arr.size]


def psi_from_shares(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI = sum (a - e) ln(a / e) over bins, shares floored at 1e-4 (as
    :func:`credit_scoring.modelling.metrics.psi`), so an empty bin counts, finitely."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_EPSILON)
    if e.shape != a.shape:
        raise ValueError(f"bins differ: {e.size} expected shares, {a.size} actual")
    return float(np.sum((a - e) * np.log(a / e)))


def category_shares(values: Iterable[Any]) -> dict[str, float]:
    """Share of rows per category (a row may carry a list: tiers, reason codes)."""
    rows = list(values)
    counts: Counter[str] = Counter()
    for v in rows:
        items = v if isinstance(v, list | tuple | np.ndarray) else [v]
        counts.update(str(x) for x in items if x is not None)
    n = max(len(rows), 1)
    return {k: c / n for k, c in sorted(counts.items())}


def reason_codes(reasons: Iterable[Any]) -> list[list[str] | None]:
    """Reason lists (dicts with ``feature``, or names) as lists of feature names, the form
    the audit log stores (``reason_codes``)."""
    out: list[list[str] | None] = []
    for rs in reasons:
        if rs is None or (isinstance(rs, float) and rs != rs):
            out.append(None)
        else:
            out.append([r["feature"] if isinstance(r, dict) else str(r) for r in rs])
    return out


def build_reference(
    features: pd.DataFrame,
    decisions: pd.DataFrame,
    feature_names: Sequence[str],
    n_bins: int,
    reason_rows: Sequence[Sequence[str] | None] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The reference of one training slice: ``features`` (model feature columns) and the
    ``decisions`` made on the same rows (pd, score, band, credit_limit, tiers), plus the
    reason codes of a sample of them."""
    if len(features) != len(decisions) or len(features) == 0:
        raise ValueError(
            f"reference needs the same non-zero number of feature rows and decisions; "
            f"got {len(features)} and {len(decisions)}"
        )
    feats = {}
    for name in feature_names:
        col = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=np.float64)
        edges = frozen_edges(col, n_bins)
        finite = col[np.isfinite(col)]
        feats[name] = {
            "edges": edges,
            "shares": bin_shares(col, edges),
            "missing_rate": float(1.0 - finite.size / col.size),
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
        }
    score = decisions["score"].to_numpy(dtype=np.float64)
    limit = decisions["credit_limit"].to_numpy(dtype=np.float64)
    score_edges, limit_edges = frozen_edges(score, n_bins), frozen_edges(limit, n_bins)
    given = [r for r in reason_rows if r is not None]
    return {
        "version": REFERENCE_VERSION,
        "rows": len(decisions),
        "n_bins": n_bins,
        "feature_names": list(feature_names),
        "score": {"edges": score_edges, "shares": bin_shares(score, score_edges)},
        "limit": {"edges": limit_edges, "shares": bin_shares(limit, limit_edges)},
        "features": feats,
        "mean_pd": float(decisions["pd"].mean()),
        "approval_rate": float((limit > 0).mean()),
        "bands": category_shares(decisions["band"]),
        "tiers": category_shares(decisions["tiers"]),
        "reason_codes": category_shares(given),
        "reason_rows": len(given),
        **(extra or {}),
    }


def reference_from_model(
    model: CreditModel,
    frame: pd.DataFrame,
    n_bins: int,
    reason_sample: int,
    seed: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decide the training rows with the fitted bundle (reasons on a seeded sample of
    ``reason_sample`` rows: contributions cost ~50x a prediction) and build the reference."""
    names = model.feature_names
    X = model.feature_matrix(frame[names])
    decided = pd.DataFrame(model.decide_matrix(X, with_reasons=False))
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(frame), min(reason_sample, len(frame)), replace=False))
    sample = model.decide_matrix(X[take], with_reasons=True)
    return build_reference(
        frame[names], decided, names, n_bins, reason_codes(sample["reasons"]), extra
    )
