"""Shared test setup: telemetry off, and nothing touches the user's stores or working tree."""

from __future__ import annotations

import pytest

from credit_scoring.telemetry import disable_telemetry

disable_telemetry()


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Each test runs in its own temporary folder, so relative output paths never hit the repo."""
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(scope="session")
def small_world():
    """A small seeded world and its point-in-time feature table (with labels)."""
    from credit_scoring.config import BaseParams, SimulateParams
    from credit_scoring.data.simulate import simulate_world
    from credit_scoring.features.compute import compute_features

    data, truth = simulate_world(SimulateParams(n_users=5000, chunk_size=5000), BaseParams())
    table = compute_features(data).merge(
        data.outcomes[["person_id", "observation_date", "default_12m"]],
        on=["person_id", "observation_date"],
    )
    return data, truth, table


@pytest.fixture(scope="session")
def small_model(small_world):
    """A real (small) LightGBM + calibrator bundle trained out of time on the small world."""
    from credit_scoring.config import CalibrateParams, Params
    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.features.registry import feature_names
    from credit_scoring.modelling.split import out_of_time_split
    from credit_scoring.modelling.train import local_trainer

    _, _, table = small_world
    params = Params()
    split = out_of_time_split(table, params.split)
    lgbm = params.train.lightgbm.model_copy(update={"num_boost_round": 150, "learning_rate": 0.1})
    model = CreditModel(
        feature_names(),
        train_params=params.train.model_copy(update={"lightgbm": lgbm}),
        calibrate_params=CalibrateParams(method="sigmoid", ece_bins=10),
        seed=0,
    )
    return model.fit(split, local_trainer(num_threads=1))
