"""The monitor stage: a window of production decisions against the training reference,
and, once outcomes mature, the model's performance on them.

Decisions come from the decision audit database (``serve.audit``: SQLite by default, any
SQLAlchemy URL such as PostgreSQL) or from a scored file (the ``score`` stage's
``decisions.parquet``, or the stream ``credit-scoring monitor-stream`` writes). Writes
``reports/monitoring/summary.json``, ``index.html`` and its PNGs, logs one MLflow run per
window (experiment ``<mlflow.experiment>-monitoring``, metrics at step = window index)
and returns the worst status; the CLI turns it into the exit code (0 / 3 watch / 4 act).

Not a DVC stage: production monitoring runs on a schedule over data that DVC does not
version; ``dvc repro`` stays the training pipeline (README "Monitoring in production").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.io import write_json
from credit_scoring.monitoring import performance, report, stability
from credit_scoring.monitoring.reference import reason_codes
from credit_scoring.monitoring.stability import FEATURE_PREFIX
from credit_scoring.schemas import DATE
from credit_scoring.stages import StageError

DEFAULT_OUT = Path("reports/monitoring")


def _json_list(v: Any) -> Any:
    if isinstance(v, str):
        return json.loads(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def decisions_from_audit(
    url: str, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> pd.DataFrame:
    """Decisions logged by the service (columns selected by name), features expanded."""
    from sqlalchemy import select

    from credit_scoring.serving.audit_log import DECISIONS, opened

    cols = [
        "decided_at",
        "person_ref",
        "model_version",
        "features",
        "pd",
        "score",
        "band",
        "credit_limit",
        "tiers",
        "reason_codes",
    ]
    query = select(*(DECISIONS.c[c] for c in cols)).order_by(DECISIONS.c.decided_at)
    if since is not None:
        query = query.where(DECISIONS.c.decided_at >= since)
    if until is not None:
        query = query.where(DECISIONS.c.decided_at < until)
    with opened(url) as engine, engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    if not rows:
        raise StageError(f"{url}: no decisions in the audit log for this window")
    frame = pd.DataFrame(rows).rename(columns={"person_ref": "person_id"})
    feats = pd.DataFrame([_json_list(f) for f in frame.pop("features")]).astype(float)
    feats.columns = [FEATURE_PREFIX + c for c in feats.columns]
    for col in ("tiers", "reason_codes"):
        frame[col] = [_json_list(v) for v in frame[col]]
    return pd.concat([frame, feats], axis=1)


def decisions_from_file(path: Path, features: Path | None = None) -> pd.DataFrame:
    """A scored file: the score stage's output (+ its features file, joined on the row
    key, since it carries no feature values) or a stream with features inside."""
    if not path.is_file():
        raise StageError(f"{path}: no such decisions file")
    frame = pd.read_parquet(path)
    if "reasons" in frame and "reason_codes" not in frame:
        frame["reason_codes"] = reason_codes(_json_list(v) for v in frame["reasons"])
    for col in ("tiers", "reason_codes"):
        if col in frame:
            frame[col] = [_json_list(v) for v in frame[col]]
    if "reason_codes" not in frame:
        frame["reason_codes"] = None
    if "decided_at" not in frame:
        if DATE not in frame:
            raise StageError(f"{path}: needs a decided_at or {DATE} column to cut windows")
        frame["decided_at"] = pd.to_datetime(frame[DATE])
    if features is not None:
        feats = pd.read_parquet(features)
        keys = [k for k in ("person_id", DATE) if k in frame and k in feats]
        feats = feats.rename(columns={c: FEATURE_PREFIX + c for c in feats if c not in keys})
        frame = frame.merge(feats, on=keys, how="left")
    return frame


def read_reference(params: Params) -> dict[str, Any]:
    path = Paths.from_params(params).monitoring_reference
    if not path.is_file():
        raise StageError(f"{path}: no monitoring reference; run `credit-scoring train` first")
    return json.loads(path.read_text(encoding="utf-8"))


def assess(
    decisions: pd.DataFrame,
    reference: dict[str, Any],
    params: Params,
    outcomes: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Stability per window and, with outcomes, performance: the pure part of :func:`run`."""
    mp = params.monitor
    try:
        windows = stability.monitor_windows(decisions, reference, mp)
    except ValueError as err:
        raise StageError(str(err)) from None
    for w in windows:
        w["n_watch"] = sum(it["status"] == stability.WATCH for it in w["items"])
        w["n_act"] = sum(it["status"] == stability.ACT for it in w["items"])
    result: dict[str, Any] = {
        "windows": windows,
        "months": [],
        "bands": [],
        "backtest": None,
        "vintages": None,
        "vintage_why": "no outcomes given",
    }
    statuses = [w["status"] for w in windows]
    if outcomes is not None:
        horizon = params.data.label.horizon_months
        as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now().normalize()
        try:
            joined = performance.join_outcomes(
                decisions, outcomes, horizon, as_of, mp.join_tolerance_days
            )
        except ValueError as err:
            raise StageError(str(err)) from None
        n_boot, seed = params.evaluate.bootstrap_samples, params.base.seed
        result["matured"] = len(joined)
        if len(joined):
            result["months"] = performance.by_month(joined, mp.min_outcomes, n_boot, seed)
            result["bands"] = performance.by_band(joined)
            try:
                result["vintages"] = performance.vintage_curves(joined, horizon, as_of)
            except ValueError as err:
                result["vintage_why"] = str(err)
        result["backtest"] = performance.backtest(joined, reference, mp.min_outcomes, n_boot, seed)
        statuses.append(result["backtest"]["status"])
    result["status"] = stability.worst(statuses)
    result["exit_code"] = stability.exit_code(result["status"])
    return result


