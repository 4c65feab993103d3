"""Table TreeSHAP: LightGBM's own contributions, exact, by look-up.

The fast path must give what ``pred_contrib`` gives (to 1e-9; in practice ~1e-15) on
models with missing values, zeros read as missing, monotone constraints and thresholds at
the zero boundary; single rows, batches and threaded chunks alike. The decisions built on
it (scores, dimension points, reasons) must be unchanged.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision import explain, treeshap
from credit_scoring.decision.bundle import POINT_COLUMNS


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Features with NaN, exact zeros, values within LightGBM's zero threshold, a
    constant and an integer column; the label depends on most of them."""
    X = np.column_stack(
        [
            rng.normal(size=n),
            np.where(rng.random(n) < 0.3, np.nan, rng.uniform(-1, 1, n)),
            np.where(rng.random(n) < 0.3, 0.0, rng.exponential(1, n)),
            rng.integers(0, 5, n).astype(float),
            np.where(rng.random(n) < 0.1, 1e-36, rng.normal(size=n)),
            np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n)),
            np.ones(n),
        ]
    )
    z = (
        X[:, 0]
        - np.nan_to_num(X[:, 1], nan=0.8)
        + 0.5 * X[:, 2]
        - 0.3 * X[:, 3]
        + 0.4 * (X[:, 4] > 0)
        + np.nan_to_num(X[:, 5], nan=-1.0) * X[:, 0]
    )
    return X, (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)


def _train(extra: dict, rounds: int = 80) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(5)
    X, y = _data(rng, 3000)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "num_threads": 1,
        "deterministic": True,
        "seed": 3,
        "verbosity": -1,
        **extra,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=rounds)
    X_test, _ = _data(rng, 9000)  # > CHUNK_ROWS: several chunks, in threads
    X_test[:5] = np.array([0.0, -0.0, 1e-35, -1e-35, np.nan])[:, None]  # the zero boundary
    return booster, X_test


MODELS = {
    "monotone": {"monotone_constraints": [1, -1, 1, -1, 0, 0, 0]},
    "zero_as_missing": {"zero_as_missing": True},
    "no_missing_handling": {"use_missing": False},
}


@pytest.fixture(scope="module", params=list(MODELS))
def trained(request):
    return _train(MODELS[request.param])


def test_table_contributions_equal_lightgbm_pred_contrib(trained):
    """Every row, every feature and the bias equal LightGBM's ``pred_contrib`` to 1e-9:
    one row, a handful (no searchsorted), a batch, several threaded chunks."""
    booster, X = trained
    tables = treeshap.build_tables(booster)
    expected = booster.predict(X, pred_contrib=True)
    for n, threads in ((1, 1), (7, 1), (500, 1), (len(X), 1), (len(X), 0)):
        contrib, bias = treeshap.contributions(tables, X[:n], threads)
        np.testing.assert_allclose(contrib, expected[:n, :-1], rtol=0, atol=1e-9)
        np.testing.assert_allclose(bias, expected[:n, -1], rtol=0, atol=1e-12)
    assert tables.size > 0


def test_a_person_gets_the_same_bits_alone_or_in_any_batch(trained):
    """Contributions do not depend on who else is scored with a person: one row alone,
    in a small batch and in a threaded batch give bit-identical values."""
    booster, X = trained
    tables = treeshap.build_tables(booster)
    batch, _ = treeshap.contributions(tables, X, 0)
    for i in (0, 3, 4, 100, 4500, len(X) - 1):
        alone, _ = treeshap.contributions(tables, X[i : i + 1], 1)
        np.testing.assert_array_equal(alone[0], batch[i])
    few, _ = treeshap.contributions(tables, X[4090:4100], 1)
    np.testing.assert_array_equal(few, batch[4090:4100])


def test_explain_contributions_uses_the_tables_and_honours_num_iteration(trained):
    """The project's one entry point gives the same numbers as ``pred_contrib`` for the
    first 25 trees, and the tables are built once per booster and number of trees."""
    booster, X = trained
    fast, bias = explain.contributions(booster, X, num_iteration=25)
    ref, ref_bias = explain.contributions(booster, X, num_iteration=25, method="lightgbm")
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(bias, ref_bias, rtol=0, atol=1e-12)
    assert treeshap.tables_for(booster, 25) is treeshap.tables_for(booster, 25)
    margin = booster.predict(X, raw_score=True, num_iteration=25)
    np.testing.assert_allclose(bias + fast.sum(axis=1), margin, rtol=0, atol=1e-9)


def test_categorical_splits_fall_back_to_pred_contrib():
    """A booster with a categorical split is not covered by the tables: ``tables_for``
    says so and the contributions are LightGBM's own."""
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.integers(0, 6, 2000), rng.normal(size=2000)]).astype(float)
    y = ((X[:, 0] % 2 == 0) ^ (rng.random(2000) < 0.2)).astype(float)
    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[0]), 20)
    with pytest.raises(treeshap.Unsupported):
        treeshap.build_tables(booster)
    assert treeshap.tables_for(booster) is None
    contrib, _ = explain.contributions(booster, X)
    np.testing.assert_array_equal(contrib, booster.predict(X, pred_contrib=True)[:, :-1])


def test_oversized_tables_are_refused():
    """A cap on the tables' size raises rather than allocating without bound."""
    booster, _ = _train({}, rounds=5)
    with pytest.raises(treeshap.Unsupported, match="tables over"):
        treeshap.build_tables(booster, max_values=10)


def test_decisions_with_reasons_unchanged_against_pred_contrib(
    small_model, small_world, monkeypatch
):
    """On a real bundle (monotone constraints, missing values) and thousands of rows:
    PD, score, base and dimension points, reasons (codes, features, values, points,
    wording) and limit reasons are identical to the path through ``pred_contrib``; the
    points add up to the score on every row."""
    _, _, table = small_world
    X = small_model.feature_matrix(table)
    assert small_model.prepare_explanations() is True  # what a service calls at start-up
    tables = treeshap.tables_for(small_model.booster, small_model.best_iteration)
    assert tables is treeshap.tables_for(small_model.booster, small_model.best_iteration)
    fast = small_model.decide_matrix(X, with_reasons=True)
    monkeypatch.setattr(treeshap, "tables_for", lambda *a, **k: None)  # today's path
    ref = small_model.decide_matrix(X, with_reasons=True)
    assert len(X) > 3000
    np.testing.assert_allclose(fast["pd"], ref["pd"], rtol=0, atol=1e-12)
    for col in ("score", "band", "credit_limit", "base_points", *POINT_COLUMNS):
        np.testing.assert_array_equal(np.asarray(fast[col]), np.asarray(ref[col]), err_msg=col)
    total = fast["base_points"] + sum(fast[c] for c in POINT_COLUMNS)
    np.testing.assert_array_equal(total, fast["score"])
    assert fast["limit_reasons"] == ref["limit_reasons"]
    assert len(fast["reasons"]) == len(ref["reasons"])
    for got, want in zip(fast["reasons"], ref["reasons"], strict=True):
        assert [(r["code"], r["feature"], r["value"], r["text"], r.get("points")) for r in got] == [
            (r["code"], r["feature"], r["value"], r["text"], r.get("points")) for r in want
        ]
        np.testing.assert_allclose(
            [r["contribution"] for r in got], [r["contribution"] for r in want], atol=1e-9
        )
    assert sum(map(len, fast["reasons"])) > 0
    assert pd.Series(fast["score"]).nunique() > 50
