"""Metrics give the textbook values on small exact examples and behave as properties say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from credit_scoring.modelling import metrics

Y4 = np.array([0, 1, 0, 1])
P4 = np.array([0.1, 0.4, 0.5, 0.8])  # one of four (pos, neg) pairs is mis-ordered


def test_perfect_separation_gives_auc_gini_and_ks_of_one():
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])
    assert metrics.auc(y, p) == 1.0, "every defaulter ranked above every payer must give AUC 1"
    assert metrics.gini(y, p) == 1.0, "Gini = 2·AUC − 1 = 1"
    assert metrics.ks(y, p) == 1.0, "the class CDFs are fully apart: KS 1"


def test_reversed_ranking_gives_auc_zero_and_gini_minus_one():
    y, p = np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])
    assert metrics.auc(y, p) == 0.0
    assert metrics.gini(y, p) == -1.0


def test_auc_and_ks_on_a_hand_computed_example():
    """3 of 4 (defaulter, payer) pairs ordered right: AUC 0.75; best TPR−FPR gap is 0.5."""
    assert metrics.auc(Y4, P4) == pytest.approx(0.75)
    assert metrics.gini(Y4, P4) == pytest.approx(0.5)
    assert metrics.ks(Y4, P4) == pytest.approx(0.5)


def test_auc_is_nan_when_only_one_class_is_present():
    """A group without defaults has no AUC; NaN instead of a crash in per-group reports."""
    assert math.isnan(metrics.auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(metrics.ks([1, 1], [0.1, 0.2]))


def test_brier_and_log_loss_exact_values():
    y, p = np.array([0, 1]), np.array([0.2, 0.7])
    assert metrics.brier(y, p) == pytest.approx((0.2**2 + 0.3**2) / 2)
    assert metrics.log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)


def test_log_loss_is_finite_for_a_confident_miss():
    assert math.isfinite(metrics.log_loss([1, 0], [0.0, 1.0])), "p is clipped away from 0 and 1"


def test_ece_uses_equal_frequency_bins_hand_computed():
    """Two quantile bins of two rows: |0 − 0.2| and |1 − 0.7| weighted ½ each = 0.25."""
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.6, 0.8])
    assert metrics.ece(y, p, n_bins=2) == pytest.approx(0.25)
    assert metrics.ece(y, p, n_bins=1) == pytest.approx(abs(0.5 - 0.45)), "one bin: mean gap"


def test_ece_is_small_for_perfectly_calibrated_data_and_large_for_biased():
    """y ~ Bernoulli(p) is calibrated by construction; doubling p is not."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.005, 0.2, 200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert metrics.ece(y, p, 10) < 0.003, "calibrated synthetic data must have ECE near 0"
    assert metrics.ece(y, np.minimum(2 * p, 1), 10) > 0.08, "doubled p must show its bias"


def test_psi_of_identical_distributions_is_zero():
    scores = np.random.default_rng(1).normal(600, 50, 5_000)
    assert metrics.psi(scores, scores) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_a_one_sd_shift_exceeds_the_action_threshold():
    rng = np.random.default_rng(2)
    expected, actual = rng.normal(0, 1, 20_000), rng.normal(1, 1, 20_000)
    assert metrics.psi(expected, actual) > 0.25, "a 1-SD shift is a major population change"
    same = rng.normal(0, 1, 20_000)
    assert metrics.psi(expected, same) < 0.01, "a fresh sample of the same law is stable"


def test_psi_stays_finite_when_actual_leaves_the_expected_range():
    """Open outer bins catch out-of-range scores; empty bins are floored, not infinite."""
    expected = np.linspace(0, 1, 1_000)
    value = metrics.psi(expected, np.full(100, 5.0))
    assert math.isfinite(value) and value > 1.0


def test_psi_handles_point_masses_in_the_expected_scores():
    """Scores clipped at 350 repeat a quantile edge; edges are merged, not crashing."""
    expected = np.r_[np.full(500, 350.0), np.linspace(400, 900, 500)]
    assert metrics.psi(expected, expected) == pytest.approx(0.0, abs=1e-12)


def test_classification_metrics_has_all_keys_and_consistent_gini():
    result = metrics.classification_metrics(Y4, P4, n_bins=2)
    assert set(result) == {"auc", "gini", "ks", "brier", "ece", "log_loss"}
    assert result["gini"] == pytest.approx(2 * result["auc"] - 1)


def test_auc_is_invariant_to_a_monotone_transform_of_p():
    """Ranking metrics depend only on the order of p (the calibrator must not change them)."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    y = (rng.random(500) < p).astype(int)
    assert metrics.auc(y, p) == pytest.approx(metrics.auc(y, p**3))
    assert metrics.ks(y, p) == pytest.approx(metrics.ks(y, p**3))


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "same length"),
        ([0, 2], [0.1, 0.2], "only 0 and 1"),
        ([0, 1], [0.1, 1.2], r"in \[0, 1\]"),
        ([0, 1], [0.1, np.nan], r"in \[0, 1\]"),
        ([], [], "empty"),
    ],
)
def test_invalid_inputs_fail_with_a_clear_message(y, p, message):
    with pytest.raises(ValueError, match=message):
        metrics.brier(y, p)


# --- confidence intervals (issue #12: "11 defaults are not read as a verdict") -------


def test_auc_interval_is_wide_with_few_defaults_and_narrow_with_many():
    from credit_scoring.modelling.metrics import auc_interval

    rng = np.random.default_rng(0)

    def sample(n, n_bad):
        y = np.r_[np.ones(n_bad), np.zeros(n - n_bad)]
        p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 2)))
        return y, p

    few = auc_interval(*sample(300, 11))
    many = auc_interval(*sample(30_000, 1_500))
    assert few["high"] - few["low"] > 0.15, f"11 defaults must give a wide interval: {few}"
    assert many["high"] - many["low"] < 0.04, many
    assert few["low"] < few["auc"] < few["high"]


def test_bootstrap_intervals_cover_the_point_estimate_and_are_seeded():
    from credit_scoring.modelling.metrics import BOOTSTRAP_METRICS, bootstrap_intervals

    rng = np.random.default_rng(1)
    y = (rng.random(2_000) < 0.1).astype(float)
    p = np.clip(0.1 + 0.1 * (y - 0.1) + rng.normal(0, 0.03, 2_000), 0.001, 0.999)
    a = bootstrap_intervals(y, p, n_boot=100, seed=3)
    assert a == bootstrap_intervals(y, p, n_boot=100, seed=3), "same seed, same intervals"
    assert set(a) == set(BOOTSTRAP_METRICS)
    for name, ci in a.items():
        assert ci["low"] <= ci["value"] <= ci["high"], f"{name}: {ci}"
    assert a["default_rate"]["value"] == pytest.approx(y.mean())
