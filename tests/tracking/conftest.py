"""A small project that has been trained, evaluated and registered, in its own folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params, parse_params
from credit_scoring.features.compute import protected_attributes
from credit_scoring.io import write_parquet


@pytest.fixture(scope="session")
def registered(small_world, tmp_path_factory) -> tuple[Path, Params, dict]:
    """train -> evaluate -> register on the small world with the default local MLflow store
    (sqlite:///mlflow.db in the project folder); returns (root, params, register's summary)."""
    from credit_scoring.stages import evaluate, register, train

    data, _, table = small_world
    root = tmp_path_factory.mktemp("registered")
    params = parse_params({"train": {"lightgbm": {"num_boost_round": 60, "learning_rate": 0.1}}})
    paths = Paths.from_params(params)
    write_parquet(table, root / paths.features)
    write_parquet(protected_attributes(data), root / paths.protected)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        train.run(params)
        evaluate.run(params)
        summary = register.run(params)
    return root, params, summary
