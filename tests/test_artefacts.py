"""Artefact paths are declared once, and an artefact a stage reads is checked like an input:
a missing file, key or column, or a value of the wrong type, is refused in one line that
names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring.artefacts import (
    PREDICTION_COLUMNS,
    ArtefactError,
    FairnessReport,
    GateReport,
    MetricsReport,
    Paths,
    RobustnessReport,
    TrainLog,
    read_json,
    read_predictions,
)
from credit_scoring.config import parse_params
from credit_scoring.data.ingest import InputError


def test_paths_follow_the_params_that_name_folders():
    p = parse_params(
        {
            "data": {"input_dir": "in", "validated_dir": "v", "quality_report": "q/r.json"},
            "features": {"output_dir": "feat"},
            "train": {"output_dir": "m"},
        }
    )
    paths = Paths.from_params(p)
    assert paths.input_dir == Path("in") and paths.validated_dir == Path("v")
    assert paths.quality_report == Path("q/r.json")
    assert paths.features == Path("feat/features.parquet")
    assert paths.protected == Path("feat/protected.parquet")
    assert paths.bundle == Path("m/bundle") and paths.train_log == Path("m/train_log.json")
    assert paths.predictions == Path("m/predictions.parquet")
    assert paths.metrics == Path("reports/metrics.json")
    assert paths.gate == Path("reports/gate.json")
    with pytest.raises(AttributeError):
        paths.models_dir = Path("elsewhere")  # frozen: built once, passed down


def _train_log() -> dict:
    return {
        "engine": "local",
        "best_iteration": 3,
        "evals_result": {"validation": {"binary_logloss": [0.3, 0.2, 0.1]}},
        "slices": {"train": 10, "validation": 2, "calibration": 2, "test": 2},
        "cohorts": {
            "train": ["2024-01-01"],
            "validation": ["2024-03-01"],
            "calibration": ["2024-05-01"],
            "test": ["2024-07-01"],
        },
        "calibration": {"method": "sigmoid"},
        "tuning_trials": [],
    }


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def test_a_whole_train_log_is_read_typed():
    log = read_json(_write(Path("models/train_log.json"), _train_log()), TrainLog, "train")
    assert log.best_iteration == 3 and str(log.cohorts.test[0]) == "2024-07-01"


def test_a_missing_key_is_refused_naming_the_file_and_the_key():
    raw = _train_log()
    del raw["cohorts"]["test"]
    path = _write(Path("models/train_log.json"), raw)
    with pytest.raises(ArtefactError) as err:
        read_json(path, TrainLog, "train")
    assert str(err.value) == "models/train_log.json: missing key 'cohorts.test'"


def test_a_mistyped_value_is_refused_naming_the_file_and_the_field():
    path = _write(Path("reports/metrics.json"), {"auc": "high"})
    with pytest.raises(ArtefactError) as err:
        read_json(path, MetricsReport, "evaluate")
    message = str(err.value)
    assert message.startswith("reports/metrics.json: auc: Input should be a valid number")
    assert "missing key 'ece'" in message and "\n" not in message


def test_a_missing_or_unreadable_file_is_refused_in_one_line():
    with pytest.raises(ArtefactError, match=r"^reports/gate.json: not found \(written by the"):
        read_json(Path("reports/gate.json"), GateReport, "register")
    path = Path("reports/fairness.json")
    path.parent.mkdir()
    path.write_text('{"breaches": [')
    with pytest.raises(ArtefactError) as err:
        read_json(path, FairnessReport, "evaluate")
    assert str(err.value).startswith("reports/fairness.json: not valid JSON") and "\n" not in str(
        err.value
    )
    path.write_text("[1, 2]")
    with pytest.raises(ArtefactError, match="expected a JSON object, got list"):
        read_json(path, FairnessReport, "evaluate")


def test_robustness_and_gate_reports_need_their_verdicts():
    with pytest.raises(ArtefactError, match=r"missing key 'summary.passed'"):
        read_json(
            _write(
                Path("reports/robustness.json"),
                {
                    "sample_people": 1,
                    "good_contact_pool": 1,
                    "bounds": {},
                    "gaming": {},
                    "stability": {},
                    "summary": {
                        "max_bounded_gain": 0.0,
                        "worst_scenario": "x",
                        "stable_p90_change": 0.0,
                    },
                    "breaches": [],
                },
            ),
            RobustnessReport,
            "robustness",
        )
    with pytest.raises(ArtefactError, match=r"missing key 'promote'"):
        read_json(
            _write(Path("reports/gate.json"), {"model_name": "m", "version": "1", "run_id": "r"}),
            GateReport,
            "register",
        )


def _predictions(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "slice": ["test"] * n,
            "person_id": [f"P{i}" for i in range(n)],
            "observation_date": pd.to_datetime(["2024-07-01"] * n),
            "default_12m": np.zeros(n, dtype=np.int8),
            "margin": np.zeros(n),
            "pd_uncalibrated": np.full(n, 0.5),
            "pd": np.full(n, 0.05),
            "pd_baseline": np.full(n, 0.05),
        }
    )


def test_predictions_keep_their_column_contract():
    path = Path("models/predictions.parquet")
    path.parent.mkdir()
    _predictions().to_parquet(path)
    assert list(read_predictions(path).columns) == list(PREDICTION_COLUMNS)
    _predictions().drop(columns=["pd", "margin"]).to_parquet(path)
    with pytest.raises(ArtefactError) as err:
        read_predictions(path)
    assert str(err.value) == "models/predictions.parquet: missing columns margin, pd"
    _predictions().assign(pd="0.05").to_parquet(path)
    with pytest.raises(ArtefactError) as err:
        read_predictions(path)
    assert str(err.value).startswith("models/predictions.parquet: column 'pd' must be float, got")


def test_input_errors_are_artefact_errors():
    """Input tables are the first artefacts: the CLI treats both the same way."""
    assert issubclass(InputError, ArtefactError) and issubclass(ArtefactError, ValueError)
