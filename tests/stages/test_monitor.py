"""The monitor on simulated production streams decided by a real small model: quiet on
a stable stream over seeds, each drift kind flagged on the features it moves, a macro
shock caught by the backtest once outcomes mature, the audit-log path, the HTML report
in headless Chromium and one MLflow run per window."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from credit_scoring.config import parse_params
from credit_scoring.monitoring.reference import reference_from_model
from credit_scoring.stages import monitor, monitor_stream

CHROMIUM = Path("/usr/bin/chromium")
AS_OF = pd.Timestamp("2028-01-01")  # every stream month has matured


@pytest.fixture(scope="module")
def setup(small_world, small_model, tmp_path_factory):
    """The small model saved as a bundle and its training reference."""
    from credit_scoring.modelling.split import out_of_time_split

    root = tmp_path_factory.mktemp("monitor")
    params = parse_params(
        {"monitor": {"min_outcomes": 200}, "evaluate": {"bootstrap_samples": 100}}
    )
    split = out_of_time_split(small_world[2], params.split)
    small_model.save(root / "models/bundle")
    ref = reference_from_model(small_model, split.train, 10, 3000, 0, {})
    (root / "models/monitoring_reference.json").write_text(json.dumps(ref))
    return root, params, ref


def _stream(setup, kind: str, months: int = 2, seed: int = 1):
    root, params, ref = setup
    out = root / f"{kind}-{seed}"
    monitor_stream.run(params, out, kind, months, 800, 1, None, seed, root / "models/bundle")
    decisions = monitor.decisions_from_file(out / "decisions.parquet")
    outcomes = pd.read_parquet(out / "outcomes.parquet")
    return out, monitor.assess(decisions, ref, params, outcomes, AS_OF)


def test_stable_stream_never_acts_over_seeds(setup) -> None:
    """Three seeds of a stable stream: no window and no backtest at 'act' (the false-alarm
    rate of act is 0/3; watch windows are counted and printed)."""
    acts, watches = 0, 0
    for seed in (11, 12, 13):
        _, result = _stream(setup, "none", months=1, seed=seed)
        acts += result["status"] == "act"
        watches += result["status"] == "watch"
    print(f"stable stream: act {acts}/3, watch {watches}/3")
    assert acts == 0


@pytest.mark.parametrize(
    ("kind", "moved"),
    [
        ("income", {"declared_income", "verified_income"}),
        ("channel", {"platform_months", "credit_history_months"}),
        ("shift", {"score"}),
    ],
)
def test_each_drift_kind_is_flagged_on_the_features_it_moves(setup, kind, moved) -> None:
    """Month 0 is stable, month 1 drifted: the drifted window acts, and every item the
    drift moves is at watch or act."""
    _, result = _stream(setup, kind)
    newest = result["windows"][-1]
    flagged = {it["item"] for it in newest["items"] if it["status"] in ("watch", "act")}
    assert newest["status"] == "act" and moved <= flagged, flagged


def test_macro_shock_is_caught_by_the_backtest_not_the_drift_table(setup) -> None:
    """Behaviour at decision time is unchanged, defaults rise afterwards: the score does
    not move, the backtest on the newest matured month acts; written as a report that
    renders in Chromium, and one MLflow run per window with the metrics at its step."""
    root, params, _ = setup
    out, result = _stream(setup, "macro")
    assert result["backtest"]["status"] == "act", result["backtest"]["why"]
    assert all(w["score_psi"] < params.monitor.psi_watch for w in result["windows"])
    mlflow_params = params.model_copy(
        update={
            "mlflow": params.mlflow.model_copy(
                update={"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"}
            )
        }
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        full = monitor.run(
            mlflow_params,
            out / "decisions.parquet",
            outcomes_path=out / "outcomes.parquet",
            as_of=AS_OF,
            out_dir=root / "report",
        )
    assert full["exit_code"] == 4
    runs = mlflow.search_runs(experiment_names=["credit-scoring-monitoring"], output_format="list")
    assert len(runs) == 2
    client = mlflow.MlflowClient()
    steps = sorted(client.get_metric_history(r.info.run_id, "score_psi")[0].step for r in runs)
    assert steps == [0, 1]
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page()
            page.goto((root / "report/index.html").as_uri())
            body = page.inner_text("body")
            assert "Backtest" in body and "act" in body
            widths = page.eval_on_selector_all("img", "i => i.map(x => x.naturalWidth)")
            assert len(widths) == 4 and min(widths) > 0, widths
        finally:
            browser.close()


def test_decisions_read_from_the_audit_database(setup, tmp_path) -> None:
    """Decisions written to the audit log's table are read back by name, features
    expanded, and monitored like a file."""
    from sqlalchemy import insert

    from credit_scoring.serving.audit_log import DECISIONS, opened

    root, params, ref = setup
    out = root / "none-1"
    if not (out / "decisions.parquet").exists():
        monitor_stream.run(params, out, "none", 1, 800, 1, None, 1, root / "models/bundle")
    dec = monitor.decisions_from_file(out / "decisions.parquet")
    feats = [c for c in dec if c.startswith("feature:")]
    rows = [
        {
            "request_id": f"r{i}",
            "item": 0,
            "decided_at": r["decided_at"].to_pydatetime(),
            "route": "score",
            "client_id": "c",
            "person_ref": r["person_id"],
            "model_name": "m",
            "model_version": "1@x",
            "bento_model": "m:1",
            "bundle_sha256": "0" * 64,
            "features": {
                c.removeprefix("feature:"): (None if pd.isna(r[c]) else float(r[c])) for c in feats
            },
            "pd": float(r["pd"]),
            "score": int(r["score"]),
            "band": r["band"],
            "credit_limit": float(r["credit_limit"]),
            "tiers": r["tiers"],
            "reason_codes": r["reason_codes"],
        }
        for i, r in dec.head(400).iterrows()
    ]
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with opened(url) as engine, engine.begin() as conn:
        conn.execute(insert(DECISIONS), rows)
    back = monitor.decisions_from_audit(url)
    assert len(back) == 400 and set(feats) <= set(back.columns)
    result = monitor.assess(back, ref, params)
    assert result["windows"][0]["decisions"] == 400
    assert result["windows"][0]["score_psi"] == pytest.approx(
        monitor.assess(dec.head(400), ref, params)["windows"][0]["score_psi"]
    )


def test_cli_exit_code_tells_a_scheduler_to_act(setup, monkeypatch) -> None:
    """`credit-scoring monitor` on a drifted stream exits 4 (act); on its stable first
    month alone it does not act, and its exit code is the one of the status it wrote
    (0 stable, 3 watch: the small world's reference can put one feature at watch)."""
    import yaml
    from typer.testing import CliRunner

    from credit_scoring.cli import app

    root, params, _ = setup
    out = root / "income-1"
    if not (out / "decisions.parquet").exists():
        monitor_stream.run(params, out, "income", 2, 800, 1, None, 1, root / "models/bundle")
    monkeypatch.chdir(root)
    (root / "params.yaml").write_text(yaml.safe_dump({"monitor": {"min_outcomes": 200}}))
    args = ["monitor", "--decisions", str(out / "decisions.parquet"), "--no-mlflow"]
    drifted = CliRunner().invoke(app, args)
    assert drifted.exit_code == 4, drifted.output
    stable = CliRunner().invoke(app, [*args, "--until", "2026-03-01", "--out", "stable"])
    status = json.loads((root / "stable/summary.json").read_text())["status"]
    assert status != "act" and stable.exit_code == {"stable": 0, "watch": 3}[status]
    assert (root / "stable/index.html").exists()
