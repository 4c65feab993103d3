"""The validation report's numbers mean what they say: the score-to-odds check recovers a
known scale, CSI is 0 for the same distribution and large for a shift, intervals cover,
and the page escapes text and says 'not available' for what is missing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from credit_scoring.audit import report as rp
from credit_scoring.decision.scorecard import ScoreScale


def _scaled_world(pdo: float, n: int = 200_000, seed: int = 0):
    """People whose true odds follow a scale with ``pdo`` points per doubling."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(450, 800, n)
    truth = ScoreScale(620, 19, pdo, 350, 950)
    y = (rng.random(n) < truth.pd_from_score(score)).astype(int)
    return score, y


@pytest.mark.parametrize("pdo", [40.0, 60.0])
def test_score_to_odds_recovers_the_points_to_double_the_odds(pdo):
    """Data made with a known PDO: the implied PDO is that PDO (within 5%); against a
    stated 40-point scale the gap shows when the data follow 60."""
    score, y = _scaled_world(pdo)
    stated = ScoreScale(620, 19, 40, 350, 950)
    table = rp.score_odds_table(score, y, stated.offset, stated.factor)
    fit = rp.score_odds_fit(table, 40)
    assert fit["implied_pdo"] == pytest.approx(pdo, rel=0.05), fit
    assert table["people"].sum() == len(score)
    assert (table["people"] >= 50).all()
    worst_gap = table["gap"].abs().max()
    assert (worst_gap < 0.3) if pdo == 40 else (worst_gap > 0.5)


def test_csi_is_zero_for_the_same_values_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=20_000)
    assert rp.csi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert rp.csi(x, rng.normal(size=20_000)) < rp.PSI_WATCH
    assert rp.csi(x, x + 1.0) > rp.PSI_ACT
    with_missing = np.where(rng.random(20_000) < 0.3, np.nan, x)
    assert rp.csi(x, with_missing) > rp.PSI_ACT, "a jump in missing values is instability"
    table = rp.csi_table(
        pd.DataFrame({"a": x, "b": x}), pd.DataFrame({"a": x, "b": x + 1}), ["a", "b"]
    )
    assert list(table["feature"]) == ["b", "a"] and list(table["status"]) == ["act", "stable"]


def test_wilson_interval_and_calibration_deciles():
    lo, hi = rp.wilson(5, 100)
    assert lo < 0.05 < hi and lo >= 0 and hi < 0.12
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.3, 20_000)
    y = (rng.random(20_000) < p).astype(int)
    tab = rp.calibration_deciles(y, p, 10)
    assert len(tab) == 10 and tab["people"].sum() == 20_000
    assert tab["inside"].sum() >= 8, tab
    biased = rp.calibration_deciles(y, p * 2, 10)
    assert biased["inside"].sum() <= 2


def test_performance_row_has_intervals_around_the_estimate():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.3, 5_000)
    y = (rng.random(5_000) < p).astype(int)
    row = rp.performance_row(y, p, n_boot=100)
    for k in ("auc", "gini", "ks", "brier", "ece"):
        assert row[f"{k}_lo"] <= row[k] <= row[f"{k}_hi"], (k, row)
    assert row["gini"] == pytest.approx(2 * row["auc"] - 1)
    assert 0.01 < row["auc_hi"] - row["auc_lo"] < 0.08


def test_page_escapes_text_and_says_not_available():
    html = rp.render_html(
        {
            "title": "m <v1>",
            "subtitle": "s",
            "generated": "now",
            "kpis": [{"label": "AUC", "value": "0.8"}],
            "verdicts": [{"status": "pass", "cls": "ok", "text": "<script>x</script>"}],
            "sections": [
                rp.section(
                    "a", "Present", [rp.text("a < b"), rp.table(pd.DataFrame({"x": [math.nan]}))]
                ),
                rp.section("b", "Missing", None, "reports/fairness.json: not found"),
                rp.section("c", "List", [rp.bullets(["first <b>", "second"])]),
            ],
        }
    )
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "m &lt;v1&gt;" in html and "a &lt; b" in html
    assert "Not available: reports/fairness.json: not found" in html
    assert "<li>first &lt;b&gt;</li><li>second</li>" in html
    assert rp.fmt(math.nan) == rp.NOT_AVAILABLE and rp.fmt(None) == rp.NOT_AVAILABLE
