"""Fairness report: hand-computed group metrics and gaps, thresholds, the promotion block.

The constructed cohort has two compared groups with known differences (A approves 8 of 10,
B 5 of 10), plus a tiny group and people with a missing attribute that are reported but
never compared.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)

from credit_scoring.audit.fairness import UNKNOWN, fairness_report, plot_fairness, summary_metrics
from credit_scoring.audit.gate import decide_promotion
from credit_scoring.config import FairnessParams, GateParams, parse_params
from credit_scoring.features.registry import feature_names

BANDS = ["poor", "fair", "good", "very good", "excellent"]
#: Bounds nobody can cross, to test one threshold at a time.
LOOSE = FairnessParams(
    min_group_size=5,
    max_demographic_parity_difference=1.0,
    min_demographic_parity_ratio=0.0,
    max_equal_opportunity_difference=1.0,
    max_calibration_gap=1.0,
)


def _cohort() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Group A: 8 goods (7 approved) + 2 defaulters (1 approved), PD 0.2 for all.
    Group B: 6 goods (4 approved) + 4 defaulters (1 approved), PD 0.3 for all.
    Group X: 2 people, none approved (fewer than min_group_size = 5).
    3 people with no gender (all approved)."""
    rows = []  # (gender, default, approved, pd, limit)
    rows += [("A", 0, 1, 0.2, 1000.0)] * 7 + [("A", 0, 0, 0.2, 0.0)]
    rows += [("A", 1, 1, 0.2, 1000.0), ("A", 1, 0, 0.2, 0.0)]
    rows += [("B", 0, 1, 0.3, 2000.0)] * 4 + [("B", 0, 0, 0.3, 0.0)] * 2
    rows += [("B", 1, 1, 0.3, 2000.0)] + [("B", 1, 0, 0.3, 0.0)] * 3
    rows += [("X", 0, 0, 0.5, 0.0), ("X", 1, 0, 0.5, 0.0)]
    rows += [(None, 0, 1, 0.1, 500.0)] * 3
    df = pd.DataFrame(rows, columns=["gender", "default", "approved", "pd", "limit"])
    decisions = pd.DataFrame(
        {
            "score": np.where(df["approved"] == 1, 650.0, 500.0),
            "pd": df["pd"],
            "band": np.where(df["approved"] == 1, "very good", "poor"),
            "credit_limit": df["limit"],
        }
    )
    protected = pd.DataFrame(
        {"gender": df["gender"].astype("string"), "age_band": pd.array(["25-34"] * len(df))}
    )
    return decisions, df["default"].to_numpy(), protected


def _report(params: FairnessParams = LOOSE) -> dict:
    decisions, y, protected = _cohort()
    return fairness_report(decisions, y, protected, params, BANDS)


def _groups(report: dict, attribute: str = "gender") -> pd.DataFrame:
    return pd.DataFrame(report["attributes"][attribute]["groups"]).set_index("group")


def test_group_table_equals_hand_computed_rates():
    """Approval rate, approval among goods / defaulters, default rate, PD, limit per group."""
    g = _groups(_report())
    assert g.loc["A", "people"] == 10 and g.loc["B", "people"] == 10
    assert g.loc["A", "approval_rate"] == pytest.approx(0.8)
    assert g.loc["B", "approval_rate"] == pytest.approx(0.5)
    assert g.loc["A", "approval_rate_goods"] == pytest.approx(7 / 8)
    assert g.loc["B", "approval_rate_goods"] == pytest.approx(4 / 6)
    assert g.loc["A", "approval_rate_defaulters"] == pytest.approx(1 / 2)
    assert g.loc["B", "approval_rate_defaulters"] == pytest.approx(1 / 4)
    assert g.loc["A", "default_rate"] == pytest.approx(0.2)
    assert g.loc["B", "default_rate"] == pytest.approx(0.4)
    assert g.loc["B", "mean_pd"] == pytest.approx(0.3)
    assert g.loc["B", "calibration_gap"] == pytest.approx(-0.1), "mean PD - default rate"
    assert g.loc["A", "calibration_gap"] == pytest.approx(0.0, abs=1e-12)
    assert g.loc["A", "mean_limit_approved"] == pytest.approx(1000.0)
    assert g.loc["B", "mean_score"] == pytest.approx((5 * 650 + 5 * 500) / 10)
    assert g.loc["B", "default_rate_se"] == pytest.approx(np.sqrt(0.4 * 0.6 / 10))


