"""Credit-limit and benefit-tier policy: pure, vectorised functions of score, PD and income.

The limit policy (Huabei-style, parameters in :class:`~credit_scoring.config.LimitParams`):

1. **Cut-off.** Below ``cutoff_score`` there is no credit: the limit is exactly 0.
2. **Capacity.** Monthly repayment capacity counts the verified income at
   ``verified_income_weight`` when the income is verified; otherwise the declared income at
   ``declared_income_weight`` and at most ``max_unverified_capacity`` (a claim without
   documents buys at most that much capacity, whatever is declared); and never less than
   the **capacity floor** ``fallback_income`` (which is also the capacity of a person whose
   income is unknown).
   NaN means "not known". A verified income *replaces* the declared one (a declared figure
   that verification contradicts no longer counts).
3. **Multiple.** The limit as a multiple of capacity rises linearly from
   ``income_multiple_at_cutoff`` at the cut-off to ``income_multiple_at_top`` at
   ``top_score`` and stays flat above it.
4. **Expected-loss cap.** The limit is capped so that the expected loss
   ``pd * lgd * limit`` stays within ``loss_budget``.
5. **Bounds and rounding.** Clipped to ``[min_limit, max_limit]`` and rounded *down* to a
   multiple of ``rounding``; an approved person never gets less than ``min_limit`` (rounded
   up to the step), so the result is either exactly 0 or a step multiple in the bounds. The
   minimum limit wins over the expected-loss cap (with the default policy this never
   matters: the PD at the cut-off is about 15%, so a 500 CNY limit has an expected loss of
   about 45 CNY, far below the 300 CNY budget).

Properties (tested with hypothesis in ``tests/decision/test_limits.py``), all else equal:

- **Hiding or lowering declared income never raises the limit**: an unknown income counts
  as the floor, and any declared income counts as at least the floor.
- **An unverified income counts for at most** ``max_unverified_capacity``: a lie about
  income buys at most the limit of that capacity (the robustness audit bounds the income
  scenarios by it).
- **More verified income never lowers the limit** (capacity is non-decreasing in it).
- **Verifying the declared amount never lowers the limit**: ``verified_income_weight >=
  declared_income_weight`` (:meth:`~credit_scoring.config.LimitParams.grantable_range`
  refuses a policy without it). Verifying a *lower* income than declared may lower it: the
  verified figure is the fact. Advice therefore states verification "at the declared
  amount" as a condition.
- **A higher score never lowers the limit**: for a consistent (score, PD) pair a higher
  score never means a higher PD, and every step above is non-decreasing in the score and
  non-increasing in the PD. That needs ``income_multiple_at_top >=
  income_multiple_at_cutoff``, which :func:`check_policy` enforces with the other rules.

:func:`limit_factors` says which of these steps set each person's limit (the basis of the
capacity, whether the expected-loss cap, the floor or the maximum bound), for the limit
reasons of :mod:`credit_scoring.decision.reason_codes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from credit_scoring.config import LimitParams, TierParams

#: Relative slack before rounding down, so 2999.9999999996 (float noise for 3000) is 3000.
_ROUNDING_SLACK = 1e-9


def check_policy(policy: LimitParams) -> tuple[float, float]:
    """Refuse an inconsistent policy; return the smallest and largest grantable limits.

    The rules live with the params (:meth:`LimitParams.grantable_range`), checked when
    params are read; this is the policy-side name for them.
    """
    return policy.grantable_range()


#: Capacity basis codes of :func:`limit_factors`.
BASIS_VERIFIED, BASIS_DECLARED, BASIS_FLOOR = 0, 1, 2


def _known(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    return v, np.isfinite(v) & (v >= 0)


def repayment_capacity(
    declared_income: ArrayLike, verified_income: ArrayLike, policy: LimitParams
) -> np.ndarray:
    """Monthly income counted towards the limit, CNY: the verified income at its weight,
    else the declared income at its weight capped at ``max_unverified_capacity``, never
    below the floor ``fallback_income``.

    NaN (or a negative value, which no valid input has) means "not known".
    """
    declared, has_declared = _known(declared_income)
    verified, has_verified = _known(verified_income)
    return np.maximum(
        _counted(declared, has_declared, verified, has_verified, policy), policy.fallback_income
    )


def _counted(declared, has_declared, verified, has_verified, policy: LimitParams) -> np.ndarray:
    """Income counted before the floor: verified at its weight, else declared at its weight
    up to ``max_unverified_capacity``, else 0."""
    unverified = np.minimum(
        declared * policy.declared_income_weight, policy.max_unverified_capacity
    )
    return np.where(
        has_verified,
        verified * policy.verified_income_weight,
        np.where(has_declared, unverified, 0.0),
    )


def income_multiple(score: ArrayLike, policy: LimitParams) -> np.ndarray:
    """Limit as a multiple of capacity: linear from the cut-off to ``top_score``, flat after."""
    s = np.asarray(score, dtype=np.float64)
    t = np.clip((s - policy.cutoff_score) / (policy.top_score - policy.cutoff_score), 0.0, 1.0)
    lo, hi = policy.income_multiple_at_cutoff, policy.income_multiple_at_top
    return lo + t * (hi - lo)


def _limit_steps(
    score: ArrayLike,
    pd: ArrayLike,
    declared_income: ArrayLike,
    verified_income: ArrayLike,
    policy: LimitParams,
) -> dict[str, np.ndarray]:
    """Every step of the policy, for :func:`credit_limit` and :func:`limit_factors`."""
    lowest, highest = check_policy(policy)
    s = np.asarray(score, dtype=np.float64)
    p = np.asarray(pd, dtype=np.float64)
    if np.isnan(s).any():
        raise ValueError("score contains NaN")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("pd must be probabilities in [0, 1] without NaN")
    capacity = repayment_capacity(declared_income, verified_income, policy)
    by_income = capacity * income_multiple(s, policy)
    expected_loss_rate = p * policy.lgd
    with np.errstate(divide="ignore", over="ignore"):  # PD 0 or subnormal: no cap
        loss_cap = np.where(expected_loss_rate > 0, policy.loss_budget / expected_loss_rate, np.inf)
    limit = np.minimum(by_income, loss_cap)
    step = policy.rounding
    limit = np.floor(limit / step * (1.0 + _ROUNDING_SLACK)) * step
    limit = np.clip(limit, lowest, highest)
    approved = s >= policy.cutoff_score
    return {
        "limit": np.where(approved, limit, 0.0),
        "approved": np.broadcast_to(approved, limit.shape),
        "capacity": np.broadcast_to(capacity, limit.shape),
        "by_income": np.broadcast_to(by_income, limit.shape),
        "loss_cap": np.broadcast_to(loss_cap, limit.shape),
        "lowest": np.full(limit.shape, lowest),
        "highest": np.full(limit.shape, highest),
    }


def credit_limit(
    score: ArrayLike,
    pd: ArrayLike,
    declared_income: ArrayLike,
    verified_income: ArrayLike,
    policy: LimitParams,
) -> np.ndarray:
    """Credit limit in CNY for each person: 0 below the cut-off, else in the policy bounds.

    Args:
        score: Integer 350-950 scores.
        pd: Calibrated probabilities of default in [0, 1] (the ones the scores came from).
        declared_income: Declared monthly income, CNY; NaN when not provided.
        verified_income: Verified monthly income, CNY; NaN when not verified.
        policy: The limit policy.

    Returns:
        float64 array broadcast from the inputs: exactly 0.0 below ``cutoff_score``, else a
        multiple of ``rounding`` in ``[min_limit, max_limit]``.
    """
    return _limit_steps(score, pd, declared_income, verified_income, policy)["limit"]


def limit_factors(
    score: ArrayLike,
    pd: ArrayLike,
    declared_income: ArrayLike,
    verified_income: ArrayLike,
    policy: LimitParams,
) -> dict[str, np.ndarray]:
    """What set each person's limit: the limit and the policy steps that bound it.

    Returns column arrays (one value per person):

    - ``limit``: :func:`credit_limit`;
    - ``basis``: the capacity's basis, :data:`BASIS_VERIFIED` (verified income at its
      weight), :data:`BASIS_DECLARED` (declared income at its weight) or
      :data:`BASIS_FLOOR` (the floor: no income known, or the counted one below it);
    - ``capacity``: the monthly capacity counted, CNY; ``multiple``: the score's multiple;
    - ``below_top``: the score is below ``top_score`` (the multiple can still grow);
    - ``unverified_capped``: the declared income counts for ``max_unverified_capacity``
      only (the cap on unverified income set the capacity);
    - ``loss_capped``: the expected-loss cap is below the income-based limit and set it;
    - ``at_min``: the limit is the minimum granted; ``at_max``: it is the maximum;
    - ``approved``: the score is at or above the cut-off.
    """
    steps = _limit_steps(score, pd, declared_income, verified_income, policy)
    declared, has_declared = _known(declared_income)
    verified, has_verified = _known(verified_income)
    shape = steps["limit"].shape
    has_verified = np.broadcast_to(has_verified, shape)
    has_declared = np.broadcast_to(has_declared, shape)
    counted = np.broadcast_to(
        _counted(declared, has_declared, verified, has_verified, policy), shape
    )
    basis = np.where(
        counted < policy.fallback_income,
        BASIS_FLOOR,
        np.where(has_verified, BASIS_VERIFIED, BASIS_DECLARED),
    )
    s = np.broadcast_to(np.asarray(score, dtype=np.float64), shape)
    limit, approved = steps["limit"], steps["approved"]
    return {
        "limit": limit,
        "approved": approved,
        "basis": basis,
        "capacity": steps["capacity"],
        "multiple": np.broadcast_to(income_multiple(s, policy), shape),
        "below_top": s < policy.top_score,
        "unverified_capped": (basis == BASIS_DECLARED)
        & (
            np.broadcast_to(declared, shape) * policy.declared_income_weight
            > policy.max_unverified_capacity
        ),
        "loss_capped": approved
        & (steps["loss_cap"] < steps["by_income"])
        & (limit > steps["lowest"]),
        "at_min": approved & (limit <= steps["lowest"]),
        "at_max": approved & (limit >= steps["highest"]),
    }


def benefit_tiers(score: ArrayLike, tiers: Sequence[TierParams]) -> list[list[str]]:
    """Names of the tiers each person unlocks (``score >= min_score``), in ``tiers`` order.

    The unlocked set only depends on how many distinct thresholds a score reaches, so there
    are at most ``len(tiers) + 1`` different answers: they are built once, and each person
    gets a fresh copy of theirs (one ``searchsorted`` over all people, no per-person test).
    """
    s = np.asarray(score).ravel()
    thresholds = np.unique([t.min_score for t in tiers])  # sorted, distinct
    reached = np.searchsorted(thresholds, s, side="right")  # thresholds <= score
    options: list[list[str]] = [[]]  # options[k]: unlocked when k thresholds are reached
    options += [[t.name for t in tiers if t.min_score <= th] for th in thresholds.tolist()]
    return [list(options[k]) for k in reached.tolist()]
