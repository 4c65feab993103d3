"""The Dask engines (cluster.py, features/dask_engine.py, modelling/dask_train.py) give the
local engine's results: equal features, an equally good model.

One LocalCluster (2 worker processes, 1 thread each) serves the whole module and is closed
at its end. The world is small but large enough that the test cohort AUC of two LightGBM
fits is not dominated by noise.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from credit_scoring import cluster, io, schemas
from credit_scoring.cli import app
from credit_scoring.config import BaseParams, DaskParams, Params, SimulateParams
from credit_scoring.data import validated
from credit_scoring.features import dask_engine
from credit_scoring.features.compute import compute_features_chunked, protected_attributes
from credit_scoring.features.registry import feature_names, feature_specs, monotone_constraints
from credit_scoring.modelling import dask_train
from credit_scoring.modelling.metrics import auc
from credit_scoring.modelling.split import out_of_time_split
from credit_scoring.modelling.train import (
    feature_matrix,
    labels,
    monotone_violations,
    predict_margin,
    train_lightgbm,
)

N_PEOPLE = 30_000  # below ~20k the two fits' AUCs differ by noise alone (bins, bagging)
KEY = ["person_id", "observation_date"]


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes with 1 thread each, started once per module."""
    params = DaskParams(n_workers=2, threads_per_worker=1, memory_limit="2GiB")
    with cluster.dask_client(params) as c:
        yield c
    assert c.status == "closed"


@pytest.fixture(scope="module")
def validated_dir(tmp_path_factory):
    """A seeded world written as the validated Parquet tables the features stage reads."""
    folder = tmp_path_factory.mktemp("validated")
    data, _ = simulate(N_PEOPLE)
    for name in schemas.TABLES:
        io.write_parquet(getattr(data, name), folder / f"{name}.parquet")
    return folder


def simulate(n: int):
    from credit_scoring.data.simulate import simulate_world

    return simulate_world(SimulateParams(n_users=n, chunk_size=n), BaseParams())


@pytest.fixture(scope="module")
def local_features(validated_dir):
    """The local engine's outputs: features with the label, and protected attributes."""
    data = validated.read_validated(validated_dir)
    table = compute_features_chunked(data).merge(
        data.outcomes[[*KEY, "default_12m"]], on=KEY, how="left"
    )
    return table, protected_attributes(data)


@pytest.fixture(scope="module")
def dask_features(client, validated_dir):
    return dask_engine.compute_features_dask(
        client, validated_dir, people_per_partition=N_PEOPLE // 4 + 1
    )


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEY).reset_index(drop=True)


def test_dask_features_equal_local_features_exactly(local_features, dask_features):
    """Partitions by person (4 here) + their contacts' network slice reproduce every value,
    including the social-connection features that read contacts in other partitions."""
    (local, local_prot), (table, prot) = local_features, dask_features
    assert len(table) == len(local) == N_PEOPLE
    pd.testing.assert_frame_equal(_sorted(table), _sorted(local), check_exact=True)
    pd.testing.assert_frame_equal(_sorted(prot), _sorted(local_prot), check_exact=True)
    assert (table["contacts_late30_share_365d"] > 0).sum() > 100  # network features exercised


