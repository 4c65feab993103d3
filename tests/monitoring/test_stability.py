"""Stability items against a reference frozen at training: PSI with frozen bins, missing
rates, new categories, statuses and the exit code a scheduler acts on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from credit_scoring.config import MonitorParams
from credit_scoring.monitoring.reference import bin_shares, build_reference, psi_from_shares
from credit_scoring.monitoring.stability import (
    FEATURE_PREFIX,
    exit_code,
    monitor_windows,
    window_items,
    worst,
)


def _decisions(rng: np.random.Generator, n: int, x: np.ndarray) -> pd.DataFrame:
    score = np.clip(600 + 40 * rng.standard_normal(n), 350, 950).round()
    return pd.DataFrame(
        {
            "decided_at": pd.Timestamp("2026-02-03 10:00"),
            "pd": 1 / (1 + np.exp((score - 520) / 40)),
            "score": score,
            "band": np.where(score >= 600, "good", "fair"),
            "credit_limit": np.where(score >= 550, 1000.0, 0.0),
            "tiers": [["bike"] if s >= 600 else [] for s in score],
            "reason_codes": [["x"]] * n,
            FEATURE_PREFIX + "x": x,
        }
    )


def _reference(rng: np.random.Generator) -> dict:
    train = _decisions(rng, 5000, rng.standard_normal(5000))
    feats = train[[FEATURE_PREFIX + "x"]].rename(columns=lambda c: c.removeprefix(FEATURE_PREFIX))
    return build_reference(feats, train, ["x"], 10, list(train["reason_codes"]))


def test_psi_with_frozen_bins_is_zero_on_the_training_data_and_counts_missing() -> None:
    """The same values give PSI 0; missing values are their own bin, so a column that
    goes missing moves the PSI even though no value moved."""
    x = np.random.default_rng(0).standard_normal(1000)
    edges = list(np.quantile(x, np.linspace(0, 1, 11)[1:-1]))
    ref = bin_shares(x, edges)
    assert psi_from_shares(ref, bin_shares(x, edges)) == 0.0
    gone = x.copy()
    gone[:300] = np.nan
    assert psi_from_shares(ref, bin_shares(gone, edges)) > 0.25


def test_stable_window_is_quiet_and_a_shifted_feature_is_acted_on() -> None:
    """A window drawn like training has every item stable (exit 0); the same window with
    the feature moved by one SD and 20% of it missing acts on that feature (exit 4)."""
    rng = np.random.default_rng(1)
    ref = _reference(rng)
    params = MonitorParams()
    stable = window_items(_decisions(rng, 2000, rng.standard_normal(2000)), ref, params)
    assert worst(it["status"] for it in stable) == "stable", [
        it for it in stable if it["status"] != "stable"
    ]
    x = rng.standard_normal(2000) + 1.0
    x[:400] = np.nan
    moved = window_items(_decisions(rng, 2000, x), ref, params)
    by = {(it["item"], it["kind"]): it for it in moved}
    assert by[("x", "psi")]["status"] == "act"
    assert by[("x", "missing_rate")]["status"] == "act"
    assert by[("score", "psi")]["status"] == "stable", "the score did not move"
    assert exit_code(worst(it["status"] for it in moved)) == 4


def test_small_window_is_not_checkable_and_new_categories_are_flagged() -> None:
    """Under min_decisions nothing alarms; a band never seen in training (over 1% of the
    window) is a new category at watch (exit 3)."""
    rng = np.random.default_rng(2)
    ref = _reference(rng)
    small = window_items(_decisions(rng, 50, rng.standard_normal(50)), ref, MonitorParams())
    assert {it["status"] for it in small} == {"not checkable"}
    window = _decisions(rng, 2000, rng.standard_normal(2000))
    window.loc[:99, "band"] = "platinum"
    items = window_items(window, ref, MonitorParams(psi_watch=5, psi_act=9))
    new = next(it for it in items if it["item"] == "new categories")
    assert new["value"] == ["band platinum"] and new["status"] == "watch"
    assert exit_code("watch") == 3 and exit_code("stable") == 0


def test_windows_are_cut_by_month_oldest_first() -> None:
    """Decisions of two months give two windows in calendar order with their sizes."""
    rng = np.random.default_rng(3)
    ref = _reference(rng)
    a = _decisions(rng, 300, rng.standard_normal(300)).assign(decided_at=pd.Timestamp("2026-03-05"))
    b = _decisions(rng, 200, rng.standard_normal(200))
    windows = monitor_windows(pd.concat([a, b]), ref, MonitorParams())
    assert [(w["window"], w["decisions"]) for w in windows] == [
        ("2026-02-01", 200),
        ("2026-03-01", 300),
    ]
