"""The register stage: continue the training's MLflow run, register the model as
``challenger`` and run the promotion gate.

The run train opened (:mod:`credit_scoring.tracking.runs`) gets the test metrics (the
baseline's in a child run), plots and reports, the model (code shipped, every input
optional) and tags tying it to DVC data hashes; the version and the registered model get
the gate's decision and reasons as descriptions. The gate moves
the ``champion`` alias only when the challenger is calibrated (ECE), stable (score PSI) and
better than the champion with confidence: both re-scored on the same test cohort, the
lower bound of the DeLong interval of the AUC gain above ``gate.min_auc_gain``. A champion
that cannot be re-scored is reported as such and ``gate.on_unscorable_champion`` decides.
Writes ``reports/gate.json`` (decision, reasons, the interval), also logged to the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml

from credit_scoring.artefacts import (
    DVC_LOCK,
    FairnessReport,
    MetricsReport,
    Paths,
    RobustnessReport,
    TrainLog,
    load_json,
    parse,
    read_json,
)
from credit_scoring.audit.gate import decide_promotion
from credit_scoring.config import Params
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.io import write_json
from credit_scoring.modelling.split import select_slice
from credit_scoring.tracking import registry as tracking
from credit_scoring.tracking import runs
from credit_scoring.tracking.champion import compare_with_champion, log_validated


def run(params: Params) -> dict[str, Any]:
    """Log, register and gate; returns the tracking URI, the version and the gate's reasons."""
    p = params
    paths = Paths.from_params(p)
    raw_metrics = load_json(paths.metrics, "evaluate")
    metrics = parse(raw_metrics, MetricsReport, paths.metrics)
    fairness_breaches = (
        read_json(paths.fairness, FairnessReport, "evaluate").breaches
        if paths.fairness.is_file()
        else None
    )
    if paths.robustness.is_file():  # logged with the reports: it must be a whole report
        read_json(paths.robustness, RobustnessReport, "robustness")
    raw_log = load_json(paths.train_log, "train")
    train_log = parse(raw_log, TrainLog, paths.train_log)
    model = CreditModel.load(paths.bundle)
    table = pd.read_parquet(paths.features)
    test = select_slice(table, train_log.cohorts.model_dump(), "test")
    client = tracking.configure(p.mlflow)
    name = p.mlflow.model_name
    with runs.continue_run(p, raw_log) as (run, continued):
        flat = {
            k.replace(".", "_"): float(v)
            for k, v in tracking.flatten(raw_metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        own, baseline = runs.split_metrics(flat)
        mlflow.log_metrics({f"test_{k}": v for k, v in own.items()})
        if not continued:  # training logged its curve and its data itself
            runs.log_curve(client, run.info.run_id, train_log.evals_result)
            runs.log_features(table, paths.features)
        run_name = run.info.run_name or run.info.run_id
        runs.log_baseline_run(run_name, baseline)
        _log_reports(paths)
        mlflow.log_dict(raw_log, paths.train_log.name)
        mlflow.set_tags(
            {
                "data_input_dir": p.data.input_dir,
                "calibration_method": model.calibrator.method,
                **dvc_lock_hashes(),
            }
        )
        example = test[model.feature_names].head(5)
        info = tracking.log_model(model, paths.bundle, example, name)
        version = str(info.registered_model_version)
        client.set_registered_model_alias(name, tracking.CHALLENGER, version)
        # validated models on rows neither was fit on (README "Validated model and deployed refit")
        log_validated(client, name, version, paths, raw_metrics)
        champ_info, comparison = compare_with_champion(
            client, name, test, CreditModel.load(paths.measured_bundle()), p.gate.confidence
        )
        decision = decide_promotion(
            {"auc": metrics.auc, "ece": metrics.ece, "psi": metrics.psi},
            champ_info,
            p.gate,
            comparison=comparison,
            fairness_breaches=fairness_breaches,
            block_on_fairness=p.fairness.block_promotion,
        )
        if decision.promote:
            client.set_registered_model_alias(name, tracking.CHAMPION, version)
        gate = {
            "model_name": name,
            "version": version,
            "run_id": run.info.run_id,
            **decision.to_dict(),
            # in-time (one snapshot) or out-of-time evidence, as the split recorded it (#12)
            "evidence": raw_metrics.get("evidence", "out-of-time"),
        }
        mlflow.log_dict(gate, paths.gate.name)
        if comparison is not None:
            mlflow.log_metrics(
                {
                    "gate_auc_gain": comparison.difference,
                    "gate_auc_gain_ci_low": comparison.ci_low,
                    "gate_auc_gain_ci_high": comparison.ci_high,
                    "gate_auc_champion": comparison.auc_champion,
                }
            )
        mlflow.set_tags(
            {
                "gate_promote": str(decision.promote),
                "model_version": version,
                "validation_evidence": gate["evidence"],
            }
        )
        client.set_model_version_tag(
            name, version, "gate", "promoted" if decision.promote else "refused"
        )
        client.set_model_version_tag(name, version, "test_auc", f"{metrics.auc:.4f}")
        runs.describe(client, gate, run_name)
    write_json(gate, paths.gate)
    return {
        "tracking uri": tracking.tracking_uri(p.mlflow),
        "mlflow run": f"{run_name} ({run.info.run_id})",
        "model": f"{name} v{version}",
        "gate": "PROMOTED to champion" if decision.promote else "refused",
        "evidence": gate["evidence"],
        **{f"reason {i + 1}": r for i, r in enumerate(decision.reasons)},
    }


def _log_reports(paths: Paths) -> None:
    """Log reports/ to the active run, except the validation report: the report stage runs
    after this one and logs this run's own page; an older one must not stand in for it."""
    for item in sorted(paths.reports_dir.iterdir()):
        if item == paths.validation_dir:
            continue
        dest = paths.reports_dir.name
        if item.is_dir():
            mlflow.log_artifacts(str(item), artifact_path=f"{dest}/{item.name}")
        else:
            mlflow.log_artifact(str(item), artifact_path=dest)


def dvc_lock_hashes(lock_path: Path = DVC_LOCK) -> dict[str, str]:
    """md5 of every stage output recorded by DVC, to tie a run to its exact data."""
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text()) or {}
    out = {}
    for stage, body in (lock.get("stages") or {}).items():
        for o in body.get("outs", []) or []:
            if "md5" in o:
                out[f"dvc.{stage}.{o['path']}"] = o["md5"]
    return out
