"""Reason codes and dimension points: exact to the displayed score, from the model's own
contributions, only used features, and sentences a person understands."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pytest

from credit_scoring.config import ScoreParams
from credit_scoring.decision import reason_codes
from credit_scoring.decision.bundle import POINT_COLUMNS, CreditModel
from credit_scoring.decision.explain import (
    DIMENSIONS,
    Reference,
    adverse_reasons,
    contributions,
    decompose,
    dimension_points,
    points_per_margin,
    used_features,
)
from credit_scoring.decision.reason_codes import code_for
from credit_scoring.decision.scorecard import ScoreScale
from credit_scoring.features.registry import feature_spec
from credit_scoring.modelling.calibrate import Calibrator
from credit_scoring.schemas import Dimension

SCALE = ScoreScale.from_params(ScoreParams())
# Registry features across all five dimensions; the last one is constant, so never used.
NAMES = [
    "n_late_30p_90d",
    "utilisation_latest",
    "ontime_rate_365d",
    "verified_income",
    "declared_income",
    "review_rate_365d",
    "spend_365d",
    "identity_verified",
    "profile_completeness",
    "contacts_late30_share_365d",
    "n_contacts",
    "n_profile_updates_365d",
]
UNUSED = NAMES.index("n_profile_updates_365d")
LATE = NAMES.index("n_late_30p_90d")
DIMS = [feature_spec(n).dimension for n in NAMES]
CH = DIMENSIONS.index(Dimension.CREDIT_HISTORY)


def _world(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic people whose default risk depends on the features (with some NaN)."""
    X = np.column_stack(
        [
            rng.poisson(0.4, n),
            rng.uniform(0, 1.2, n),
            rng.uniform(0.5, 1, n),
            np.where(rng.random(n) < 0.5, np.nan, rng.lognormal(8.5, 0.5, n)),
            rng.lognormal(8.5, 0.6, n),
            rng.uniform(0, 1, n),
            rng.lognormal(9, 1, n),
            rng.integers(0, 2, n),
            rng.uniform(0, 1, n),
            np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0, 0.5, n)),
            rng.poisson(4, n),
            np.zeros(n),
        ]
    ).astype(np.float64)
    z = (
        -3.2
        + 1.2 * X[:, 0]
        + 1.5 * X[:, 1]
        - 2.0 * (X[:, 2] - 0.75)
        - 0.5 * np.nan_to_num(np.log(X[:, 3]) - 8.5)
        - 0.5 * X[:, 5]
        - 0.4 * X[:, 7]
        + 2.0 * np.nan_to_num(X[:, 9])
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return X, y


@pytest.fixture(scope="module")
def model():
    """A small binary booster, its test rows and both kinds of calibrator."""
    rng = np.random.default_rng(11)
    X_train, y_train = _world(rng, 4_000)
    X_cal, y_cal = _world(rng, 4_000)
    X_test, _ = _world(rng, 1_500)
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "learning_rate": 0.1,
        "min_data_in_leaf": 40,
        "num_threads": 1,
        "deterministic": True,
        "seed": 1,
        "verbosity": -1,
    }
    booster = lgb.train(params, lgb.Dataset(X_train, y_train), num_boost_round=60)
    margin_cal = booster.predict(X_cal, raw_score=True)
    calibrators = {m: Calibrator(m).fit(margin_cal, y_cal) for m in ("sigmoid", "isotonic")}
    return booster, X_test, calibrators


def test_contributions_sum_to_the_raw_margin(model):
    booster, X, _ = model
    for n_iter in (None, 25):
        contrib, bias = contributions(booster, X, n_iter)
        margin = booster.predict(X, raw_score=True, num_iteration=n_iter)
        assert contrib.shape == X.shape, "one contribution per feature"
        assert np.allclose(bias + contrib.sum(axis=1), margin, rtol=0, atol=1e-10), (
            f"bias + contributions must be the raw margin (num_iteration={n_iter})"
        )
        assert np.all(bias == bias[0]), "the bias (expected value) is the same for everyone"
    one, _ = contributions(booster, X[:1])
    assert np.allclose(one, contributions(booster, X)[0][:1], atol=1e-12), (
        "a single row (one thread) gives the same contributions as a batch"
    )


