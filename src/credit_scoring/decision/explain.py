"""Reason codes and dimension points from LightGBM's own feature contributions.

LightGBM's ``pred_contrib=True`` (TreeSHAP) splits each person's raw margin (log-odds of
default) exactly into one contribution per feature plus the expected value (the bias, the
same for everyone): ``margin = bias + sum(contrib)``. Everything here is built on that, so
the explanation describes the model that made the decision, not a surrogate.

LightGBM's contributions cost 10-50 times a prediction (TreeSHAP walks every path of every
tree); :func:`contributions` looks the same numbers up in per-tree tables instead
(:mod:`credit_scoring.decision.treeshap`, several times faster), and they are still
computed only when an explanation is asked for, once per row: :func:`decompose` takes the margin
(and so the PD and the score) from the contributions themselves, which makes the points add
up to exactly the score it returns. The bundle
(:meth:`credit_scoring.decision.bundle.CreditModel.decide_matrix`) is the one caller that
turns these parts into decisions.

Sign convention: a contribution > 0 raises the margin, so raises the PD and lowers the
score. Dimension points and per-feature points are in score points: positive points raise
the score. Reasons (adverse-action factors, :func:`adverse_reasons`) are measured against a
stated :class:`Reference` (the approved applicants of the calibration slice, not the
population mean): the permissible reason codes
(:mod:`credit_scoring.decision.reason_codes`) whose features raised the person's margin
most *above the approved applicants'*.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import ArrayLike

from credit_scoring.decision import reason_codes, treeshap
from credit_scoring.decision.reason_codes import REASON_CODES, ReasonCode
from credit_scoring.decision.scorecard import ScoreScale
from credit_scoring.features.registry import FeatureSpec, feature_spec
from credit_scoring.modelling.calibrate import Calibrator
from credit_scoring.modelling.train import prediction_threads
from credit_scoring.schemas import DIMENSIONS

#: Below this |sum of contributions| (log-odds) the secant slope of an isotonic calibrator
#: is replaced by its local slope around the bias (the secant would divide noise by ~0).
_TINY_MARGIN = 1e-6


# --------------------------------------------------------------------------- contributions


def contributions(
    booster: lgb.Booster,
    X: ArrayLike,
    num_iteration: int | None = None,
    num_threads: int | None = None,
    method: str = "tables",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature contributions to the raw margin and the bias, from the booster itself.

    The one implementation of contributions (batch, service, Dask and the reasons'
    reference all come here). ``method="tables"`` (default) looks LightGBM's own per-tree
    TreeSHAP values up in tables built once per booster
    (:mod:`credit_scoring.decision.treeshap`: equal to ``pred_contrib`` up to float
    rounding, ~1e-15, and several times faster); a booster the tables do not cover
    (categorical splits, too many patterns) falls back to ``pred_contrib``, as does
    ``method="lightgbm"``.

    Args:
        booster: A binary LightGBM booster.
        X: Feature matrix (n, f) in the booster's feature order; NaN = missing.
        num_iteration: Trees to use (the bundle's ``best_iteration``); None or <= 0 = all.
        num_threads: Threads; None = one thread for a handful of rows (a request in the
            service), else all cores, as for the margin
            (:func:`~credit_scoring.modelling.train.prediction_threads`).
        method: ``"tables"`` or ``"lightgbm"`` (``pred_contrib``, the reference).

    Returns:
        ``(contrib, bias)``: ``contrib`` (n, f) and ``bias`` (n,) such that
        ``bias + contrib.sum(axis=1)`` is the raw margin (up to float rounding, ~1e-15).
    """
    if method not in ("tables", "lightgbm"):
        raise ValueError(f"method must be 'tables' or 'lightgbm'; got {method!r}")
    x = np.ascontiguousarray(X, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != booster.num_feature():
        raise ValueError(
            f"X must be a 2-d matrix with {booster.num_feature()} columns; got shape {x.shape}"
        )
    if num_threads is None:
        num_threads = prediction_threads(x.shape[0])
    tables = treeshap.tables_for(booster, num_iteration) if method == "tables" else None
    if tables is not None:
        return treeshap.contributions(tables, x, num_threads)
    out = booster.predict(
        x, pred_contrib=True, num_iteration=num_iteration, num_threads=num_threads
    )
    if not isinstance(out, np.ndarray) or out.shape != (x.shape[0], x.shape[1] + 1):
        raise ValueError("contributions need a binary (single-output) booster")
    return out[:, :-1], out[:, -1].copy()


def used_features(booster: lgb.Booster, num_iteration: int | None = None) -> np.ndarray:
    """Boolean mask of the features the model splits on (in the first ``num_iteration`` trees).

    Cheap but not free: compute it once per loaded model, not per request.
    """
    it = num_iteration if num_iteration and num_iteration > 0 else None
    return booster.feature_importance(importance_type="split", iteration=it) > 0


# --------------------------------------------------------------------------- points


@functools.lru_cache(maxsize=32)
def _dimension_matrix(feature_dimensions: tuple[str, ...]) -> np.ndarray:
    """One-hot (f, 5) matrix: feature j belongs to dimension column d."""
    column = {d: i for i, d in enumerate(DIMENSIONS)}
    unknown = sorted({d for d in feature_dimensions if d not in column})
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; expected one of {list(column)}")
    m = np.zeros((len(feature_dimensions), len(DIMENSIONS)))
    m[np.arange(len(feature_dimensions)), [column[d] for d in feature_dimensions]] = 1.0
    m.setflags(write=False)
    return m


def _score_curve(margin: np.ndarray, calibrator: Calibrator, scale: ScoreScale) -> np.ndarray:
    """Unclipped, unrounded score as a function of the raw margin."""
    return scale.raw_score(calibrator.predict(margin))


def points_per_margin(
    bias: np.ndarray, total: np.ndarray, calibrator: Calibrator, scale: ScoreScale
) -> np.ndarray:
    """Score points lost per unit of margin contribution, per person (``k >= 0``).

    For a sigmoid (Platt) calibrator ``raw_score(sigmoid(a*m + b)) = offset -
    factor*(a*m + b)`` is linear in the margin, so ``k = factor*a`` exactly, for everyone.
    For any other monotone calibrator (isotonic) ``k`` is the secant slope between the bias
    and the person's margin, ``-(curve(bias + total) - curve(bias)) / total``, so that
    ``-k * total`` is exactly the person's score minus the base score; for
    ``|total| < 1e-6`` the local slope around the bias is used instead (a secant over ~0
    would amplify float noise).
    """
    bias, total = np.broadcast_arrays(
        np.asarray(bias, dtype=np.float64), np.asarray(total, dtype=np.float64)
    )
    if getattr(calibrator, "method", None) == "sigmoid":
        return _slope(bias, total, None, None, calibrator, scale)
    at_margin = _score_curve(bias + total, calibrator, scale)
    return _slope(bias, total, at_margin, _score_curve(bias, calibrator, scale), calibrator, scale)


def _slope(
    bias: np.ndarray,
    total: np.ndarray,
    at_margin: np.ndarray | None,
    at_bias: np.ndarray | None,
    calibrator: Calibrator,
    scale: ScoreScale,
) -> np.ndarray:
    """:func:`points_per_margin` given the score curve at the margin and at the bias (each
    computed once by the caller); the curve is evaluated again only for the rare people
    whose total contribution is ~0."""
    if getattr(calibrator, "method", None) == "sigmoid":
        return np.full(bias.shape, scale.factor * calibrator.coef_)
    tiny = np.abs(total) < _TINY_MARGIN
    start = np.where(tiny, bias - _TINY_MARGIN, bias)  # secant from start to start + step
    step = np.where(tiny, 2 * _TINY_MARGIN, total)
    end_curve, start_curve = np.array(at_margin), np.array(at_bias)  # copies
    if tiny.any():
        end_curve[tiny] = _score_curve(start[tiny] + step[tiny], calibrator, scale)
        start_curve[tiny] = _score_curve(start[tiny], calibrator, scale)
    return -(end_curve - start_curve) / step


def _largest_remainder(real: np.ndarray, target: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """Integers per row close to ``real`` (n, d) that sum exactly to ``target`` (n,).

    Floors every value, then hands out the missing units one by one to the largest
    fractional parts (ties: larger ``tie_break`` first). When ``target - sum(real)`` is
    within 1 (the normal case) each value ends on its floor or ceiling.
    """
    floor = np.floor(real)
    deficit = target - floor.sum(axis=1).astype(np.int64)
    per_all, extra = np.divmod(deficit, real.shape[1])  # extra in [0, d)
    # rank 0 = largest fractional part (then largest tie_break)
    order = np.lexsort((-tie_break, -(real - floor)), axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(real.shape[1])[None, :], axis=1)
    return floor.astype(np.int64) + per_all[:, None] + (rank < extra[:, None])


@dataclass(frozen=True)
class Decomposition:
    """A decision's numbers from the contributions, consistent by construction.

    ``score`` is the displayed 350-950 score, computed from ``margin`` (the sum of the
    contributions); ``base_points + points.sum(axis=1) == score`` exactly for every row,
    clipped scores included. ``unclipped_score`` is the rounded score before clipping
    (equal to ``score`` wherever the score is not clipped).
    """

    margin: np.ndarray  # (n,) raw log-odds of default
    pd: np.ndarray  # (n,) calibrated probability of default
    score: np.ndarray  # (n,) int64, clipped to the scale
    unclipped_score: np.ndarray  # (n,) int64, rounded but not clipped
    base_points: np.ndarray  # (n,) int64
    points: np.ndarray  # (n, 5) int64, columns in DIMENSIONS order
    points_per_margin: np.ndarray  # (n,) k of :func:`points_per_margin`, for the reasons


def decompose(
    contrib: ArrayLike,
    bias: ArrayLike,
    feature_dimensions: Sequence[str],
    calibrator: Calibrator,
    scale: ScoreScale,
) -> Decomposition:
    """Contributions -> margin -> PD -> score -> base and dimension points, in one pass.

    The margin is ``contrib.sum(axis=1) + bias``; the PD, the score and the score curve at
    the margin and at the bias are each computed once, and the points per margin ``k``
    reuse them. See :func:`dimension_points` for the definition of the points.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.ndim != 2 or contrib.shape[1] != len(feature_dimensions):
        raise ValueError(
            f"contrib must be (n, {len(feature_dimensions)}) to match feature_dimensions; "
            f"got shape {contrib.shape}"
        )
    n = contrib.shape[0]
    bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), (n,))
    by_dim = contrib @ _dimension_matrix(tuple(str(d) for d in feature_dimensions))
    total = contrib.sum(axis=1)
    margin = total + bias
    pd_ = calibrator.predict(margin)
    at_margin = scale.raw_score(pd_)  # the score curve at the margin, once
    at_bias = _score_curve(bias, calibrator, scale)
    unclipped = np.rint(at_margin).astype(np.int64)
    score = np.clip(unclipped, scale.min_score, scale.max_score)
    base = np.clip(np.rint(at_bias).astype(np.int64), scale.min_score, scale.max_score)
    k = _slope(bias, total, at_margin, at_bias, calibrator, scale)
    real = -k[:, None] * by_dim
    # A clipped score: the points share the displayed score's distance from the base in
    # proportion to the unclipped real points (shrunk by the same factor for every dimension).
    span = real.sum(axis=1)
    shrink = np.divide(score - base, span, out=np.zeros(n), where=np.abs(span) > 0)
    real = np.where((unclipped != score)[:, None], real * shrink[:, None], real)
    points = _largest_remainder(real, score - base, np.abs(by_dim))
    return Decomposition(
        margin=margin,
        pd=pd_,
        score=score,
        unclipped_score=unclipped,
        base_points=base,
        points=points,
        points_per_margin=k,
    )


def dimension_points(
    contrib: ArrayLike,
    bias: ArrayLike,
    feature_dimensions: Sequence[str],
    calibrator: Calibrator,
    scale: ScoreScale,
) -> tuple[np.ndarray, np.ndarray]:
    """Base points and integer points per dimension that add up exactly to the score.

    Definition (per person, margin ``m = bias + sum(contrib)``):

    - ``base = rint(raw_score(calibrator.predict(bias)))``: the score of the average person
      (TreeSHAP's expected value), the same for everyone.
    - The rest, ``rint(raw_score(calibrator.predict(m))) - base``, is shared among the five
      dimensions in proportion to each dimension's summed contribution ``D_d``: the real
      points are ``-k * D_d`` with ``k = points_per_margin(...)``. For a sigmoid (Platt)
      calibrator the score is linear in the margin, so this is the exact linear
      decomposition ``-factor * a * D_d`` (the same ``k`` for everyone, and points are
      comparable across people). For an isotonic calibrator the score is a non-linear
      (piecewise) function of the margin, so there is no exact per-feature decomposition;
      ``k`` is the person's secant slope, which allocates the exact total proportionally.
      Since calibrators are non-decreasing, ``k >= 0``: a dimension whose contributions
      raised the margin (PD) gets negative points. If the total contribution is ~0
      (``|sum| < 1e-6`` log-odds) the secant is replaced by the local slope around the
      bias, so offsetting dimensions still show as opposite points (0 where the isotonic
      curve is flat), and the rounding difference (at most 1 point) goes to the dimension
      with the largest ``|D_d|`` (ties in the fractional parts are broken that way).
    - Integer rounding by largest remainder: the real points are floored and the missing
      units go to the largest fractional parts, so ``base + points.sum(axis=1)`` equals
      the displayed score exactly, as integers, and each dimension ends on the floor or
      ceiling of its real points.

    Exactness: ``rint(raw_score(pd))`` is exactly the displayed score
    (``ScoreScale.score``) whenever that score is not clipped, provided the displayed score
    was computed from the same margin, ``contrib.sum(axis=1) + bias`` (as
    :func:`decompose` does). (A margin from ``Booster.predict(raw_score=True)``
    differs by float rounding only, ~1e-15, which changes the integer score only if its
    raw score lies that close to a half-integer.)

    Clipped scores: when the score is clipped to 350 or 950 the real points of every
    dimension are shrunk by one common factor, ``(score - base) / (unclipped - base)``, so
    they share the *displayed* score's distance from the base in the same proportions, and
    ``base + points.sum()`` is the displayed score (350 or 950) for every row. The base is
    clipped to the scale as well (it is inside it for any sensible model).

    Args:
        contrib: Contributions (n, f) from :func:`contributions`.
        bias: The bias (n,) (or a scalar) from :func:`contributions`.
        feature_dimensions: Dimension value of each of the f features (``Dimension`` or str).
        calibrator: The fitted calibrator of the model.
        scale: The score scale.

    Returns:
        ``(base_points (n,), points (n, 5))`` as int64, columns in :data:`DIMENSIONS` order.
    """
    parts = decompose(contrib, bias, feature_dimensions, calibrator, scale)
    return parts.base_points, parts.points


# --------------------------------------------------------------------------- reasons


@dataclass(frozen=True)
class Reference:
    """What reasons are measured against: per feature, a reference contribution (log-odds)
    and a reference value, with the population they come from.

    A bundle fitted by :meth:`~credit_scoring.decision.bundle.CreditModel.fit` uses the
    **approved applicants** of its calibration slice (score >= the cut-off): the mean
    contribution and the median known value of each feature among them. A feature lowers
    a person's score, for a notice, by how much more it raises their margin than it does
    for the average approved applicant (``contrib - contribution``).
    """

    contribution: np.ndarray  # (f,)
    value: np.ndarray  # (f,), NaN where no approved applicant had a value
    population: str
    n: int = 0

    @classmethod
    def population_mean(cls, n_features: int) -> Reference:
        """TreeSHAP's own reference (0 = the training population's mean margin): only for
        a bundle built by hand without an approved-applicant reference."""
        return cls(
            np.zeros(n_features),
            np.full(n_features, np.nan),
            "training population mean (no approved-applicant reference in this bundle)",
        )

    @classmethod
    def of_approved(
        cls, contrib: np.ndarray, X: np.ndarray, approved: np.ndarray, cutoff: int
    ) -> Reference:
        """The mean contribution and median known value of each feature among ``approved``."""
        approved = np.asarray(approved, dtype=bool)
        if not approved.any():
            raise ValueError("no approved applicant to measure reasons against")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            value = np.nanmedian(X[approved], axis=0)
        return cls(
            contrib[approved].mean(axis=0),
            value,
            f"approved applicants (score >= {cutoff}) of the calibration slice",
            int(approved.sum()),
        )

    def to_dict(self, feature_names: Sequence[str]) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        return {
            "population": self.population,
            "n": self.n,
            "contribution": dict(zip(feature_names, map(float, self.contribution), strict=True)),
            "value": dict(zip(feature_names, map(num, self.value), strict=True)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], feature_names: Sequence[str]) -> Reference:
        values = [data["value"][n] for n in feature_names]
        return cls(
            np.array([float(data["contribution"][n]) for n in feature_names]),
            np.array([np.nan if v is None else float(v) for v in values]),
            str(data["population"]),
            int(data.get("n", 0)),
        )


@functools.lru_cache(maxsize=32)
def _reason_columns(
    feature_names: tuple[str, ...],
    catalogue: tuple[FeatureSpec, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[ReasonCode, ...]]:
    """Per feature: the index of its value code and of its absence code in ``codes`` (-1:
    none, or not permissible), whether it may give reasons at all (scored, constrained,
    covered), and its risk direction; ``codes`` lists every permissible code once.

    A feature of ``catalogue`` that is not the registry's (a lender's declared feature,
    even one sharing a registry name) gets a value code of its own, ``U:<name>``, worded
    from its declaration."""
    codes = [c for c in REASON_CODES if c.permissible]
    at = {c.code: i for i, c in enumerate(codes)}
    f = len(feature_names)
    value_code, missing_code = np.full(f, -1), np.full(f, -1)
    eligible, direction = np.zeros(f, dtype=bool), np.zeros(f)
    for j, name in enumerate(feature_names):
        spec = feature_spec(name) if catalogue is None else catalogue[j]
        direction[j] = spec.risk_direction
        if catalogue is not None and not _registry_spec(name, spec):
            eligible[j] = spec.scored and spec.risk_direction != 0
            if eligible[j]:
                at[f"U:{name}"] = len(codes)
                codes.append(declared_code(spec))
                value_code[j] = at[f"U:{name}"]
            continue
        eligible[j] = reason_codes.can_give_reason(spec)
        for missing, out in ((False, value_code), (True, missing_code)):
            code = reason_codes.code_for(name, missing)
            if code is not None and code.permissible:
                out[j] = at[code.code]
    return value_code, missing_code, eligible, direction, tuple(codes)


def _registry_spec(name: str, spec: FeatureSpec) -> bool:
    """``spec`` is the registry's own feature ``name`` (not a lender's declaration that
    happens to share its name)."""
    try:
        return feature_spec(name) == spec
    except KeyError:
        return False


def declared_code(spec: FeatureSpec) -> ReasonCode:
    """The reason code of a lender's declared feature: ``U:<name>``, its declared wording."""
    return ReasonCode(f"U:{spec.name}", spec.reason.text, (spec.name,), zero=spec.reason.zero)


