"""One MLflow run per training, opened by train and continued by register, as MLflow users
expect: live learning curve, the feature table as the run's dataset, the baseline as its own
run, descriptions on the registry, a signature where every feature is optional."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from credit_scoring.artefacts import Paths
from credit_scoring.tracking import registry as tracking
from credit_scoring.tracking import runs


def _client(root) -> MlflowClient:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_train_and_register_share_one_run_with_curve_and_dataset(registered):
    """The run id train wrote is the run register logged the model and the gate in; the
    run holds the per-round learning curve and the feature table (digest = its md5)."""
    root, params, _ = registered
    paths = Paths.from_params(params)
    log = json.loads((root / paths.train_log).read_text())
    gate = json.loads((root / paths.gate).read_text())
    assert log[runs.RUN_ID_KEY] == gate["run_id"]
    client = _client(root)
    run = client.get_run(gate["run_id"])
    rounds = len(log["evals_result"]["validation"]["auc"])
    hist = client.get_metric_history(run.info.run_id, "learning_curve_validation_auc")
    assert len(hist) == rounds > 10
    assert "test_auc" in run.data.metrics and "test_baseline_auc" not in run.data.metrics
    (ds,) = run.inputs.dataset_inputs
    assert ds.dataset.digest == tracking.file_md5(root / paths.features)
    assert ds.dataset.name == paths.features.name
    assert run.data.tags["git_commit"] and run.info.run_name.startswith("lightgbm-")
    versions = client.search_model_versions(f"name='{params.mlflow.model_name}'")
    assert [v.run_id for v in versions] == [run.info.run_id]


def test_the_baseline_is_a_child_run_with_the_models_metric_names(registered):
    """The WoE baseline has its own run under the model's, with test_auc etc., so the
    compare view lines the two up."""
    root, params, _ = registered
    gate = json.loads((root / Paths.from_params(params).gate).read_text())
    client = _client(root)
    exp = client.get_experiment_by_name(params.mlflow.experiment)
    (child,) = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{gate['run_id']}'"
    )
    assert child.data.tags["model_kind"] == "woe-baseline"
    model_auc = client.get_run(gate["run_id"]).data.metrics["test_auc"]
    assert 0.5 < child.data.metrics["test_auc"] < model_auc + 0.1


def test_registry_descriptions_carry_the_gate_decision_and_reasons(registered):
    """The version's description states the gate's decision and every reason; the
    registered model's names the champion."""
    root, params, _ = registered
    gate = json.loads((root / Paths.from_params(params).gate).read_text())
    client = _client(root)
    mv = client.get_model_version(gate["model_name"], gate["version"])
    assert mv.description.startswith("Gate: PROMOTED" if gate["promote"] else "Gate: REFUSED")
    for reason in gate["reasons"]:
        assert reason in mv.description
    rm = client.get_registered_model(gate["model_name"])
    assert f"version {gate['version']}" in rm.description


def test_signature_makes_every_feature_optional_and_two_features_score(registered):
    """Every input of the signature is optional, so MLflow's schema enforcement lets a
    caller send two features (the rest missing), as the service does."""
    root, params, _ = registered
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{root / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{params.mlflow.model_name}@champion")
    inputs = model.metadata.get_input_schema().inputs
    assert len(inputs) > 40 and not any(c.required for c in inputs)
    two = [inputs[0].name, inputs[1].name]
    out = model.predict(pd.DataFrame({two[0]: [1.0, 0.0], two[1]: [2.0, None]}))
    assert len(out) == 2 and out["score"].between(350, 950).all()


def test_run_name_carries_the_dvc_experiment_else_the_commit(monkeypatch):
    """Under `dvc exp run` (DVC_EXP_NAME set) the run is named after the experiment and
    tagged with it; otherwise after the commit."""
    monkeypatch.delenv(runs.DVC_EXP_ENV, raising=False)
    assert runs.run_name(commit="0123456789abcdef") == "lightgbm-01234567"
    monkeypatch.setenv(runs.DVC_EXP_ENV, "leafy-dace")
    assert runs.run_name(commit="0123456789abcdef") == "lightgbm-leafy-dace"
    assert runs.run_tags("abc")["dvc_experiment"] == "leafy-dace"


@pytest.mark.parametrize("changed", [False, True])
def test_reopened_run_keeps_training_params_and_tags_changed_ones(tmp_path, changed):
    """Register reopens the run with its own params: new keys logged, a value changed since
    training kept as a `register.<key>` tag (params are immutable)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    mlflow.set_experiment("reopen")  # not the experiment id of another test's store
    with mlflow.start_run() as run:
        mlflow.log_params({"gate.max_ece": 0.02})
    with mlflow.start_run(run_id=run.info.run_id) as again:
        runs.log_params_again(
            client, again, {"gate.max_ece": 0.01 if changed else 0.02, "new.key": 1}
        )
    data = client.get_run(run.info.run_id).data
    assert data.params == {"gate.max_ece": "0.02", "new.key": "1"}
    assert data.tags.get("register.gate.max_ece") == ("0.01" if changed else None)


@pytest.mark.slow
def test_register_prints_no_mlflow_warnings_or_download_bars(registered, tmp_path):
    """`credit-scoring register` (re-run on a copy of the registered project) prints its
    summary and nothing of MLflow's: no warnings, no hints, no artefact download bars."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root, _, _ = registered
    copy = tmp_path / "project"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("mlruns", "bentoml_store"))
    shutil.copy2(Path(__file__).resolve().parents[2] / "params.yaml", copy / "params.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "credit-scoring"), "register"],
        cwd=copy,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "gate" in out
    for noise in ("Warning", "WARNING", "Downloading artifacts", "it/s]", "Registered model"):
        assert noise not in out, f"{noise!r} in register's output:\n{out[-3000:]}"
