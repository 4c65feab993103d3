"""Selection bias through the door on a small world with a 70% historical approval policy."""

from __future__ import annotations

import numpy as np
import pytest

from credit_scoring.audit import selection_bias as sb
from credit_scoring.config import AcceptanceParams, BaseParams, Params
from credit_scoring.data.simulate import simulate_world
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.features.compute import compute_features
from credit_scoring.features.registry import feature_names
from credit_scoring.modelling import reject_inference as ri
from credit_scoring.modelling.split import make_split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.schemas import ROW_KEY

KEYS = list(ROW_KEY)


@pytest.fixture(scope="module")
def policy_world():
    """4,000 people, a 10% default rate (enough defaults among the approved), 70% approved."""
    params = Params()
    sim = params.simulate.model_copy(
        update={
            "n_users": 4000,
            "chunk_size": 4000,
            "default_rate": 0.1,
            "acceptance": AcceptanceParams(enabled=True, approval_rate=0.7),
        }
    )
    data, truth = simulate_world(sim, BaseParams(seed=3))
    table = compute_features(data).merge(data.outcomes, on=KEYS)
    split = make_split(table, params.split, 3)
    lgbm = params.train.lightgbm.model_copy(update={"num_boost_round": 200, "learning_rate": 0.1})
    train = params.train.model_copy(update={"lightgbm": lgbm})

    def new_model() -> CreditModel:
        return CreditModel(
            feature_names(), decision_params=params.decision, train_params=train, seed=3
        )

    def fit(m, s):
        return m.fit(s, local_trainer(num_threads=1))

    declined = ri.declined_rows(table, data.outcomes)
    applicants, joined = sb.period_applicants(table, truth, split)
    return params, table, split, declined, new_model, fit, applicants, joined


@pytest.fixture(scope="module")
def approved_only(policy_world):
    _, _, split, declined, new_model, fit, _, _ = policy_world
    model, report = sb.fit_with_method(new_model, split, declined, "none", 3, fit)
    return model, report


def test_bias_is_detected_approved_only_pd_understates_the_declined(policy_world, approved_only):
    """Trained on the approved only, the model's mean PD of the previously declined is well
    below their true PD (the bias the issue is about), and far more so than for the approved."""
    params, *_, applicants, joined = policy_world
    model, report = approved_only
    assert report == {"method": "none", "declined_rows": report["declined_rows"]}
    ttd = sb.evaluate_through_door(model, applicants, joined, params.decision.limit.lgd)
    declined, approved = ttd["previously_declined"], ttd["previously_approved"]
    assert declined["n"] > 150
    assert declined["mean_true_pd"] > 2 * approved["mean_true_pd"]
    assert declined["pd_bias"] < -0.05  # under-stated by over 5 points of PD
    assert declined["pd_bias"] < approved["pd_bias"] - 0.03
    # the limits granted to them carry more expected loss than the model believes
    assert declined["expected_loss_true"] > 1.5 * declined["expected_loss_model"]


def test_reweighting_reduces_the_bias_on_the_declined(policy_world, approved_only):
    """Reweighting by 1 / P(approved | features) (the default method) brings the declined
    group's mean PD closer to their true PD, and cuts the expected loss of their limits."""
    params, _, split, declined, new_model, fit, applicants, joined = policy_world
    lgd = params.decision.limit.lgd
    base = sb.evaluate_through_door(approved_only[0], applicants, joined, lgd)
    default = Params().train.reject_inference
    assert default == "reweight", "the default method is the one shown to reduce the bias"
    model, report = sb.fit_with_method(new_model, split, declined, default, 3, fit)
    after = sb.evaluate_through_door(model, applicants, joined, lgd)
    assert report["method"] == "reweight" and report["declined_rows"] == len(declined)
    b, a = base["previously_declined"], after["previously_declined"]
    assert abs(a["pd_bias"]) < abs(b["pd_bias"]) - 0.01
    assert a["expected_loss_true"] < b["expected_loss_true"]


def test_evaluation_block_is_none_without_a_policy(policy_world, approved_only):
    """The metrics.json section exists only when the truth carries a historical decision."""
    params, table, split, *_, joined = policy_world
    truth = joined.drop(columns=["decision"])
    block = sb.evaluation_block(
        approved_only[0], table, truth, split.cohorts["test"], None, params.decision.limit.lgd
    )
    assert block is None
    block = sb.evaluation_block(
        approved_only[0], table, joined, split.cohorts["test"], {"method": "none"}, 0.6
    )
    assert block["method"] == "none"
    assert set(block["through_the_door"]) >= {"all", "previously_declined", "grey_zone"}
    assert np.isfinite(block["through_the_door"]["all"]["auc_vs_true_pd"])
