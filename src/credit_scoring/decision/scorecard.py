"""Probability of default -> 350-950 score and band: points-to-double-the-odds scaling.

score = offset + factor * ln(odds_good), odds_good = (1 - pd) / pd,
factor = pdo / ln 2, offset = base_score - factor * ln(base_odds); clipped to
[min_score, max_score] and rounded to an integer. A higher score always means a lower
probability of default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from credit_scoring.config import ScoreParams

_EPS = 1e-12


@dataclass(frozen=True)
class ScoreScale:
    """The PDO scaling as a small value object (pure maths, no state)."""

    base_score: float
    base_odds: float
    pdo: float
    min_score: int
    max_score: int

    def __post_init__(self) -> None:
        if self.pdo <= 0:
            raise ValueError(f"pdo must be > 0; got {self.pdo}")
        if self.base_odds <= 0:
            raise ValueError(f"base_odds must be > 0; got {self.base_odds}")
        if self.min_score > self.max_score:
            raise ValueError(
                f"min_score must be <= max_score; got {self.min_score} > {self.max_score}"
            )

    @classmethod
    def from_params(cls, p: ScoreParams) -> ScoreScale:
        return cls(p.base_score, p.base_odds, p.pdo, p.min_score, p.max_score)

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def raw_score(self, pd_: np.ndarray) -> np.ndarray:
        """Unclipped, unrounded score: linear in the log-odds of being good."""
        p = np.clip(np.asarray(pd_, dtype=np.float64), _EPS, 1 - _EPS)
        return self.offset + self.factor * np.log((1 - p) / p)

    def score(self, pd_: np.ndarray) -> np.ndarray:
        """Integer score in [min_score, max_score]."""
        s = np.rint(self.raw_score(pd_))
        return np.clip(s, self.min_score, self.max_score).astype(np.int64)

    def pd_from_score(self, score: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`raw_score` (for policies written in score points)."""
        log_odds = (np.asarray(score, dtype=np.float64) - self.offset) / self.factor
        return 1.0 / (1.0 + np.exp(log_odds))


def assign_band(score: np.ndarray, edges: dict[str, int]) -> np.ndarray:
    """Band name for each score; ``edges`` maps band -> lowest score in it."""
    names = sorted(edges, key=edges.get)
    lows = np.array([edges[n] for n in names])
    idx = np.searchsorted(lows, np.asarray(score), side="right") - 1
    return np.asarray(names, dtype=object)[np.clip(idx, 0, len(names) - 1)]
