"""The promotion gate decides as the params say, with a reason for every condition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from credit_scoring.audit.gate import decide_promotion, delong_auc_difference
from credit_scoring.config import GateParams, MlflowParams
from credit_scoring.tracking.registry import configure, flatten, score_champion, tracking_uri

GATE = GateParams(min_auc_gain=0.0, max_ece=0.01, max_psi=0.1)
GOOD = {"auc": 0.80, "ece": 0.005, "psi": 0.02}


def _world(n: int = 4000, seed: int = 0, noise_champion: float = 1.0, noise_chall: float = 1.0):
    """Labels and two correlated risk predictions with chosen noise levels."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(risk * 1.5 - 3)))).astype(int)
    shared = rng.normal(size=n)
    champ = risk + noise_champion * (0.7 * shared + 0.7 * rng.normal(size=n))
    chall = risk + noise_chall * (0.7 * shared + 0.7 * rng.normal(size=n))
    return y, chall, champ


def _brute_delong(y, a, b):
    """DeLong by its definition: psi(x, z) = 1 if x > z, 1/2 if tied, over every pair."""

    def comps(p):
        pos, neg = p[y == 1], p[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10a, v01a = comps(a)
    auc_b, v10b, v01b = comps(b)
    s10, s01 = np.cov([v10a, v10b]), np.cov([v01a, v01b])
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(v10a) + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / len(v01a)
    return auc_a - auc_b, np.sqrt(var)


def test_delong_matches_its_definition_with_ties_and_sklearn_auc():
    """The fast midrank DeLong equals the pairwise definition (ties count 1/2); its AUCs
    are sklearn's."""
    y, a, b = _world(600, seed=3)
    a, b = np.round(a, 1), np.round(b, 1)  # many ties
    c = delong_auc_difference(y, a, b)
    diff, se = _brute_delong(y, a, b)
    assert c.difference == pytest.approx(diff, abs=1e-12)
    assert c.std_error == pytest.approx(se, rel=1e-9)
    assert c.auc_challenger == pytest.approx(roc_auc_score(y, a))
    assert c.auc_champion == pytest.approx(roc_auc_score(y, b))
    assert c.ci_low == pytest.approx(diff - 1.959964 * se, rel=1e-5)
    assert c.n == 600 and c.n_defaults == int(y.sum())


def test_delong_interval_covers_zero_for_two_equally_good_models():
    """Two models of the same quality: the 95% interval of the gain covers 0 in about 95%
    of worlds (coverage check over 60 seeded worlds)."""
    covered = [
        (c := delong_auc_difference(*_world(1500, seed=s))).ci_low <= 0 <= c.ci_high
        for s in range(60)
    ]
    assert 0.88 <= np.mean(covered) <= 1.0, np.mean(covered)


def test_delong_refuses_bad_input_in_one_line():
    with pytest.raises(ValueError, match="both classes"):
        delong_auc_difference(np.zeros(5), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="lengths differ"):
        delong_auc_difference(np.array([0, 1]), np.ones(2), np.ones(3))


def test_first_model_is_promoted_when_calibrated_and_stable():
    d = decide_promotion(GOOD, None, GATE)
    assert d.promote, d.reasons
    assert "pass: no current champion" in d.reasons


@pytest.mark.parametrize(
    ("challenger", "why"), [({**GOOD, "ece": 0.03}, "ECE"), ({**GOOD, "psi": 0.4}, "PSI")]
)
def test_gate_refuses_and_names_the_failing_condition(challenger, why):
    d = decide_promotion(challenger, None, GATE)
    assert not d.promote
    assert any(r.startswith("fail") and why in r for r in d.reasons), d.reasons


def test_a_gain_inside_the_noise_is_not_promoted():
    """Issue #13: the old gate promoted on +0.001 AUC with no uncertainty. A challenger a
    little better on this cohort but with an interval that covers 0 is refused, and the
    reason carries the interval."""
    y, chall, champ = _world(3000, seed=8)
    c = delong_auc_difference(y, chall, champ)
    assert c.difference > 0.001 and c.ci_low < 0 < c.ci_high, c  # old gate: promoted
    d = decide_promotion(GOOD, {"version": "1", "rescored": True}, GATE, comparison=c)
    assert not d.promote
    assert any(r.startswith("fail") and "95% CI [" in r for r in d.reasons), d.reasons
    assert d.comparison["ci_low"] == c.ci_low and d.comparison["method"] == "DeLong"


def test_a_clearly_better_challenger_is_promoted():
    y, chall, champ = _world(4000, seed=5, noise_champion=2.0, noise_chall=0.5)
    c = delong_auc_difference(y, chall, champ)
    assert c.ci_low > 0.01, c
    d = decide_promotion(GOOD, {"version": "1", "rescored": True}, GATE, comparison=c)
    assert d.promote, d.reasons


def test_the_lower_bound_must_clear_the_margin():
    y, chall, champ = _world(4000, seed=5, noise_champion=2.0, noise_chall=0.5)
    c = delong_auc_difference(y, chall, champ)
    strict = GATE.model_copy(update={"min_auc_gain": c.ci_low + 0.001})
    assert not decide_promotion(GOOD, {"version": "1"}, strict, comparison=c).promote


def test_a_champion_that_cannot_be_rescored_is_reported_and_the_stated_rule_decides():
    """No fallback to a metric from another cohort: the gate says the champion could not
    be re-scored and applies gate.on_unscorable_champion (refuse by default)."""
    champ = {"version": "3", "rescored": False, "why": "KeyError: 'new_feature'"}
    d = decide_promotion(GOOD, champ, GATE)
    assert not d.promote
    assert any("cannot be re-scored" in r and "new_feature" in r for r in d.reasons)
    lenient = GATE.model_copy(update={"on_unscorable_champion": "promote"})
    d = decide_promotion(GOOD, champ, lenient)
    assert d.promote and any(r.startswith("warn") and "re-scored" in r for r in d.reasons)


def test_score_champion_says_why_when_there_is_no_champion(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    configure(MlflowParams())
    pd_, why = score_champion("nobody", pd.DataFrame({"x": [1.0]}))
    assert pd_ is None and why


def test_tracking_uri_env_overrides_params(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(MlflowParams()) == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking_uri(MlflowParams()) == "http://mlflow.internal:5000"


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
