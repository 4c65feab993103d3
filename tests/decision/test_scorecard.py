"""PDO score scaling: bounds, monotonicity and the textbook anchors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_scoring.config import ScoreParams
from credit_scoring.decision.scorecard import ScoreScale, assign_band

SCALE = ScoreScale.from_params(ScoreParams())


def test_base_odds_get_the_base_score_and_doubling_the_odds_adds_pdo():
    pd_base = 1 / (1 + ScoreParams().base_odds)
    odds2 = 2 * ScoreParams().base_odds
    assert SCALE.raw_score(np.array([pd_base]))[0] == pytest.approx(ScoreParams().base_score)
    assert SCALE.raw_score(np.array([1 / (1 + odds2)]))[0] == pytest.approx(
        ScoreParams().base_score + ScoreParams().pdo
    )


def test_scores_are_integers_in_range_and_non_increasing_in_pd_over_the_whole_range():
    """Including the clip edges: PD near 0 and near 1 give exactly 950 and 350."""
    pd_grid = np.r_[0.0, np.logspace(-9, -1, 2000), np.linspace(0.1, 1.0, 2000)]
    s = SCALE.score(pd_grid)
    assert s.dtype.kind == "i"
    assert s.min() == 350 and s.max() == 950, "the extremes must reach the clip edges"
    assert np.all(np.diff(s) <= 0), "a higher PD must never give a higher score"


@given(st.floats(1e-6, 1 - 1e-6), st.floats(1e-6, 1 - 1e-6))
def test_higher_score_always_means_lower_probability(p1, p2):
    s1, s2 = SCALE.score(np.array([p1, p2]))
    if p1 < p2:
        assert s1 >= s2
    raw1, raw2 = SCALE.raw_score(np.array([p1, p2]))
    if p1 < p2:
        assert raw1 > raw2, "the unrounded score is strictly decreasing in PD"


def test_pd_from_score_inverts_the_raw_score():
    p = np.array([0.001, 0.01, 0.05, 0.2, 0.6])
    assert np.allclose(SCALE.pd_from_score(SCALE.raw_score(p)), p)


def test_average_person_lands_in_the_600s():
    """Defaults: PD 5% (the population average) scores in the 600s, as with Sesame Credit."""
    assert 600 <= SCALE.score(np.array([0.05]))[0] < 700


def test_invalid_scale_is_refused_with_a_precise_message():
    with pytest.raises(ValueError, match="pdo must be > 0; got 0"):
        ScoreScale(600, 19, 0, 350, 950)
    with pytest.raises(ValueError, match="min_score must be <= max_score"):
        ScoreScale(600, 19, 40, 950, 350)


def test_bands_follow_the_public_edges():
    edges = ScoreParams().bands
    scores = np.array([350, 549, 550, 599, 600, 649, 650, 699, 700, 950])
    assert list(assign_band(scores, edges)) == [
        "poor",
        "poor",
        "fair",
        "fair",
        "good",
        "good",
        "very good",
        "very good",
        "excellent",
        "excellent",
    ]
