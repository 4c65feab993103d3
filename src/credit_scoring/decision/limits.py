"""Credit-limit and benefit-tier policy: pure, vectorised functions of score, PD and income.

The limit policy (Huabei-style, parameters in :class:`~credit_scoring.config.LimitParams`):

1. **Cut-off.** Below ``cutoff_score`` there is no credit: the limit is exactly 0.
2. **Capacity.** Monthly repayment capacity is the verified income times
   ``verified_income_weight`` when the income is verified; otherwise the declared income
   times ``declared_income_weight``; otherwise ``fallback_income``. NaN means "not known".
3. **Multiple.** The limit as a multiple of capacity rises linearly from
   ``income_multiple_at_cutoff`` at the cut-off to ``income_multiple_at_top`` at
   ``top_score`` and stays flat above it.
4. **Loss budget.** The limit is capped so that the expected loss ``pd * lgd * limit``
   stays within ``loss_budget``.
5. **Bounds and rounding.** Clipped to ``[min_limit, max_limit]`` and rounded *down* to a
   multiple of ``rounding``; an approved person never gets less than ``min_limit`` (rounded
   up to the step), so the result is either exactly 0 or a step multiple in the bounds.

Monotonicity: for a consistent (score, PD) pair a higher score never means a higher PD, and
every step above is non-decreasing in the score and non-increasing in the PD (the cut-off
jumps from 0 to at least ``min_limit``, the multiple rises, the loss cap
``loss_budget / (pd * lgd)`` rises as PD falls, clipping and flooring keep order), so a
higher score never gives a lower limit. That needs ``income_multiple_at_top >=
income_multiple_at_cutoff``, which :func:`check_policy` enforces with the other
consistency rules.

Note the order of the bounds: the minimum limit wins over the loss budget. With the
default policy this never matters (the PD at the cut-off is about 15%, so the expected loss
of a 500 CNY limit is about 45 CNY, far below the 300 CNY budget).
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


def repayment_capacity(
    declared_income: ArrayLike, verified_income: ArrayLike, policy: LimitParams
) -> np.ndarray:
    """Monthly income counted towards the limit, CNY (verified > declared > fallback).

    NaN (or a negative value, which no valid input has) means "not known".
    """
    declared = np.asarray(declared_income, dtype=np.float64)
    verified = np.asarray(verified_income, dtype=np.float64)
    has_verified = np.isfinite(verified) & (verified >= 0)
    has_declared = np.isfinite(declared) & (declared >= 0)
    from_declared = np.where(
        has_declared, declared * policy.declared_income_weight, policy.fallback_income
    )
    return np.where(has_verified, verified * policy.verified_income_weight, from_declared)


def income_multiple(score: ArrayLike, policy: LimitParams) -> np.ndarray:
    """Limit as a multiple of capacity: linear from the cut-off to ``top_score``, flat after."""
    s = np.asarray(score, dtype=np.float64)
    t = np.clip((s - policy.cutoff_score) / (policy.top_score - policy.cutoff_score), 0.0, 1.0)
    lo, hi = policy.income_multiple_at_cutoff, policy.income_multiple_at_top
    return lo + t * (hi - lo)


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
    lowest, highest = check_policy(policy)
    s = np.asarray(score, dtype=np.float64)
    p = np.asarray(pd, dtype=np.float64)
    if np.isnan(s).any():
        raise ValueError("score contains NaN")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("pd must be probabilities in [0, 1] without NaN")
    capacity = repayment_capacity(declared_income, verified_income, policy)
    limit = capacity * income_multiple(s, policy)
    expected_loss_rate = p * policy.lgd
    with np.errstate(divide="ignore", over="ignore"):  # PD 0 or subnormal: no cap
        loss_cap = np.where(expected_loss_rate > 0, policy.loss_budget / expected_loss_rate, np.inf)
    limit = np.minimum(limit, loss_cap)
    step = policy.rounding
    limit = np.floor(limit / step * (1.0 + _ROUNDING_SLACK)) * step
    limit = np.clip(limit, lowest, highest)
    return np.where(s >= policy.cutoff_score, limit, 0.0)


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