def test_dask_features_equal_local_features_with_the_optional_inputs(client, tmp_path):
    """Ledgers, applications and dated profile facts (examples/make_real_shapes.py) read
    by range of people on the workers give the local engine's table exactly."""
    import importlib.util
    from pathlib import Path

    from credit_scoring.data.ingest import ingest, write_ingest_result

    examples = Path(__file__).resolve().parents[1] / "examples"
    spec = importlib.util.spec_from_file_location("shapes", examples / "make_real_shapes.py")
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    data, _ = simulate(1_200)
    rows = data.outcomes[data.outcomes["person_id"].isin(data.profiles["person_id"].iloc[:120])]
    extra = shapes.accounts_for(
        rows["person_id"].tolist(), rows["observation_date"].to_numpy(), 2, 90, 10
    )
    raw = tmp_path / "raw"
    for name in schemas.TABLES:
        io.write_parquet(getattr(data, name), raw / f"{name}.parquet")
    for name in schemas.OPTIONAL_TABLES:
        io.write_parquet(extra[name], raw / f"{name}.parquet")
    folder = tmp_path / "v"
    write_ingest_result(ingest(raw), folder, tmp_path / "r", tmp_path / "dq.json")
    local = validated.read_validated(folder)
    expected = compute_features_chunked(local).merge(
        local.outcomes[[*KEY, "default_12m"]], on=KEY, how="left"
    )
    table, _ = dask_engine.compute_features_dask(client, folder, people_per_partition=300)
    pd.testing.assert_frame_equal(_sorted(table), _sorted(expected), check_exact=True)
    assert table["instalment_to_income"].notna().sum() > 100


def test_dask_model_matches_local_model(client, validated_dir, local_features, tmp_path):
    """Same data, split, params and constraints: the LightGBM Dask model's test AUC is within
    0.005 of the local one; it is monotone, cut at the early-stopping best iteration, and,
    like the local model, never splits on an unscored (cheap to game) feature."""
    table, _ = local_features
    path = io.write_parquet(table, tmp_path / "features.parquet")
    params = Params()
    lgbm = params.train.lightgbm.model_copy(
        update={"learning_rate": 0.05, "num_boost_round": 1000, "early_stopping_rounds": 50}
    )
    train_params = params.train.model_copy(update={"lightgbm": lgbm})
    names = feature_names()
    constraints = monotone_constraints(names)
    split = out_of_time_split(table, params.split)

    local = train_lightgbm(
        split.train, split.validation, names, constraints, train_params, seed=1, num_threads=1
    )
    remote = dask_train.train_lightgbm_dask(
        client, path, split, names, constraints, train_params, seed=1
    )

    x_test, y_test = feature_matrix(split.test, names), labels(split.test)
    aucs = [
        auc(y_test, 1.0 / (1.0 + np.exp(-predict_margin(m.booster, x_test))))
        for m in (local, remote)
    ]
    assert abs(aucs[0] - aucs[1]) < 0.005, aucs
    assert isinstance(remote.booster, lgb.Booster)
    assert remote.booster.current_iteration() == remote.best_iteration
    assert remote.params["num_machines"] == 2
    assert remote.params["monotone_constraints"] == constraints
    assert monotone_violations(remote.booster, constraints) == []
    assert "[machines:" not in remote.booster.model_to_string()  # no run-specific ports saved
    unscored = {s.name for s in feature_specs() if not s.scored}
    for m in (local, remote):
        split_on = m.booster.trees_to_dataframe()["split_feature"].dropna()
        assert unscored and not unscored & set(split_on), unscored & set(split_on)
    curve = remote.evals_result["validation"]["binary_logloss"]
    assert len(curve) == min(remote.best_iteration + 50, 1000)
    assert remote.best_iteration == int(np.argmin(curve)) + 1
    # The substitute for early stopping picks what lgb.early_stopping picked locally.
    local_curve = local.evals_result["validation"]["binary_logloss"]
    assert dask_train.early_stopping_iteration(local_curve, 50) == local.best_iteration


def test_unreachable_scheduler_fails_with_one_line(tmp_path):
    """engine: dask with a scheduler nobody listens on stops the stage with exit code 2 and
    one line naming the setting and the address, not a traceback."""
    params = tmp_path / "params.yaml"
    params.write_text(
        "engine: dask\ndask:\n  scheduler_address: tcp://127.0.0.1:9\n  connect_timeout_s: 1\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["features", "--params", str(params)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "dask.scheduler_address" in message
    assert "tcp://127.0.0.1:9" in message
    assert "Traceback" not in result.output
    unreachable = DaskParams(scheduler_address="tcp://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(cluster.ClusterError, match="cannot connect"):
        cluster.dask_client(unreachable).__enter__()