def _log_mlflow(params: Params, result: dict[str, Any], report_dir: Path) -> list[str]:
    """One MLflow run per window, metrics at step = window index (charts across windows)."""
    import mlflow

    from credit_scoring.tracking.registry import configure

    configure(params.mlflow)
    mlflow.set_experiment(f"{params.mlflow.experiment}-monitoring")
    run_ids = []
    for w in result["windows"]:
        ts = int(pd.Timestamp(w["window"]).timestamp() * 1000)
        with mlflow.start_run(run_name=f"monitor {w['window']}") as run:
            mlflow.set_tags(
                {"window": w["window"], "status": w["status"], "window_kind": params.monitor.window}
            )
            feature_psi = [
                it["value"]
                for it in w["items"]
                if it["kind"] == "psi"
                and it["item"] in result["feature_names"]
                and it["value"] is not None
            ]
            metrics = {
                "score_psi": w["score_psi"],
                "approval_rate": w["approval_rate"],
                "mean_pd": w["mean_pd"],
                "decisions": w["decisions"],
                "items_watch": w["n_watch"],
                "items_act": w["n_act"],
                "max_feature_psi": max(feature_psi, default=0.0),
            }
            for m in result["months"]:
                if m["month"] == w["window"] and "auc" in m:
                    metrics.update(
                        {
                            f"{k}_matured": m[k]["value"]
                            for k in ("auc", "ks", "ece", "default_rate")
                        }
                    )
            mlflow.log_metrics(
                {k: float(v) for k, v in metrics.items() if v is not None},
                step=w["index"],
                timestamp=ts,
            )
            if w is result["windows"][-1]:
                mlflow.log_artifacts(str(report_dir), artifact_path="monitoring")
            run_ids.append(run.info.run_id)
    return run_ids


def run(
    params: Params,
    decisions_path: Path | None = None,
    features_path: Path | None = None,
    audit_url: str | None = None,
    outcomes_path: Path | None = None,
    as_of: dt.date | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    out_dir: Path = DEFAULT_OUT,
    log_mlflow: bool = True,
) -> dict[str, Any]:
    """Monitor; returns the summary and the worst status (``status``, ``exit_code``)."""
    reference = read_reference(params)
    if decisions_path is not None:
        decisions = decisions_from_file(decisions_path, features_path)
        t = pd.to_datetime(decisions["decided_at"])
        keep = np.ones(len(decisions), dtype=bool)
        if since is not None:
            keep &= (t >= pd.Timestamp(since)).to_numpy()
        if until is not None:
            keep &= (t < pd.Timestamp(until)).to_numpy()
        decisions = decisions[keep].reset_index(drop=True)
    else:
        from credit_scoring.serving.serve_config import audit_db_url

        url = audit_url or audit_db_url(params.serve.audit, Path.cwd())
        decisions = decisions_from_audit(url, since, until)
    if decisions.empty:
        raise StageError("no decisions in the window")
    outcomes = None
    if outcomes_path is not None:
        if not outcomes_path.is_file():
            raise StageError(f"{outcomes_path}: no such outcomes file")
        outcomes = pd.read_parquet(outcomes_path)
    result = assess(decisions, reference, params, outcomes, as_of)
    result["feature_names"] = reference["feature_names"]
    newest = result["windows"][-1]
    drift_rows = (
        stability.alarms(newest["items"])
        + sorted(
            (it for it in newest["items"] if it["status"] not in ("watch", "act")),
            key=lambda it: (
                it["kind"] != "psi",  # PSI first, largest first
                -(it["value"] if isinstance(it["value"], float) else 0.0),
            ),
        )[:25]
    )
    png = report.figures(
        result["windows"], params.monitor, result["months"], result["vintages"], result["bands"]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem, data in png.items():
        (out_dir / f"{stem}.png").write_bytes(data)
    models = sorted({str(v) for v in decisions.get("model_version", pd.Series(["bundle"]))})
    html = report.render_html(
        {
            "model": ", ".join(models),
            "n_decisions": len(decisions),
            "windows": result["windows"],
            "window_kind": params.monitor.window,
            "ref_rows": reference["rows"],
            "status": result["status"],
            "exit_code": result["exit_code"],
            "newest": newest,
            "drift_rows": drift_rows,
            "p": params.monitor,
            "backtest": result["backtest"],
            "months": result["months"],
            "png": png,
            "vintage_why": result["vintage_why"],
        }
    )
    (out_dir / "index.html").write_text(html, encoding="utf-8")
    summary = {
        "status": result["status"],
        "exit_code": result["exit_code"],
        "windows": [
            {k: v for k, v in w.items() if k != "items"}
            | {
                "alarms": [
                    {k: it[k] for k in ("item", "kind", "value", "status")}
                    for it in stability.alarms(w["items"])
                ]
            }
            for w in result["windows"]
        ],
        "backtest": result["backtest"],
        "by_month": result["months"],
        "by_band": result["bands"],
        "vintages": None
        if result["vintages"] is None
        else json.loads(result["vintages"].to_json(orient="records")),
    }
    write_json(summary, out_dir / "summary.json")
    if log_mlflow:
        summary["mlflow_runs"] = _log_mlflow(params, result, out_dir)
    result["summary"] = summary
    result["report"] = out_dir / "index.html"
    return result
