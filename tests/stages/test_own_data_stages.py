"""Stages that must not fail the pipeline when the data is the user's own or the gate
refused (issue #12 case 5): fast, in a temporary folder."""

from __future__ import annotations

import pandas as pd

from credit_scoring.config import parse_params
from credit_scoring.stages import package, simulate


def test_simulate_does_not_simulate_the_users_own_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/simulated").mkdir(parents=True)
    (tmp_path / "data/simulated/events.parquet").write_text("stale")
    params = parse_params({"data": {"input_dir": "mine"}, "simulate": {"n_users": 10**6}})
    summary = simulate.run(params)
    assert summary["simulated"] == "no" and "mine" in summary["why"]
    assert [p.name for p in (tmp_path / "data/simulated").iterdir()] == ["NOT_SIMULATED.txt"]
    truth = pd.read_parquet(tmp_path / "data/truth.parquet")
    assert len(truth) == 0 and list(truth.columns) == ["person_id", "observation_date", "true_pd"]


def test_package_without_a_champion_says_so_and_succeeds(tmp_path, monkeypatch):
    """The gate never promoted a model: package writes packaged=false, no exception."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    summary = package.run(parse_params({}), build=False)
    assert summary["packaged"] is False and "no 'champion' model" in summary["reason"]
    assert (tmp_path / "reports/package.json").is_file()