def test_contributions_refuse_a_matrix_of_the_wrong_width(model):
    booster, X, _ = model
    with pytest.raises(ValueError, match="must be a 2-d matrix with 12 columns"):
        contributions(booster, X[:, :5])


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_base_plus_dimension_points_is_exactly_the_displayed_score(model, method):
    """For every unclipped person: base + 5 integer points == the score shown to them."""
    booster, X, calibrators = model
    cal = calibrators[method]
    contrib, bias = contributions(booster, X)
    base, points = dimension_points(contrib, bias, DIMS, cal, SCALE)
    displayed = SCALE.score(cal.predict(booster.predict(X, raw_score=True)))
    unclipped = (displayed > SCALE.min_score) & (displayed < SCALE.max_score)
    assert unclipped.mean() > 0.9, "the fixture must have mostly unclipped scores"
    assert points.shape == (len(X), 5) and points.dtype.kind == "i", "integer points, 5 dims"
    total = base + points.sum(axis=1)
    wrong = np.flatnonzero(unclipped & (total != displayed))
    assert wrong.size == 0, f"{wrong.size} people's points do not add up, e.g. row {wrong[:3]}"
    expected_base = np.rint(SCALE.raw_score(cal.predict(bias[:1])))[0]
    assert np.all(base == expected_base), "base = score of the average person (margin = bias)"


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_a_dimension_that_raised_the_pd_never_gets_positive_points(model, method):
    booster, X, calibrators = model
    contrib, bias = contributions(booster, X)
    _, points = dimension_points(contrib, bias, DIMS, calibrators[method], SCALE)
    by_dim = np.column_stack([contrib[:, [d == dim for d in DIMS]].sum(1) for dim in DIMENSIONS])
    assert not np.any((by_dim > 0) & (points > 0)), "a risk-raising dimension gained points"
    assert not np.any((by_dim < 0) & (points < 0)), "a risk-lowering dimension lost points"


def test_sigmoid_points_are_the_exact_linear_decomposition(model):
    """Platt: score = offset - factor*(a*m + b), so real points = -factor * a * D_d."""
    booster, X, calibrators = model
    cal = calibrators["sigmoid"]
    contrib, bias = contributions(booster, X)
    _, points = dimension_points(contrib, bias, DIMS, cal, SCALE)
    by_dim = np.column_stack([contrib[:, [d == dim for d in DIMS]].sum(1) for dim in DIMENSIONS])
    real = -SCALE.factor * cal.coef_ * by_dim
    assert np.all((points == np.floor(real)) | (points == np.ceil(real))), (
        "each integer point must be the floor or ceiling of the exact linear share"
    )
    k = points_per_margin(bias, by_dim.sum(1), cal, SCALE)
    assert np.allclose(k, SCALE.factor * cal.coef_), "sigmoid: same points per log-odds for all"


