"""The register and report stages on a small world, in a temporary project with its own
MLflow store: the gate compares models re-scored on the same people with an interval and
never falls back to a logged metric; the validation report is written from whatever
exists, logged to the run, and renders in a real headless browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pytest

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params, parse_params
from credit_scoring.features.compute import protected_attributes
from credit_scoring.io import write_parquet
from credit_scoring.stages import evaluate, register, report, robustness, train
from credit_scoring.tracking import champion as champion_mod

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = [
    "Data and split",
    "Performance",
    "Score to odds",
    "Calibration",
    "Stability (PSI / CSI)",
    "Characteristic analysis",
    "Fairness",
    "Selection bias (through the door)",
    "Gaming and score stability",
    "Promotion gate",
    "Model card: intended use and limitations",
]


@pytest.fixture(scope="module")
def project(small_world, tmp_path_factory) -> tuple[Path, Params]:
    """train, evaluate, robustness (small sample, bounds not enforced), register and report
    run on the small world, MLflow in the folder."""
    data, _, table = small_world
    root = tmp_path_factory.mktemp("report")
    params = parse_params(
        {
            "train": {"lightgbm": {"num_boost_round": 60, "learning_rate": 0.1}},
            "robustness": {"sample_people": 60, "fail_on_breach": False},
            "gate": {"max_ece": 0.05},  # a 60-round toy model
            "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},
        }
    )
    paths = Paths.from_params(params)
    write_parquet(table, root / paths.features)
    write_parquet(protected_attributes(data), root / paths.protected)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        train.run(params)
        evaluate.run(params)
        mp.setattr(robustness, "read_validated", lambda folder: data)  # the small world's
        robustness.run(params)
        register.run(params)
        report.run(params)
    return root, params


def test_register_writes_the_gate_and_the_report_logs_itself_to_the_run(project, monkeypatch):
    root, _ = project
    gate = json.loads((root / "reports/gate.json").read_text())
    assert gate["promote"] is True and "pass: no current champion" in gate["reasons"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    arts = {a.path for a in client.list_artifacts(gate["run_id"], "validation")}
    assert "validation/index.html" in arts, arts
    logged = {a.path for a in client.list_artifacts(gate["run_id"], "reports")}
    assert "reports/validation" not in logged, "register logged an older validation page"


def test_same_model_again_is_refused_with_an_interval_on_the_same_people(project, monkeypatch):
    """Issue #13: the champion is re-scored on the same cohort; the same model again gains
    exactly 0 with a zero-width interval, which does not clear the margin."""
    root, params = project
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    register.run(params)
    gate = json.loads(Path("reports/gate.json").read_text())
    c = gate["comparison"]
    assert gate["promote"] is False, gate["reasons"]
    assert c["difference"] == 0 and c["ci_low"] == 0 and c["method"] == "DeLong"
    assert c["n"] > 0 and gate["champion"]["rescored"] is True
    client = mlflow.MlflowClient(tracking_uri=params.mlflow.tracking_uri)
    logged = client.get_run(gate["run_id"]).data.metrics
    assert logged["gate_auc_gain_ci_low"] == 0


def test_an_unscorable_champion_is_reported_not_replaced_by_a_logged_auc(project, monkeypatch):
    """The old stage fell back to the champion's logged test AUC (another cohort). Now the
    gate says it could not re-score and the default rule refuses."""
    root, params = project
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def unloadable(name, run_id):
        raise KeyError("a_new_feature")

    monkeypatch.setattr(champion_mod, "_champion_model", unloadable)
    register.run(params)
    gate = json.loads(Path("reports/gate.json").read_text())
    assert gate["promote"] is False and gate["comparison"] is None
    assert "auc" not in gate["champion"] and gate["champion"]["rescored"] is False
    assert any("cannot be re-scored" in r and "a_new_feature" in r for r in gate["reasons"])


def test_validated_metrics_sit_beside_the_deployed_refit_in_mlflow(project):
    """The registered version is the deployed refit (its bundle = models/bundle); the
    validated model's test metrics are logged beside it (``validated_test_*`` metrics,
    ``validated_test_auc`` and ``deployed_model`` version tags) and its bundle kept in
    the run for the next gate."""
    root, params = project
    gate = json.loads((root / "reports/gate.json").read_text())
    metrics = json.loads((root / "reports/metrics.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=params.mlflow.tracking_uri)
    run = client.get_run(gate["run_id"]).data
    assert run.metrics["validated_test_auc"] == pytest.approx(metrics["auc"])
    assert run.tags["deployed_model"] == "refit" == metrics["deployment"]["deployed"]
    mv = client.get_model_version(params.mlflow.model_name, gate["version"])
    assert mv.tags["validated_test_auc"] == f"{metrics['auc']:.4f}"
    assert mv.tags["deployed_model"] == "refit"
    arts = {a.path for a in client.list_artifacts(gate["run_id"], "validated_bundle")}
    assert "validated_bundle/booster.txt" in arts
    registered = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{params.mlflow.model_name}/{gate['version']}",
        dst_path=str(root / "dl"),
    )
    boosters = list(Path(registered).rglob("booster.txt"))
    assert len(boosters) == 1
    assert boosters[0].read_text() == (root / "models/bundle/booster.txt").read_text()
    assert boosters[0].read_text() != (root / "models/validated_bundle/booster.txt").read_text()


def test_the_gate_never_compares_a_model_on_rows_it_was_fit_on(project, monkeypatch):
    """The champion (a refit that saw the whole test cohort) is re-scored as its validated
    twin on the rows it held out; without the twin, the registered refit leaves no fair row
    and the gate refuses in one line instead of comparing it on its own training rows."""
    root, params = project
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    register.run(params)
    gate = json.loads(Path("reports/gate.json").read_text())
    champ = gate["champion"]
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert champ["scored_as"] == "its validated twin" and champ["rescored"] is True
    assert champ["rows"] == metrics["n_test"] == gate["comparison"]["n"]
    assert champ["rows_seen"] == 0
    # A champion without a twin (registered before twins existed): look up no run artefact.
    # (Register reopens the training run, so renaming the artefact would rename both.)
    with_twin = champion_mod._champion_model
    monkeypatch.setattr(champion_mod, "_champion_model", lambda name, run: with_twin(name, None))
    register.run(params)
    gate = json.loads(Path("reports/gate.json").read_text())
    champ = gate["champion"]
    assert champ["scored_as"] == "the registered model" and gate["comparison"] is None
    assert champ["rows"] == 0 and champ["rows_seen"] == metrics["n_test"]
    assert gate["promote"] is False
    assert any("no fair comparison" in r for r in gate["reasons"]), gate["reasons"]


def test_report_says_not_available_for_missing_artefacts(project, tmp_path, monkeypatch):
    """Only the train outputs: the page is written, the sections that need the missing
    reports say so, the others carry numbers. Nothing at all: still a page."""
    root, params = project
    monkeypatch.chdir(tmp_path)
    shutil.copytree(root / "models", tmp_path / "models")
    shutil.copytree(root / "data/features", tmp_path / "data/features")
    summary = report.run(params)
    html = Path("reports/validation/index.html").read_text()
    assert "fairness" in summary["not available"] and "gate" in summary["not available"]
    assert "Not available: reports/fairness.json: not found" in html
    assert "Not available: reports/gate.json: not found" in html
    assert "AUC [95% CI]" in html and "score_odds" not in summary["not available"]
    assert "not logged" in summary["mlflow"]
    shutil.rmtree(tmp_path / "models")
    shutil.rmtree(tmp_path / "data")
    summary = report.run(params)
    html = Path("reports/validation/index.html").read_text()
    assert html.count("Not available:") == len(SECTIONS) - 1  # the model card stays


def test_report_renders_in_a_headless_browser_with_its_sections_and_numbers(project, tmp_path):
    """Opened in Chromium: every section heading is visible, the test AUC of metrics.json
    and the gate's decision are on the page, the plots are loaded images."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    root, _ = project
    page_path = root / "reports/validation/index.html"
    metrics = json.loads((root / "reports/metrics.json").read_text())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_path.as_uri())
            headings = page.locator("section h2").all_inner_texts()
            assert headings == ["Summary", *SECTIONS], headings
            body = page.inner_text("body")
            assert f"{metrics['auc']:.3f}" in body, "the test AUC is not shown"
            assert "promoted" in body and "DeLong" in body
            assert "points to double the odds" in body
            widths = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
            )
            assert len(widths) >= 3 and all(w > 100 for w in widths), widths
            page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