def test_missing_attribute_is_its_own_group_and_small_groups_are_not_compared():
    """'unknown' (3 people) and X (2 < min_group_size 5) are reported, flagged, not compared."""
    report = _report()
    g = _groups(report)
    assert g.loc[UNKNOWN, "people"] == 3 and g.loc["X", "people"] == 2
    assert g["in_gaps"].to_dict() == {"A": True, "B": True, "X": False, UNKNOWN: False}
    assert report["attributes"]["gender"]["compared_groups"] == ["A", "B"]
    # X approves nobody: if it were compared, the approval-rate ratio would be 0.
    assert report["attributes"]["gender"]["gaps"]["demographic_parity_ratio"] > 0


def test_gaps_equal_hand_values_and_fairlearn_on_the_compared_groups():
    """DP difference 0.3, ratio 0.625 (four-fifths fails), EO difference 7/8 - 4/6."""
    gaps = _report()["attributes"]["gender"]["gaps"]
    assert gaps["demographic_parity_difference"] == pytest.approx(0.3)
    assert gaps["demographic_parity_ratio"] == pytest.approx(0.625)
    assert gaps["equal_opportunity_difference"] == pytest.approx(7 / 8 - 4 / 6)
    assert gaps["equalized_odds_difference"] == pytest.approx(0.25), "max(TPR, FPR) gaps"
    assert gaps["four_fifths_rule_pass"] is False
    assert gaps["default_rate_difference"] == pytest.approx(0.2)
    assert gaps["max_abs_calibration_gap"] == pytest.approx(0.1)

    decisions, y, protected = _cohort()
    keep = protected["gender"].isin(["A", "B"]).fillna(False).to_numpy()
    good, approved = 1 - y[keep], (decisions["credit_limit"] > 0).to_numpy()[keep]
    kw = {"sensitive_features": protected["gender"].to_numpy()[keep]}
    assert gaps["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(good, approved, **kw)
    )
    assert gaps["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(good, approved, **kw)
    )
    assert gaps["equal_opportunity_difference"] == pytest.approx(
        equal_opportunity_difference(good, approved, **kw)
    ), "equal opportunity = approval rate among goods (y_true = 1 - default)"
    assert gaps["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(good, approved, **kw)
    )


def test_loose_thresholds_give_no_breach():
    report = _report(LOOSE)
    assert report["breaches"] == [] and report["verdict"].startswith("within thresholds")


@pytest.mark.parametrize(
    ("update", "needle"),
    [
        ({"max_demographic_parity_difference": 0.29}, "demographic-parity difference 0.300"),
        ({"min_demographic_parity_ratio": 0.8}, "four-fifths rule"),
        ({"max_equal_opportunity_difference": 0.2}, "equal-opportunity difference 0.208"),
        ({"max_calibration_gap": 0.05}, "gender=B: calibration gap -0.1000"),
    ],
)
def test_crossing_each_threshold_is_reported_as_a_breach(update, needle):
    """Each bound, tightened just below the measured gap, produces exactly one named breach."""
    report = _report(LOOSE.model_copy(update=update))
    assert len(report["breaches"]) == 1, report["breaches"]
    assert needle in report["breaches"][0]
    assert report["verdict"].startswith("breach")
    assert report["attributes"]["gender"]["breaches"] == report["breaches"]