def test_more_late_payment_contribution_means_fewer_credit_history_points(model):
    """Raising only the late-payment feature's contribution lowers credit-history points."""
    _, _, calibrators = model
    cal = calibrators["sigmoid"]
    rng = np.random.default_rng(5)
    contrib = rng.normal(0, 0.2, (200, len(NAMES)))
    contrib[:, UNUSED] = 0.0
    raised = contrib.copy()
    raised[:, LATE] += 0.5
    bias = np.full(200, -3.0)
    _, before = dimension_points(contrib, bias, DIMS, cal, SCALE)
    _, after = dimension_points(raised, bias, DIMS, cal, SCALE)
    assert np.all(after[:, CH] < before[:, CH]), "credit-history points must fall"
    others = np.delete(np.arange(5), CH)
    assert np.all(np.abs(after[:, others] - before[:, others]) <= 1), (
        "other dimensions move at most by one rounding unit"
    )


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_offsetting_or_zero_contributions_keep_the_sum_exact(model, method):
    """Total contribution 0: the score is the base; rows that cancel out still add up."""
    _, _, calibrators = model
    cal = calibrators[method]
    contrib = np.zeros((3, len(NAMES)))
    contrib[1, [LATE, NAMES.index("verified_income")]] = [0.4, -0.4]
    contrib[2, LATE] = 1e-9
    bias = np.full(3, -2.9)
    base, points = dimension_points(contrib, bias, DIMS, cal, SCALE)
    score = np.rint(SCALE.raw_score(cal.predict(bias + contrib.sum(1))))
    assert np.array_equal(base + points.sum(1), score), "points must add up to the score"
    assert np.all(points[0] == 0), "nobody's contributions -> no points"
    fc = DIMENSIONS.index(Dimension.FULFILMENT_CAPACITY)
    assert points[1, CH] <= 0 <= points[1, fc], "offsetting contributions: opposite signs"
    if method == "sigmoid":  # linear: the offsetting parts are visible (isotonic may be flat)
        assert points[1, CH] < 0 < points[1, fc], "offsetting contributions show as points"


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_issue13_points_add_up_to_the_displayed_score_also_when_it_is_clipped(model, method):
    """Issue 13 finding 3: base + points == the displayed 350 or 950 for clipped rows too
    (no row skipped), each dimension keeps its sign, and the split stays proportional."""
    booster, X, calibrators = model
    cal = calibrators[method]
    contrib = np.zeros((3, len(NAMES)))
    contrib[0, LATE] = 8.0  # far below 350
    contrib[0, NAMES.index("verified_income")] = -1.0  # one dimension pulling the other way
    contrib[1, NAMES.index("ontime_rate_365d")] = -8.0  # far above 950
    contrib[2, LATE] = 0.3  # not clipped
    bias = np.full(3, contributions(booster, X[:1])[1][0])
    parts = decompose(contrib, bias, DIMS, cal, SCALE)
    displayed = SCALE.score(cal.predict(bias + contrib.sum(1)))
    if method == "sigmoid":
        assert displayed.tolist()[:2] == [350, 950], "the fixture must reach both clip edges"
    assert np.array_equal(parts.score, displayed), "the displayed score"
    total = parts.base_points + parts.points.sum(1)
    assert np.array_equal(total, displayed), f"points must add up to {displayed}; got {total}"
    fc = DIMENSIONS.index(Dimension.FULFILMENT_CAPACITY)
    if method == "sigmoid":
        assert parts.points[0, CH] < 0 < parts.points[0, fc], "signs kept after clipping"
        assert parts.unclipped_score[0] < 350 and parts.unclipped_score[1] > 950


def test_issue13_every_row_of_a_real_model_adds_up_none_skipped(model):
    """Over every fixture row, clipped or not, for both calibrators."""
    booster, X, calibrators = model
    contrib, bias = contributions(booster, X)
    contrib = np.vstack([contrib, contrib * 6.0])  # exaggerated copies reach both clip edges
    bias = np.concatenate([bias, bias])
    for method, cal in calibrators.items():
        parts = decompose(contrib, bias, DIMS, cal, SCALE)
        assert (parts.unclipped_score != parts.score).any(), f"{method}: no clipped rows"
        total = parts.base_points + parts.points.sum(1)
        wrong = np.flatnonzero(total != parts.score)
        assert wrong.size == 0, f"{method}: {wrong.size} rows do not add up, e.g. {wrong[:3]}"


def test_reasons_are_permissible_codes_above_the_reference_largest_first(model):
    booster, X, _ = model
    contrib, _ = contributions(booster, X)
    used = used_features(booster)
    assert not used[UNUSED] and used[LATE], "the constant feature is unused, lates are used"
    ref = Reference(contrib.mean(axis=0), np.nanmedian(X, axis=0), "test", len(X))
    reasons = adverse_reasons(contrib, X, NAMES, used, 3, ref)
    assert len(reasons) == len(X), "one list per person"
    for i, row in enumerate(reasons):
        assert len(row) <= 3, "at most max_reasons"
        cs = [r["contribution"] for r in row]
        assert cs == sorted(cs, reverse=True), f"row {i}: reasons must be largest first"
        assert len({r["code"] for r in row}) == len(row), "one reason per code"
        for r in row:
            j = NAMES.index(r["feature"])
            spec = feature_spec(r["feature"])
            assert spec.scored and spec.risk_direction != 0 and used[j], r
            assert r["dimension"] == DIMS[j].value, "dimension from the registry"
            value = X[i, j]
            assert r["value"] == (None if math.isnan(value) else value), "the person's value"
            assert contrib[i, j] > ref.contribution[j], "above the reference"
            code = code_for(r["feature"], r["value"] is None)
            assert code is not None and code.permissible and r["code"] == code.code
            assert r["text"] == reason_codes.text(code, spec, r["value"]), "text from the table"


