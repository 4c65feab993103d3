"""A historical acceptance policy for the simulated world: where selection bias comes from.

A lender only observes the outcome of people its past policy approved. The simulator can
apply such a policy (``simulate.acceptance``, off by default) after it has drawn the world:

- an *older model* scores every applicant: the logit of the true PD plus Gaussian error
  (``old_model_noise``): it knew most of what the truth knows, imperfectly, including a
  little the data does not show (the truth's small person-level shock);
- the riskiest ``1 - approval_rate`` of the chunk's applicants (by that score) are
  declined, the rest approved; in a band of ``grey_zone_share`` of the applicants centred
  on the cut-off the decision is a fair coin instead (a lender's test band:
  ``grey_approved`` / ``grey_declined``), which keeps the approval rate and gives an
  unbiased sample of the band;
- a declined person never got credit, so their outcome is hidden (empty label). Every
  event lies before the observation date, so there are no later credit events to remove.

The policy draws from its own random stream (``SeedSequence(seed, spawn_key=(2, chunk))``)
and changes nothing else: the same people, events and truth as the world without it. The
truth table keeps everyone's true PD (and the older model's decision), so evaluation can
measure what the bias costs. With the policy off nothing here runs, and the simulator's
files are byte for byte those of a world that never heard of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from credit_scoring.config import AcceptanceParams
from credit_scoring.schemas import DECISION, LABEL

ACCEPTANCE_STREAM = 2


def decide(true_pd: np.ndarray, policy: AcceptanceParams, seed: int, chunk: int) -> np.ndarray:
    """The historical decision of each applicant (strings of ``schemas.DECISIONS``).

    The cut-off is the ``approval_rate`` quantile of the older model's risk score within
    the chunk (chunks are large: 50,000 people by default), so the approval rate holds
    whatever the world's default rate.
    """
    n = len(true_pd)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ACCEPTANCE_STREAM, chunk)))
    p = np.clip(true_pd, 1e-9, 1 - 1e-9)
    risk = np.log(p / (1 - p)) + policy.old_model_noise * rng.standard_normal(n)
    coin = rng.random(n) < 0.5
    if n == 0:
        return np.array([], dtype=object)
    rank = (np.argsort(np.argsort(risk, kind="stable"), kind="stable") + 0.5) / n  # in (0, 1)
    half = policy.grey_zone_share / 2
    lo, hi = policy.approval_rate - half, policy.approval_rate + half
    grey = (rank >= lo) & (rank < hi)
    out = np.where(rank < policy.approval_rate, "approved", "declined").astype(object)
    out[grey] = np.where(coin[grey], "grey_approved", "grey_declined")
    return out


def is_approved(decision: pd.Series | np.ndarray) -> np.ndarray:
    """True where the decision granted credit (so an outcome can exist)."""
    d = pd.Series(decision, dtype="string")
    return d.isin(["approved", "grey_approved"]).to_numpy(dtype=bool)


def apply_policy(
    outcomes: pd.DataFrame, truth: pd.DataFrame, policy: AcceptanceParams, seed: int, chunk: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outcomes with the ``decision`` column and the declined people's labels hidden, and
    the truth with the decision beside the true PD (rows in the same order)."""
    decision = decide(truth["true_pd"].to_numpy(), policy, seed, chunk)
    outcomes = outcomes.copy()
    outcomes[DECISION] = pd.array(decision, dtype="string")
    outcomes[LABEL] = outcomes[LABEL].mask(~is_approved(decision))
    truth = truth.copy()
    truth[DECISION] = pd.array(decision, dtype="string")
    return outcomes, truth


def policy_summary(decision: np.ndarray, true_pd: np.ndarray) -> dict:
    """Approval rate and the true default rate of each group: how much the policy hides."""
    decision = pd.Series(decision, dtype="string")
    approved = is_approved(decision)
    out = {
        "approval_rate": float(approved.mean()) if len(approved) else None,
        "decisions": {k: int(v) for k, v in decision.value_counts().sort_index().items()},
        "mean_true_pd_approved": float(true_pd[approved].mean()) if approved.any() else None,
        "mean_true_pd_declined": float(true_pd[~approved].mean()) if (~approved).any() else None,
    }
    return out
