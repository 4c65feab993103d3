"""Credit-limit and benefit-tier policy: cut-off, bounds, rounding, monotonicity, tiers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from credit_scoring.config import DecisionParams, LimitParams, ScoreParams, TierParams
from credit_scoring.decision.limits import (
    BASIS_DECLARED,
    BASIS_FLOOR,
    BASIS_VERIFIED,
    benefit_tiers,
    check_policy,
    credit_limit,
    income_multiple,
    limit_factors,
    repayment_capacity,
)
from credit_scoring.decision.scorecard import ScoreScale

POLICY = LimitParams()
SCALE = ScoreScale.from_params(ScoreParams())
NAN = np.nan

incomes = st.one_of(st.just(NAN), st.floats(0, 1e6, allow_nan=False))


def limit_at(score, declared=NAN, verified=NAN, pd=None, policy=POLICY) -> np.ndarray:
    """The limit with the PD that belongs to the score (a consistent pair) unless given."""
    score = np.atleast_1d(np.asarray(score))
    pd = SCALE.pd_from_score(score) if pd is None else pd
    return credit_limit(score, pd, declared, verified, policy)


def test_three_people_get_the_hand_computed_limits():
    """Given three typical people, then each limit is the policy worked out by hand."""
    # 620: pd 5%, no income -> fallback 500 x (0.5 + 70/250 x 3.5 = 1.48) = 740 -> 700
    # 800: verified 10,000 x 4 = 40,000 (loss cap far above)
    # 550: declared 1,000 x 0.4 = 400 -> the 500 floor; x 0.5 = 250 -> the 500 minimum
    got = limit_at([620, 800, 550], declared=[NAN, NAN, 1000.0], verified=[NAN, 10_000.0, NAN])
    assert got.tolist() == [700.0, 40_000.0, 500.0], f"hand-computed limits differ: {got}"


def test_no_credit_below_the_cutoff_even_with_a_high_income():
    scores = np.arange(350, 550)
    got = limit_at(scores, verified=1e6)
    assert np.all(got == 0.0), f"scores below 550 must get exactly 0; got {got[got != 0]}"
    assert limit_at(550, verified=1e6)[0] >= POLICY.min_limit, "the cut-off score is approved"


def test_limits_are_zero_or_step_multiples_within_the_bounds():
    """Over random scores, PDs and incomes (NaN, 0, tiny, huge), never outside the policy."""
    rng = np.random.default_rng(7)
    n = 20_000
    score = rng.integers(350, 951, n)
    pd = rng.uniform(0, 1, n)
    declared = np.where(rng.random(n) < 0.3, NAN, rng.lognormal(8, 2, n))
    verified = np.where(rng.random(n) < 0.5, NAN, rng.lognormal(8, 2, n))
    declared[:100], verified[:100] = 0.0, NAN
    got = credit_limit(score, pd, declared, verified, POLICY)
    approved = got > 0
    assert np.all((got == 0) | ((got >= 500) & (got <= 50_000))), "limit outside [500, 50000]"
    assert np.all(got % 100 == 0), "limits must be multiples of 100 CNY"
    assert np.array_equal(approved, score >= POLICY.cutoff_score), "approval == above cut-off"


@given(st.integers(350, 950), st.integers(350, 950), incomes, incomes)
@example(549, 550, NAN, NAN)  # the cut-off
@example(550, 551, 1e6, 1e6)  # max_limit binds on both sides
@example(799, 800, NAN, 5_000.0)  # the top of the multiple
@example(800, 950, NAN, 20_000.0)  # flat multiple, max_limit
@example(550, 560, 0.0, 0.0)  # min_limit binds
def test_a_higher_score_never_gives_a_lower_limit(s1, s2, declared, verified):
    """With the PD that belongs to each score (pd_from_score), limit(s) is non-decreasing."""
    lo, hi = sorted((s1, s2))
    got = limit_at([lo, hi], declared=declared, verified=verified)
    assert got[0] <= got[1], f"score {lo} got {got[0]} but the higher score {hi} got {got[1]}"


def test_limit_is_non_decreasing_over_every_score_for_typical_incomes():
    """Exhaustive sweep 350..950 (cut-off, multiple slope, loss cap, both clip edges)."""
    scores = np.arange(350, 951)
    for declared, verified in [(NAN, NAN), (0.0, NAN), (3_000.0, NAN), (NAN, 8_000.0), (NAN, 1e6)]:
        got = limit_at(scores, declared=declared, verified=verified)
        drops = scores[1:][np.diff(got) < 0]
        assert drops.size == 0, f"limit drops at scores {drops} for income {declared}/{verified}"
    assert limit_at(950, verified=1e6)[0] == 50_000, "the top reaches max_limit"


@given(st.integers(550, 950), st.floats(0, 1), st.floats(0, 1), incomes)
def test_a_lower_pd_never_gives_a_lower_limit_at_the_same_score(score, p1, p2, verified):
    lo, hi = sorted((p1, p2))
    got = limit_at([score, score], verified=verified, pd=np.array([hi, lo]))
    assert got[0] <= got[1], f"PD {hi} got {got[0]} > {got[1]} for the lower PD {lo}"


def test_verified_income_counts_more_than_the_same_declared_income():
    income = np.array([1_000.0, 3_000.0, 8_000.0, 20_000.0])
    for score in (560, 650, 750, 900):
        as_verified = limit_at(np.full(4, score), declared=NAN, verified=income)
        as_declared = limit_at(np.full(4, score), declared=income, verified=NAN)
        assert np.all(as_verified >= as_declared), f"verified < declared at score {score}"
    assert limit_at(700, verified=5_000.0)[0] > limit_at(700, declared=5_000.0)[0], (
        "away from the bounds, verified income must give a strictly higher limit"
    )


def test_capacity_prefers_verified_then_declared_then_the_floor():
    cap = repayment_capacity([5_000.0, 5_000.0, NAN, NAN], [4_000.0, NAN, 4_000.0, NAN], POLICY)
    assert cap.tolist() == [4_000.0, 2_000.0, 4_000.0, 500.0], f"capacity {cap}"
    low = repayment_capacity([1_000.0, NAN, 0.0], [NAN, 300.0, NAN], POLICY)
    assert low.tolist() == [500.0, 500.0, 500.0], "a known income counts at least the floor"


# --------------------------------------------------------------- issue 13, finding 2

scores = st.integers(350, 950)
pds = st.floats(0, 1)
amounts = st.floats(0, 1e6, allow_nan=False)


@given(scores, amounts, incomes)
@example(650, 1_000.0, NAN)  # the issue's cases: declared 1,000 at 650/700/800
@example(700, 1_000.0, NAN)
@example(800, 1_000.0, NAN)
@example(800, 1_249.0, NAN)  # just under 500 / 0.4
def test_issue13_hiding_declared_income_never_raises_the_limit(score, declared, verified):
    hidden = limit_at(score, declared=NAN, verified=verified)[0]
    shown = limit_at(score, declared=declared, verified=verified)[0]
    assert hidden <= shown, f"hiding {declared} raised the limit {shown} -> {hidden}"


@given(scores, pds, amounts, amounts, incomes)
def test_issue13_lowering_declared_income_never_raises_the_limit(score, pd, d1, d2, verified):
    lo, hi = sorted((d1, d2))
    got = limit_at([score, score], declared=[lo, hi], verified=verified, pd=np.array([pd, pd]))
    assert got[0] <= got[1], f"declared {lo} got {got[0]} > {got[1]} for declared {hi}"


@given(scores, pds, amounts, amounts, incomes)
def test_issue13_more_verified_income_never_lowers_the_limit(score, pd, v1, v2, declared):
    lo, hi = sorted((v1, v2))
    got = limit_at([score, score], declared=declared, verified=[lo, hi], pd=np.array([pd, pd]))
    assert got[0] <= got[1], f"verified {lo} got {got[0]} > {got[1]} for verified {hi}"


@given(scores, pds, amounts)
@example(650, 0.02, 300.0)  # below the floor: verified at 300 must not undercut the floor
def test_issue13_verifying_the_declared_amount_never_lowers_the_limit(score, pd, declared):
    p = np.array([pd])
    before = limit_at(score, declared=declared, verified=NAN, pd=p)[0]
    after = limit_at(score, declared=declared, verified=declared, pd=p)[0]
    assert after >= before, f"verifying {declared} lowered the limit {before} -> {after}"


@given(scores, pds, incomes, incomes)
def test_issue13_the_floor_and_the_expected_loss_cap_hold_as_documented(
    score, pd, declared, verified
):
    """Approved: at least min_limit (the floor wins over the cap), at most max_limit; above
    the minimum, PD x LGD x limit within the budget; the capacity never below its floor."""
    got = limit_at(score, declared=declared, verified=verified, pd=np.array([pd]))[0]
    lowest, highest = check_policy(POLICY)
    if score < POLICY.cutoff_score:
        assert got == 0.0, "no credit below the cut-off"
        return
    assert lowest <= got <= highest, f"approved limit {got} outside [{lowest}, {highest}]"
    if got > lowest:
        assert pd * POLICY.lgd * got <= POLICY.loss_budget + 1e-6, "expected loss over budget"
    assert repayment_capacity(declared, verified, POLICY) >= POLICY.fallback_income


@given(scores, pds, amounts)
@example(800, 0.001, 1e6)  # a million declared: counts as the cap, 2,000 x 4 = 8,000
def test_an_unverified_income_counts_for_at_most_the_cap(score, pd, declared):
    """A claim without documents buys at most ``max_unverified_capacity`` of capacity:
    declaring any amount gives at most the limit of declaring exactly the cap's amount
    (the old policy counted 0.4 x any declared income, so a lie bought up to max_limit)."""
    cap = POLICY.max_unverified_capacity
    assert repayment_capacity(declared, NAN, POLICY) <= max(cap, POLICY.fallback_income)
    p = np.array([pd])
    at_cap = limit_at(score, declared=cap / POLICY.declared_income_weight, pd=p)[0]
    assert limit_at(score, declared=declared, pd=p)[0] <= at_cap


def test_the_cap_on_unverified_income_by_hand_and_verification_still_counts_in_full():
    """Score 800 (multiple 4): declared 100,000 counts 2,000 (not 40,000): 8,000, not the
    50,000 maximum; verified 100,000 counts in full (the maximum). The cap is a policy
    parameter, and below the capacity floor it is refused."""
    got = limit_at([800, 800, 800], declared=[100_000.0, 4_000.0, NAN], verified=[NAN, NAN, 1e5])
    assert got.tolist() == [8_000.0, 6_400.0, 50_000.0], got
    assert POLICY.max_unverified_capacity == 2_000.0
    loose = LimitParams(max_unverified_capacity=1e9)
    assert limit_at(800, declared=100_000.0, policy=loose)[0] == 50_000.0
    with pytest.raises(ValueError, match="max_unverified_capacity must be >= fallback_income"):
        LimitParams(max_unverified_capacity=400.0)
    factors = limit_factors(np.array([800]), np.array([0.001]), [1e5], [NAN], POLICY)
    assert factors["basis"].tolist() == [BASIS_DECLARED] and factors["capacity"][0] == 2_000.0


def test_issue13_a_policy_where_verifying_would_lower_the_limit_is_refused():
    with pytest.raises(ValueError, match="verified_income_weight must be >= declared"):
        LimitParams(verified_income_weight=0.3, declared_income_weight=0.4)


def test_issue13_limit_factors_name_what_set_each_limit():
    """Verified basis; declared basis capped by the expected loss; the floor; the maximum."""
    got = limit_factors(
        np.array([700, 700, 620, 950, 500]),
        np.array([0.02, 0.15, 0.05, 0.0001, 0.3]),
        [NAN, 50_000.0, NAN, NAN, NAN],
        [5_000.0, NAN, NAN, 1e6, NAN],
        POLICY,
    )
    assert got["limit"].tolist() == [13_000.0, 3_300.0, 700.0, 50_000.0, 0.0]
    assert got["basis"].tolist() == [BASIS_VERIFIED, BASIS_DECLARED, BASIS_FLOOR, 0, 2]
    assert got["loss_capped"].tolist() == [False, True, False, False, False]
    assert got["at_max"].tolist() == [False, False, False, True, False]
    assert got["approved"].tolist() == [True, True, True, True, False]


def test_expected_loss_cap_binds_for_a_high_pd():
    """Score 560 at PD 15% with a big verified income: capped at 300 / (0.15 x 0.6) = 3333."""
    got = limit_at(560, verified=50_000.0, pd=np.array([0.15]))[0]
    assert got == 3_300.0, f"the loss budget must cap the limit at 3300; got {got}"
    uncapped = limit_at(560, verified=50_000.0, pd=np.array([0.001]))[0]
    assert uncapped > got, "with a low PD the same person gets more"


def test_expected_loss_stays_within_the_budget_above_the_minimum_limit():
    rng = np.random.default_rng(3)
    score = rng.integers(550, 951, 5_000)
    pd = rng.uniform(0, 0.5, 5_000)
    got = credit_limit(score, pd, NAN, rng.lognormal(9, 1.5, 5_000), POLICY)
    above_min = got > POLICY.min_limit
    loss = pd * POLICY.lgd * got
    assert np.all(loss[above_min] <= POLICY.loss_budget + 1e-9), "expected loss over budget"


def test_income_multiple_is_linear_from_the_cutoff_to_the_top_and_flat_after():
    got = income_multiple(np.array([550, 675, 800, 950]), POLICY)
    assert got.tolist() == pytest.approx([0.5, 2.25, 4.0, 4.0]), f"multiples {got}"


def test_inconsistent_policies_are_refused_with_a_precise_message():
    with pytest.raises(ValueError, match="top_score must be > cutoff_score"):
        check_policy(LimitParams(cutoff_score=600, top_score=600))
    with pytest.raises(ValueError, match="income_multiple_at_top must be >= "):
        check_policy(LimitParams(income_multiple_at_cutoff=3.0, income_multiple_at_top=1.0))
    with pytest.raises(ValueError, match="min_limit must be <= max_limit"):
        check_policy(LimitParams(min_limit=1_000.0, max_limit=900.0))
    with pytest.raises(ValueError, match="pd must be probabilities"):
        credit_limit([600], [1.5], NAN, NAN, POLICY)


def test_a_minimum_off_the_rounding_grid_is_rounded_up_onto_it():
    policy = LimitParams(min_limit=450.0)
    got = limit_at(550, declared=0.0, policy=policy)[0]
    assert got == 500.0, f"an approved limit must be >= min_limit and a multiple of 100; {got}"


def test_tiers_unlock_exactly_at_their_thresholds():
    tiers = DecisionParams().tiers
    got = benefit_tiers(np.array([350, 599, 600, 649, 650, 699, 700, 950]), tiers)
    bike, car, flat, premium = (t.name for t in tiers)
    assert got == [
        [],
        [],
        [bike],
        [bike],
        [bike, car, flat],
        [bike, car, flat],
        [bike, car, flat, premium],
        [bike, car, flat, premium],
    ], f"tiers at the edges: {got}"


def test_tiers_keep_the_params_order_and_each_person_gets_their_own_list():
    tiers = [TierParams(name="b", min_score=700), TierParams(name="a", min_score=600)]
    got = benefit_tiers([700, 700, 650], tiers)
    assert got == [["b", "a"], ["b", "a"], ["a"]], "names must follow the params order"
    got[0].append("x")
    assert got[1] == ["b", "a"], "people must not share one list object"
    assert benefit_tiers([900], []) == [[]], "no tiers configured -> nothing unlocked"
