"""The promotion gate decides as the params say, with a reason for every condition."""

from __future__ import annotations

import pytest

from credit_scoring.audit.gate import decide_promotion
from credit_scoring.config import GateParams, MlflowParams
from credit_scoring.tracking.registry import flatten, tracking_uri

GATE = GateParams(min_auc_gain=0.005, max_ece=0.01, max_psi=0.1)
GOOD = {"auc": 0.80, "ece": 0.005, "psi": 0.02}


def test_first_model_is_promoted_when_calibrated_and_stable():
    d = decide_promotion(GOOD, None, GATE)
    assert d.promote, d.reasons
    assert "pass: no current champion" in d.reasons


@pytest.mark.parametrize(
    ("challenger", "champion", "why"),
    [
        ({**GOOD, "ece": 0.03}, None, "ECE"),
        ({**GOOD, "psi": 0.4}, None, "PSI"),
        (GOOD, {"auc": 0.798}, "AUC"),  # better, but by less than the required margin
    ],
)
def test_gate_refuses_and_names_the_failing_condition(challenger, champion, why):
    d = decide_promotion(challenger, champion, GATE)
    assert not d.promote
    assert any(r.startswith("fail") and why in r for r in d.reasons), d.reasons


def test_challenger_beating_champion_by_the_margin_is_promoted():
    d = decide_promotion(GOOD, {"auc": 0.79}, GATE)
    assert d.promote, d.reasons


def test_tracking_uri_env_overrides_params(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(MlflowParams()) == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking_uri(MlflowParams()) == "http://mlflow.internal:5000"


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
