"""The stage modules on a small world, in a temporary project folder: one test cohort for
every stage that reads it, and artefacts checked where a stage reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from credit_scoring.artefacts import MetricsReport, Paths, TrainLog, read_json
from credit_scoring.cli import app
from credit_scoring.config import Params, parse_params
from credit_scoring.features.compute import protected_attributes
from credit_scoring.io import write_parquet
from credit_scoring.modelling import split as split_mod
from credit_scoring.modelling.split import out_of_time_split
from credit_scoring.schemas import ROW_KEY
from credit_scoring.stages import evaluate, register, robustness, train

KEYS = list(ROW_KEY)


class _Stop(Exception):
    """Raised by the spy once a stage has selected its test cohort."""


@pytest.fixture(scope="module")
def trained(small_world, tmp_path_factory) -> tuple[Path, Params]:
    """The train stage run on the small world (rows shuffled: the file's order must not
    matter), in a folder of its own."""
    data, _, table = small_world
    root = tmp_path_factory.mktemp("stages")
    params = parse_params({"train": {"lightgbm": {"num_boost_round": 60, "learning_rate": 0.1}}})
    paths = Paths.from_params(params)
    shuffled = table.sample(frac=1.0, random_state=7).reset_index(drop=True)
    write_parquet(shuffled, root / paths.features)
    write_parquet(protected_attributes(data), root / paths.protected)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        train.run(params)
    return root, params


def _spy(monkeypatch, module, seen: dict, stage: str, stop: bool) -> None:
    """Record the test cohort ``module`` selects (and stop the stage there if ``stop``)."""

    def select(df, cohorts, name="test"):
        rows = split_mod.select_slice(df, cohorts, name)
        seen.setdefault("names", []).append((stage, name))
        if name == "test" or stop:
            seen[stage] = rows[KEYS].copy()
            if stop:
                raise _Stop
        return rows

    monkeypatch.setattr(module, "select_slice", select)


def test_evaluate_and_register_select_the_same_test_cohort(trained, monkeypatch):
    """One definition of the test cohort (``split.select_slice`` of the cohorts training
    recorded): the stages that read it get the same rows in the same order, and these
    are the rows the split held out, whatever order the feature file is in. The
    robustness stage reads the development slice, never the test cohort (#13)."""
    root, params = trained
    monkeypatch.chdir(root)
    seen: dict = {}
    _spy(monkeypatch, evaluate, seen, "evaluate", stop=False)
    _spy(monkeypatch, robustness, seen, "robustness", stop=True)
    _spy(monkeypatch, register, seen, "register", stop=True)
    out = evaluate.run(params)
    for stage in (robustness, register):
        with pytest.raises(_Stop):
            stage.run(params)
    names = seen.pop("names")
    assert ("robustness", "development") in names and ("robustness", "test") not in names
    seen.pop("robustness", None)
    assert set(seen) == {"evaluate", "register"}
    paths = Paths.from_params(params)
    table = pd.read_parquet(paths.features)
    held_out = out_of_time_split(table, params.split).test[KEYS]
    assert len(held_out) == out["metrics"]["n_test"] > 0
    for stage, rows in seen.items():
        pd.testing.assert_frame_equal(
            rows, held_out, check_dtype=False, obj=f"{stage}'s test cohort"
        )
    # ... which is what the predictions file calls "test" and the train log's test dates.
    preds = pd.read_parquet(paths.predictions)
    tagged = preds.loc[preds["slice"] == "test", KEYS].reset_index(drop=True)
    pd.testing.assert_frame_equal(tagged, held_out, check_dtype=False)
    log = read_json(paths.train_log, TrainLog, "train")
    assert sorted(pd.to_datetime(held_out["observation_date"]).dt.date.unique()) == sorted(
        log.cohorts.test
    )


def test_evaluate_writes_what_register_reads(trained, monkeypatch):
    """metrics.json from evaluate passes the schema register checks it with."""
    root, params = trained
    monkeypatch.chdir(root)
    paths = Paths.from_params(params)
    if not paths.metrics.is_file():
        evaluate.run(params)
    metrics = read_json(paths.metrics, MetricsReport, "evaluate")
    assert 0.5 < metrics.auc <= 1 and np.isfinite(metrics.psi)


def test_cli_refuses_a_corrupt_artefact_in_one_line_with_exit_code_2(trained, monkeypatch):
    """A stage that reads a broken artefact stops before doing anything, with one line
    naming the file and the field, like a bad input file."""
    root, _ = trained
    monkeypatch.chdir(root)
    Path("params.yaml").write_text("{}\n")
    runner = CliRunner()
    preds = Path("models/predictions.parquet")
    good = preds.read_bytes()
    try:
        pd.read_parquet(preds).drop(columns=["pd_baseline"]).to_parquet(preds)
        result = runner.invoke(app, ["evaluate"])
    finally:
        preds.write_bytes(good)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: evaluate: models/predictions.parquet: missing column pd_baseline"
    ]
    metrics = Path("reports/metrics.json")
    metrics.parent.mkdir(exist_ok=True)
    metrics.write_text(json.dumps({"ece": 0.01, "psi": 0.01}))
    result = runner.invoke(app, ["register"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: register: reports/metrics.json: missing key 'auc'"
    ), result.output


def test_robustness_people_do_not_change_when_the_test_cohort_does(trained, monkeypatch):
    """The audit's people come from the development slice: destroying every test-cohort
    row (labels flipped, features shuffled) leaves the rows it scores unchanged, while
    ``robustness.slice: test`` (the old behaviour) would read them."""
    root, params = trained
    monkeypatch.chdir(root)
    paths = Paths.from_params(params)
    table = pd.read_parquet(paths.features)
    log = read_json(paths.train_log, TrainLog, "train")
    cohorts = log.cohorts.model_dump()
    test_keys = split_mod.select_slice(table, cohorts, "test")[KEYS]
    is_test = table[KEYS].merge(test_keys.assign(_t=1), on=KEYS, how="left")["_t"].eq(1)
    broken = table.copy()
    broken.loc[is_test.to_numpy(), "default_12m"] = (
        1 - broken.loc[is_test.to_numpy(), "default_12m"]
    )
    cols = [c for c in table.columns if c not in (*KEYS, "default_12m")]
    broken.loc[is_test.to_numpy(), cols] = broken.loc[is_test.to_numpy(), cols].to_numpy()[::-1]
    scored: list[pd.DataFrame] = []

    def spy(df, cohorts, name="test"):
        scored.append(split_mod.select_slice(df, cohorts, name))
        raise _Stop

    monkeypatch.setattr(robustness, "select_slice", spy)
    for frame in (table, broken):
        monkeypatch.setattr(robustness.pd, "read_parquet", lambda _p, frame=frame: frame)
        with pytest.raises(_Stop):
            robustness.run(params)
    assert params.robustness.slice == "development"
    pd.testing.assert_frame_equal(scored[0], scored[1])
    assert scored[0][KEYS].merge(test_keys, on=KEYS).empty
    old = parse_params({"robustness": {"slice": "test"}, "train": params.train.model_dump()})
    with pytest.raises(_Stop):
        robustness.run(old)
    assert len(scored[2].merge(test_keys, on=KEYS)) == len(test_keys) > 0


def test_train_writes_the_deployed_refit_beside_the_validated_model(trained, monkeypatch):
    """refit_on_all (default): models/bundle is the refit, models/validated_bundle the
    validated model; the train log says which is which, how many rows each slice gave the
    refit, and which slice each building choice read; predictions are the validated one's."""
    root, params = trained
    monkeypatch.chdir(root)
    paths = Paths.from_params(params)
    raw = json.loads(paths.train_log.read_text())
    dep = raw["deployment"]
    assert dep["deployed"] == "refit" and dep["validated_bundle"] == "models/validated_bundle"
    assert sum(dep["refit_fit"]["rows"].values()) == sum(raw["slices"].values())
    assert raw["choices"]["early_stopping"] == "validation"
    assert raw["choices"]["calibration_method"].startswith("calibration")
    deployed = (paths.bundle / "booster.txt").read_text()
    validated = (paths.validated_bundle / "booster.txt").read_text()
    assert deployed != validated
    from credit_scoring.decision.bundle import CreditModel

    model = CreditModel.load(paths.validated_bundle)
    preds = pd.read_parquet(paths.predictions)
    table = pd.read_parquet(paths.features)
    test = preds.loc[preds["slice"] == "test"]
    feats = test[KEYS].merge(table, on=KEYS, how="left")
    np.testing.assert_allclose(model.predict_pd(feats), test["pd"].to_numpy())


def test_refit_off_deploys_the_validated_model_as_before(small_world, trained, tmp_path):
    """train.refit_on_all: false gives today's behaviour: the deployed bundle is the
    validated model, the same booster the refit run kept as validated."""
    _, _, table = small_world
    root_on, params_on = trained
    params = parse_params({"train": {**params_on.train.model_dump(), "refit_on_all": False}})
    paths = Paths.from_params(params)
    write_parquet(table, tmp_path / paths.features)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        out = train.run(params)
    assert out["deployed"] == "validated"
    booster = (tmp_path / paths.bundle / "booster.txt").read_text()
    assert booster == (tmp_path / paths.validated_bundle / "booster.txt").read_text()
    assert booster == (root_on / paths.validated_bundle / "booster.txt").read_text()