def test_reasons_skip_unused_unconstrained_impermissible_and_below_reference_features():
    """Issue 13 finding 1: against the approved applicants' reference, a feature gives a
    reason only if it raised the margin more than theirs and its value is worse."""
    names = [
        "n_late_30p_90d",  # 0: used, +1, worse than reference -> reason
        "utilisation_latest",  # 1: contribution below the reference -> none
        "n_contacts",  # 2: unconstrained -> none
        "contacts_late30_share_365d",  # 3: other people's data, not permissible -> none
        "verified_income",  # 4: missing, absence is a stated reason -> "Income not verified"
        "days_since_last_late",  # 5: missing = never late: no absence code -> none
        "n_address_changes_365d",  # 6: better than the reference value -> none
    ]
    contrib = np.array([[0.9, 0.3, 0.5, 0.7, 0.2, 0.4, 0.3]])
    X = np.array([[2.0, 0.5, 3.0, 0.5, np.nan, np.nan, 0.0]])
    ref = Reference(
        np.array([0.1, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0]),
        np.array([0.0, 0.3, 4.0, 0.0, 5000.0, 100.0, 1.0]),
        "approved applicants",
    )
    used = np.ones(len(names), dtype=bool)
    got = adverse_reasons(contrib, X, names, used, 4, ref, points_per_margin=np.array([50.0]))
    assert [r["code"] for r in got[0]] == ["CH02", "FC90"], got
    assert [r["text"] for r in got[0]] == [
        "2 repayments 30 or more days late in the last 90 days",
        "Income not verified",
    ]
    assert [r["points"] for r in got[0]] == [-40.0, -10.0], "points = -k * (contrib - ref)"
    assert adverse_reasons(contrib, X, names, used, 0, ref) == [[]], "max_reasons 0 -> none"
    unused = used.copy()
    unused[0] = False
    assert [r["code"] for r in adverse_reasons(contrib, X, names, unused, 4, ref)[0]] == ["FC90"]


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_the_bundle_explains_with_the_standard_score_and_consistent_parts(model, method):
    """The one explain path (CreditModel.decide_matrix with reasons) on the fixture booster."""
    booster, X, calibrators = model
    cal = calibrators[method]
    d = CreditModel(NAMES, booster=booster, calibrator=cal).decide_matrix(X, with_reasons=True)
    standard = SCALE.score(cal.predict(booster.predict(X, raw_score=True)))
    assert np.array_equal(d["score"], standard), "explained score == the model's usual score"
    points = np.column_stack([d[c] for c in POINT_COLUMNS])
    assert np.array_equal(d["base_points"] + points.sum(1), d["score"]), "exact parts"
    assert all(r["points"] <= 0 for row in d["reasons"] for r in row), "reasons cost points"
    assert all(r["code"] for row in d["reasons"] for r in row), "every reason has its code"


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_decompose_computes_each_part_once_and_equals_the_separate_functions(model, method):
    """One pass (score curve at the margin and at the bias computed once, reused for the
    points per margin) gives bit for bit what the separate public functions give, also
    for people whose contributions cancel out (the local-slope branch)."""
    booster, X, calibrators = model
    cal = calibrators[method]
    contrib, bias = contributions(booster, X)
    contrib[:3] = 0.0  # total exactly 0
    contrib[3, [LATE, NAMES.index("verified_income")]] = [0.4, -0.4]
    parts = decompose(contrib, bias, DIMS, cal, SCALE)
    margin = contrib.sum(axis=1) + bias
    assert np.array_equal(parts.margin, margin)
    assert np.array_equal(parts.pd, cal.predict(margin))
    assert np.array_equal(parts.score, SCALE.score(cal.predict(margin))), "the displayed score"
    assert parts.score.dtype == np.int64 and parts.unclipped_score.dtype == np.int64
    assert np.array_equal(parts.unclipped_score, np.rint(SCALE.raw_score(parts.pd)))
    assert np.array_equal(parts.base_points + parts.points.sum(1), parts.score)
    k = points_per_margin(bias, contrib.sum(axis=1), cal, SCALE)
    assert np.array_equal(parts.points_per_margin, k), "k from the reused curves, bit for bit"
    base, points = dimension_points(contrib, bias, DIMS, cal, SCALE)
    assert np.array_equal(parts.base_points, base) and np.array_equal(parts.points, points)