def test_equal_groups_have_zero_gaps_and_pass():
    """Two groups with identical outcomes: difference 0, ratio 1, no breach at strict bounds."""
    decisions, y, protected = _cohort()
    a = protected["gender"].eq("A").fillna(False).to_numpy()
    d2 = pd.concat([decisions[a], decisions[a]], ignore_index=True)
    y2 = np.r_[y[a], y[a]]
    p2 = pd.DataFrame({"gender": ["A"] * a.sum() + ["B"] * a.sum()})
    strict = FairnessParams(attributes=["gender"], min_group_size=5, max_calibration_gap=1e-9)
    report = fairness_report(d2, y2, p2, strict, BANDS)
    gaps = report["attributes"]["gender"]["gaps"]
    assert gaps["demographic_parity_difference"] == 0.0
    assert gaps["demographic_parity_ratio"] == 1.0
    assert gaps["equal_opportunity_difference"] == 0.0
    assert report["breaches"] == []


def test_fewer_than_two_compared_groups_gives_no_gaps_but_calibration_is_still_checked():
    """One age band only: gaps are null (not 0), four-fifths undecided, no gap breach; the
    one group's calibration (mean PD 25.2% vs 28% defaults) is still held to its bound."""
    report = _report(FairnessParams(min_group_size=5))
    age = report["attributes"]["age_band"]
    assert age["compared_groups"] == ["25-34"]
    assert age["gaps"]["demographic_parity_difference"] is None
    assert age["gaps"]["four_fifths_rule_pass"] is None
    assert [b for b in age["breaches"] if "calibration" not in b] == []
    assert age["breaches"] == [
        "age_band=25-34: calibration gap -0.0280 (mean PD 25.20% vs default rate 28.00%, "
        "model under-states risk) beyond ±0.02"
    ]


def test_no_group_large_enough_is_reported_without_gaps_or_breaches():
    """A small cohort (every group under min_group_size) still gets its tables, no verdicts."""
    report = _report(FairnessParams(min_group_size=1000))
    for body in report["attributes"].values():
        assert body["compared_groups"] == [] and body["breaches"] == []
        assert body["gaps"]["max_abs_calibration_gap"] is None
        assert len(body["groups"]) >= 1
    assert report["not_compared"] == ["gender", "age_band"]
    assert report["verdict"].startswith("not checkable; gaps not measured for gender"), (
        "a cohort too small to compare any group must never read as within thresholds"
    )
    assert report["status"] == "not checkable"
    assert {b["status"] for b in report["attributes"].values()} == {"not checkable"}


def test_band_by_group_table_gives_default_rate_per_band_per_group():
    by_band = pd.DataFrame(_report()["attributes"]["gender"]["by_band"])
    b = by_band[by_band["group"] == "B"].set_index("band")
    assert list(b.index) == ["poor", "very good"], "bands in score order"
    assert b.loc["very good", "people"] == 5
    assert b.loc["very good", "default_rate"] == pytest.approx(1 / 5)
    assert b.loc["poor", "default_rate"] == pytest.approx(3 / 5)


def test_report_is_strict_json_and_summary_is_numeric_with_mlflow_safe_names():
    """No NaN in the JSON; summary keys fit MLflow metric names ('55+' -> '55plus')."""
    from credit_scoring.tracking.registry import flatten

    decisions, y, protected = _cohort()
    protected["age_band"] = pd.array(["55+"] * 10 + ["18-24"] * 10 + [None] * 5, dtype="string")
    report = fairness_report(decisions, y, protected, LOOSE, BANDS)
    json.loads(json.dumps(report, allow_nan=False))
    flat = flatten(summary_metrics(report))
    assert "age_band.approval_rate.55plus" in flat
    assert flat["gender.four_fifths_rule_pass"] == 1 or flat["gender.four_fifths_rule_pass"] == 0
    for key, value in flat.items():
        assert re.fullmatch(r"[\w.\-]+", key), key
        assert isinstance(value, int | float) and not isinstance(value, bool), key


