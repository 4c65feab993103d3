"""End to end: a real `dvc repro` of the whole pipeline on a small world, in a temp project.

Proves the DVC wiring (every stage runs, a second repro has nothing to do), the reports a
validator asks for, and the MLflow run, registry aliases and promotion gate, all in a
store under the temporary folder (never the user's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
    env["BENTOML_HOME"] = str(cwd / "bentoml")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def _client(project: Path) -> mlflow.MlflowClient:
    """The project's tracking AND registry store: a client given only a tracking URI
    takes the registry URI another test may have set in this process."""
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project's pipeline with a small world, after one `dvc repro`."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / "bentofile.yaml", root / "bentofile.yaml")
    shutil.copytree(REPO / "requirements", root / "requirements")
    shutil.copytree(REPO / "bin", root / "bin")  # the stage commands' launcher
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["base"]["observation_date"] = str(params["base"]["observation_date"])
    params["simulate"].update(n_users=6000, chunk_size=2000)
    params["train"]["lightgbm"].update(num_boost_round=300, learning_rate=0.08)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "init", "--no-scm", "-q"], root)
    _run(["dvc", "config", "core.analytics", "false"], root)
    _run(["dvc", "repro"], root)
    return root


def test_repro_writes_every_stage_output(project):
    for rel in [
        "data/simulated/events.parquet",
        "data/truth.parquet",
        "data/validated/events.parquet",
        "data/rejects/events.parquet",
        "reports/data_quality.json",
        "data/features/features.parquet",
        "data/features/protected.parquet",
        "models/bundle/booster.txt",
        "models/bundle/bundle.json",
        "reports/metrics.json",
        "reports/fairness.json",
        "reports/plots/fairness.png",
        "reports/gate.json",
        "reports/plots/roc.png",
        "reports/plots/calibration.png",
        "reports/plots/score_distribution.png",
        "reports/plots/feature_importance.png",
        "reports/plots/gains_ks.png",
        "reports/plots/band_table.png",
        "reports/plots/limit_distribution.png",
        "models/bundle/bundle.json",
        "data/scores/decisions.parquet",
        "reports/package.json",
        "reports/robustness.json",
        "reports/robustness/gaming_gains.png",
        "reports/robustness/stability.png",
    ]:
        assert (project / rel).exists(), f"dvc repro did not produce {rel}"


def test_second_repro_has_nothing_to_do(project):
    out = _run(["dvc", "repro"], project).stdout
    assert "Running stage" not in out, f"a second repro re-ran stages:\n{out}"
    assert "up to date" in out.lower()


def test_touching_a_core_module_makes_dvc_status_list_the_stages_that_run_it(project):
    """The temp project's own copy of src is what dvc.yaml tracks: a comment appended to
    modelling/calibrate.py (run by train through the bundle) makes `dvc status` list train,
    and not simulate, which never imports it; undoing the edit makes the pipeline clean."""
    calibrate = project / "src/credit_scoring/modelling/calibrate.py"
    original = calibrate.read_text()
    calibrate.write_text(original + "\n# touched by a test\n")
    try:
        changed = json.loads(_run(["dvc", "status", "--json"], project).stdout)
    finally:
        calibrate.write_text(original)
    assert "train" in changed and "simulate" not in changed and "ingest" not in changed
    assert {"changed deps": {"src/credit_scoring/modelling/calibrate.py": "modified"}} in (
        changed["train"]
    ), changed["train"]
    assert json.loads(_run(["dvc", "status", "--json"], project).stdout) == {}


def test_metrics_report_has_the_validator_keys(project):
    m = json.loads((project / "reports/metrics.json").read_text())
    for key in ("auc", "gini", "ks", "brier", "ece", "log_loss", "psi", "oracle_auc"):
        assert key in m and np.isfinite(m[key]), f"metrics.json lacks a finite {key}"
        if key != "oracle_auc":
            assert key in m["baseline"], f"baseline lacks {key}"
    assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert 0.5 < m["auc"] <= m["oracle_auc"] + 0.05, "model AUC is implausible vs the oracle"
    assert m["ece"] <= m["uncalibrated"]["ece"] + 0.01, "calibration made the model worse"
    shown = _run(["dvc", "metrics", "show", "--json"], project).stdout
    assert "auc" in shown


def test_fairness_report_is_written_and_its_summary_logged_to_mlflow(project):
    """evaluate writes reports/fairness.json; its numbers reach metrics.json and the run."""
    report = json.loads((project / "reports/fairness.json").read_text())
    assert set(report["attributes"]) == {"gender", "age_band"}
    for body in report["attributes"].values():
        assert sum(g["people"] for g in body["groups"]) == report["people"]
    m = json.loads((project / "reports/metrics.json").read_text())
    assert m["fairness"]["n_breaches"] == len(report["breaches"])
    gate = json.loads((project / "reports/gate.json").read_text())
    client = _client(project)
    logged = client.get_run(gate["run_id"]).data.metrics
    assert logged["test_fairness_n_breaches"] == len(report["breaches"])
    assert "test_fairness_gender_approval_rate_F" in logged


def test_robustness_audit_ran_on_the_development_slice_and_passed(project):
    """The gaming and stability audit runs before register, on real people of the
    development slice (never the final test cohort, #13), reports every scenario and holds
    its bounds (else register would not have run)."""
    from credit_scoring.audit.robustness import SCENARIOS

    r = json.loads((project / "reports/robustness.json").read_text())
    assert r["slice"] == "development"
    assert set(r["gaming"]) == set(SCENARIOS)
    assert r["sample_people"] > 0 and r["summary"]["passed"] is True, r["breaches"]
    for s in r["gaming"].values():
        assert s["bounded_gain"] <= r["bounds"]["max_gain_points"]
    assert r["stability"]["stable"]["p90"] <= r["bounds"]["max_p90_change_points"]


def test_ingest_counts_add_up(project):
    q = json.loads((project / "reports/data_quality.json").read_text())
    for name, t in q["tables"].items():
        assert t["input_rows"] == t["accepted"] + t["rejected"], f"{name} lost rows"


def test_features_never_include_protected_attributes(project):
    cols = set(pd.read_parquet(project / "data/features/features.parquet").columns)
    assert not cols & {"gender", "birth_year", "age", "age_band"}


def test_run_is_logged_registered_and_promoted_in_the_temp_store(project):
    client = _client(project)
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["promote"] is True, gate["reasons"]
    champ = client.get_model_version_by_alias("credit-scoring", "champion")
    chall = client.get_model_version_by_alias("credit-scoring", "challenger")
    assert str(champ.version) == str(chall.version) == gate["version"]
    run = client.get_run(champ.run_id)
    assert run.data.metrics["test_auc"] == pytest.approx(gate["challenger"]["auc"])
    assert "git_commit" in run.data.tags and "features_md5" in run.data.tags
    assert any(k.startswith("learning_curve_validation") for k in run.data.metrics)
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert "reports/metrics.json" in arts and "reports/plots" in arts


def test_champion_loaded_by_alias_gives_identical_decisions(project):
    """models:/credit-scoring@champion returns the whole decision, as the bundle does."""
    from credit_scoring.decision.bundle import CreditModel, decisions_frame

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{project / 'mlflow.db'}")
    loaded = mlflow.pyfunc.load_model("models:/credit-scoring@champion")
    feats = pd.read_parquet(project / "data/features/features.parquet").head(200)
    bundle = CreditModel.load(project / "models/bundle")
    got = loaded.predict(feats[bundle.feature_names])
    want = decisions_frame(bundle.decide(feats))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert {"pd", "score", "band", "credit_limit", "tiers", "reasons"} <= set(got.columns)


def test_score_stage_scores_every_row(project):
    feats = pd.read_parquet(project / "data/features/features.parquet")
    decisions = pd.read_parquet(project / "data/scores/decisions.parquet")
    rejects = pd.read_parquet(project / "data/scores/rejects.parquet")
    assert len(decisions) + len(rejects) == len(feats)
    assert decisions["score"].between(350, 950).all()


def test_gate_refuses_when_params_demand_more_and_champion_stays(project):
    """Tightening the ECE bound re-runs only `register`; the new version is refused."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["base"]["observation_date"] = str(params["base"]["observation_date"])
    params["gate"]["max_ece"] = 1e-9
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run(["dvc", "repro"], project).stdout
    assert "Running stage 'register'" in out and "Running stage 'train'" not in out
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["promote"] is False
    assert any(r.startswith("fail: ECE") for r in gate["reasons"])
    client = _client(project)
    assert str(client.get_model_version_by_alias("credit-scoring", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("credit-scoring", "challenger").version) == "2"


def test_package_puts_the_champion_into_the_bentoml_store_and_builds_a_bento(project):
    """`package` (after register) imports the champion's bundle with its registry labels."""
    summary = json.loads((project / "reports/package.json").read_text())
    client = _client(project)
    champ = client.get_model_version_by_alias("credit-scoring", "champion")
    assert summary["bentoml model"].startswith("credit-scoring:")
    assert summary["bento"].startswith("credit_scoring:")
    version = summary["bentoml model"].split(":")[1]
    folder = project / "bentoml" / "models" / "credit-scoring" / version
    info = json.loads((folder / "serve_info.json").read_text())
    assert info["alias"] == "champion" and info["registry_version"] == str(champ.version)
    assert info["run_id"] == champ.run_id
    assert info["model_version"] == f"{champ.version}@{champ.run_id}", "version and run"
    pinned = json.loads((project / "serve_config.json").read_text())["model"]
    assert pinned["tag"] == summary["bentoml model"], "package pins what it imported"
    auc = client.get_run(champ.run_id).data.metrics["test_auc"]
    assert info["test_metrics"]["auc"] == pytest.approx(auc)
    assert (folder / "booster.txt").is_file() and (folder / "bundle.json").is_file()


def test_fairness_breach_refuses_promotion_when_block_promotion_is_set(project):
    """Only the fairness bound fails (AUC margin relaxed, ECE bound restored): refused."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["base"]["observation_date"] = str(params["base"]["observation_date"])
    params["gate"].update(max_ece=0.02, min_auc_gain=-0.05)  # the lowest the params allow
    params["fairness"].update(block_promotion=True, max_calibration_gap=0.0)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "repro", "register"], project)
    report = json.loads((project / "reports/fairness.json").read_text())
    assert report["breaches"], "a zero calibration bound must be crossed"
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["promote"] is False
    fails = [r for r in gate["reasons"] if r.startswith("fail")]
    assert fails and all(r.startswith("fail: fairness:") for r in fails), gate["reasons"]
    client = _client(project)
    champ = client.get_model_version_by_alias("credit-scoring", "champion")
    assert str(champ.version) != gate["version"]


def test_scoring_your_own_file_never_overwrites_the_pipelines_scores(project, tmp_path):
    """`score --input FILE` without --output-dir writes scores/<name>/, and the score
    stage's DVC output (data/scores) is left exactly as `dvc repro` wrote it."""
    stage_out = project / "data/scores/decisions.parquet"
    before = stage_out.read_bytes()
    mine = project / "my_people.parquet"
    pd.read_parquet(project / "data/features/features.parquet").head(50).to_parquet(mine)
    out = _run([str(BIN / "credit-scoring"), "score", "--input", str(mine)], project)
    assert "scores/my_people" in out.stderr
    assert len(pd.read_parquet(project / "scores/my_people/decisions.parquet")) == 50
    assert stage_out.read_bytes() == before