def adverse_reasons(
    contrib: ArrayLike,
    X: ArrayLike,
    feature_names: Sequence[str],
    used: ArrayLike,
    max_reasons: int,
    reference: Reference,
    points_per_margin: ArrayLike | None = None,
    declined: ArrayLike | None = None,
    catalogue: Sequence[FeatureSpec] | None = None,
) -> list[list[dict[str, Any]]]:
    """Adverse-action reasons: the codes that lowered each person's score most against
    ``reference`` (see :mod:`credit_scoring.decision.reason_codes` for the rules).

    A feature ``j`` counts towards its code for person ``i`` when it is used by the model,
    scored, constrained and covered by a permissible code; its contribution exceeds the
    reference's (``delta = contrib[i, j] - reference.contribution[j] > 0``); and its value
    is worse than the reference value in the feature's risk direction, or missing where
    an absence code states that absence. A code's contribution is the sum of its features'
    deltas; up to ``max_reasons`` codes with the largest ones are given, largest first.

    ``catalogue``: the features' metadata in feature order (the bundle's; default: the
    feature registry). A lender's own feature (declared in its metadata, not the
    registry's) gets its own code ``U:<name>`` worded from its declaration, permissible
    when it is scored and constrained; its missing values give no reason.

    Each reason is a dict with ``code``, ``feature`` (the code's feature with the largest
    delta, whose value fills the sentence), ``dimension``, ``value`` (None when missing),
    ``contribution`` (log-odds above the reference), ``text`` and, when
    ``points_per_margin`` (n,) is given, ``points``: the score points it cost against the
    reference (< 0, rounded to 0.1).

    ``declined`` (n,) bool: these people get at least one reason. When none of their
    features passes the rules (no value better than the reference is ever stated as
    adverse), they get :data:`~credit_scoring.decision.reason_codes.FALLBACK_CODE`
    (feature and dimension "", no points).
    """
    c = np.asarray(contrib, dtype=np.float64)
    x = np.asarray(X, dtype=np.float64)
    used_mask = np.asarray(used, dtype=bool)
    n, f = c.shape
    if x.shape != c.shape or used_mask.shape != (f,) or len(feature_names) != f:
        raise ValueError(
            f"contrib {c.shape}, X {x.shape}, used {used_mask.shape} and "
            f"{len(feature_names)} feature names do not match"
        )
    if reference.contribution.shape != (f,) or reference.value.shape != (f,):
        raise ValueError(f"the reference must have one value per feature ({f})")
    if max_reasons < 0:
        raise ValueError(f"max_reasons must be >= 0; got {max_reasons}")
    names = tuple(str(s) for s in feature_names)
    value_code, missing_code, eligible, direction, codes = _reason_columns(
        names, None if catalogue is None else tuple(catalogue)
    )
    if max_reasons == 0 or not codes:
        return [[] for _ in range(n)]
    fallback = {
        "code": reason_codes.FALLBACK_CODE.code,
        "feature": "",  # no feature: the record as a whole
        "dimension": "",
        "value": None,
        "contribution": 0.0,
        "text": reason_codes.FALLBACK_CODE.text,
    }
    missing = np.isnan(x)
    code = np.where(missing, missing_code[None, :], value_code[None, :])
    ref_value = reference.value[None, :]
    with np.errstate(invalid="ignore"):
        worse = np.where(
            missing, True, np.isnan(ref_value) | (direction[None, :] * (x - ref_value) > 0)
        )
    delta = c - reference.contribution[None, :]
    ok = (eligible & used_mask)[None, :] & (code >= 0) & worse & (delta > 0)
    must = np.zeros(n, dtype=bool) if declined is None else np.asarray(declined, dtype=bool)
    n_codes = len(codes)
    by_code = np.zeros((n, n_codes))
    rows, cols = np.nonzero(ok)
    np.add.at(by_code, (rows, code[rows, cols]), delta[rows, cols])
    # the code's feature with the largest delta (fills the sentence)
    best = np.zeros((n, n_codes), dtype=np.int64)
    for k in np.unique(code[ok]).tolist():
        members = np.flatnonzero((value_code == k) | (missing_code == k))
        sub = np.where(ok[:, members] & (code[:, members] == k), delta[:, members], -np.inf)
        best[:, k] = members[np.argmax(sub, axis=1)]
    top_k = min(max_reasons, n_codes)
    order = np.argsort(-np.where(by_code > 0, by_code, -np.inf), axis=1, kind="stable")
    top = order[:, :top_k]
    top_c = np.take_along_axis(by_code, top, axis=1)
    pts = None
    if points_per_margin is not None:
        ppm = np.broadcast_to(np.asarray(points_per_margin, dtype=np.float64), (n,))
        pts = np.round(-ppm[:, None] * top_c, 1)
    specs = {j: feature_spec(names[j]) if catalogue is None else catalogue[j] for j in range(f)}
    worded: dict[tuple[int, int, str | None], str] = {}  # values repeat: word each once

    def text_of(k: int, j: int, value: float | None) -> str:
        key = (k, j, None if value is None else value.hex())  # hex: -0.0 is not 0.0
        found = worded.get(key)
        if found is None:
            found = worded[key] = reason_codes.text(codes[k], specs[j], value)
        return found

    out: list[list[dict[str, Any]]] = []
    for i in range(n):
        row = []
        for r in range(top_k):
            k = int(top[i, r])
            if not top_c[i, r] > 0:
                break
            j = int(best[i, k])
            spec, xj = specs[j], float(x[i, j])
            value = None if math.isnan(xj) else xj
            reason: dict[str, Any] = {
                "code": codes[k].code,
                "feature": spec.name,
                "dimension": spec.dimension.value,
                "value": value,
                "contribution": float(top_c[i, r]),
                "text": text_of(k, j, value),
            }
            if pts is not None:
                reason["points"] = float(pts[i, r])
            row.append(reason)
        if not row and must[i]:
            row.append(dict(fallback, **({"points": 0.0} if pts is not None else {})))
        out.append(row)
    return out