def test_misaligned_inputs_and_missing_attribute_fail_clearly():
    decisions, y, protected = _cohort()
    with pytest.raises(ValueError, match="one row per person"):
        fairness_report(decisions, y[:-1], protected, LOOSE, BANDS)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['age_band'\]"):
        fairness_report(decisions, y, protected[["gender"]], LOOSE, BANDS)
    with pytest.raises(ValueError, match="0 or 1"):
        fairness_report(decisions, np.full(len(y), np.nan), protected, LOOSE, BANDS)


def test_plot_draws_the_four_fifths_line_at_080_of_the_best_compared_group():
    fig = plot_fairness(_report())
    top = fig.axes[0]
    lines = [ln for ln in top.get_lines() if ln.get_linestyle() == "--"]
    assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(0.8 * 0.8)
    assert "breach" not in fig.texts[0].get_text().split(":")[1].split("(")[0]


def test_fairness_params_reject_unknown_attribute_and_live_in_params():
    with pytest.raises(ValueError, match="attributes must be distinct names"):
        FairnessParams(attributes=["income"])
    p = parse_params({"fairness": {"block_promotion": True}})
    assert p.fairness.block_promotion and p.fairness.min_demographic_parity_ratio == 0.8


def test_protected_attributes_are_never_model_inputs(small_model):
    """No feature of the registry or of a trained model is gender-, age- or birth-related."""
    pattern = re.compile(r"gender|sex|birth|(^|_)age(_|$)|age_band")
    for name in [*feature_names(), *small_model.feature_names]:
        assert not pattern.search(name), f"{name} looks like a protected attribute"
    assert small_model.booster.feature_name() == small_model.feature_names


GATE = GateParams(min_auc_gain=0.005, max_ece=0.01, max_psi=0.1)
GOOD = {"auc": 0.80, "ece": 0.005, "psi": 0.02}
BREACH = ["gender: approval-rate ratio 0.700 < 0.8 (four-fifths rule)"]


def test_gate_refuses_on_fairness_breach_when_blocking():
    d = decide_promotion(GOOD, None, GATE, fairness_breaches=BREACH, block_on_fairness=True)
    assert not d.promote
    assert f"fail: fairness: {BREACH[0]}" in d.reasons


def test_gate_promotes_despite_breach_when_not_blocking_but_records_it():
    d = decide_promotion(GOOD, None, GATE, fairness_breaches=BREACH, block_on_fairness=False)
    assert d.promote, d.reasons
    assert any(r.startswith("warn: fairness") and "four-fifths" in r for r in d.reasons)


def test_gate_without_breaches_or_report_keeps_its_old_behaviour():
    d = decide_promotion(GOOD, None, GATE, fairness_breaches=[], block_on_fairness=True)
    assert d.promote and "pass: no fairness breach" in d.reasons
    old = decide_promotion(GOOD, None, GATE)
    assert old.promote and not any("fairness" in r for r in old.reasons)


def test_oracle_columns_show_the_gap_a_perfect_model_would_have():
    """With the simulator's truth: mean true PD and oracle approval rate per group, and the
    oracle's approval gap (A approves 10 of 10, B 6 of 10 -> 0.4)."""
    decisions, y, protected = _cohort()
    g = protected["gender"].fillna("?").to_numpy()
    true_pd = np.where(g == "A", 0.1, 0.35)
    oracle = (g == "A") | (np.arange(len(g)) % 10 < 6)
    report = fairness_report(
        decisions, y, protected, LOOSE, BANDS, true_pd=true_pd, oracle_approved=oracle
    )
    t = _groups(report)
    assert t.loc["A", "mean_true_pd"] == pytest.approx(0.1)
    assert t.loc["B", "oracle_approval_rate"] == pytest.approx(oracle[g == "B"].mean())
    gaps = report["attributes"]["gender"]["gaps"]
    want = 1.0 - oracle[g == "B"].mean()
    assert gaps["oracle_demographic_parity_difference"] == pytest.approx(want)
    with pytest.raises(ValueError, match="go together"):
        fairness_report(decisions, y, protected, LOOSE, BANDS, true_pd=true_pd)
