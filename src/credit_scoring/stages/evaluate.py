"""The evaluate stage: the model on the held-out test slice (out of time, or in time for
one snapshot: ``metrics.json``'s ``split.evidence`` says which).

``reports/metrics.json``: the calibrated model and the WoE baseline side by side (AUC,
Gini, KS, Brier, ECE, log loss, PSI of the score train vs test), ECE before and after
calibration, the band table's monotonicity, approval rate and, on the synthetic world, the
oracle AUC and the gap to the simulator's true probabilities; 95% intervals (``ci``:
bootstrap for AUC, KS, ECE and the default rate, Hanley-McNeil for AUC) and the band check
with its numbers (``band_check``: pass, fail beyond noise, or not checkable).
``reports/fairness.json`` and the plots (with their CSV tables) under ``reports/plots``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.artefacts import Paths, TrainLog, read_json, read_predictions
from credit_scoring.audit import evaluate as ev
from credit_scoring.audit import fairness as fairness_mod
from credit_scoring.audit import selection_bias
from credit_scoring.config import Params
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.scorecard import ScoreScale
from credit_scoring.io import write_atomic, write_json
from credit_scoring.modelling.metrics import auc, auc_interval, bootstrap_intervals, brier, ece, psi
from credit_scoring.modelling.split import EVIDENCE, select_slice
from credit_scoring.schemas import LABEL, ROW_KEY
from credit_scoring.stages import StageError

KEYS = list(ROW_KEY)


def run(params: Params) -> dict[str, Any]:
    """Write the metrics, fairness report and plots; returns the metrics, the fairness
    report and the band check (``monotone``, ``why``) for the CLI to show and act on."""
    p = params
    paths = Paths.from_params(p)
    preds = read_predictions(paths.predictions)
    train_log = read_json(paths.train_log, TrainLog, "train")
    model = CreditModel.load(paths.measured_bundle())  # the validated model, never a refit
    scale = ScoreScale.from_params(p.score)
    n_bins = p.calibrate.ece_bins
    cohorts = train_log.cohorts.model_dump()
    test = select_slice(preds, cohorts, "test")
    train = select_slice(preds, cohorts, "train")
    y = test[LABEL].to_numpy()
    score_train = scale.score(train["pd"].to_numpy())
    score_test = scale.score(test["pd"].to_numpy())
    metrics: dict[str, Any] = {
        k: float(v)
        for k, v in ev.metrics_block(
            y, test["pd"].to_numpy(), train["pd"].to_numpy(), n_bins
        ).items()
    }
    metrics["psi"] = float(psi(score_train, score_test))
    metrics["baseline"] = ev.metrics_block(
        y, test["pd_baseline"].to_numpy(), train["pd_baseline"].to_numpy(), n_bins
    )
    metrics["uncalibrated"] = {
        "brier": brier(y, test["pd_uncalibrated"]),
        "ece": ece(y, test["pd_uncalibrated"], n_bins),
    }
    metrics["split"] = split_record(train_log)
    metrics["evidence"] = metrics["split"]["evidence"]
    extra = train_log.model_extra or {}
    metrics["deployment"] = extra.get("deployment") or {"deployed": "validated"}
    metrics["choices"] = extra.get("choices") or {}
    metrics["ci"] = {
        **bootstrap_intervals(
            y, test["pd"].to_numpy(), p.evaluate.bootstrap_samples, params.base.seed, 0.95, n_bins
        ),
        "auc_hanley": auc_interval(y, test["pd"].to_numpy()),
    }
    metrics["n_test"] = len(test)
    metrics["n_test_defaults"] = int(y.sum())
    metrics["test_default_rate"] = float(y.mean())
    metrics["mean_pd"] = float(test["pd"].mean())
    metrics["calibration_method"] = model.calibrator.method
    metrics["best_iteration"] = model.best_iteration
    curves = {
        "model": (y, test["pd"].to_numpy()),
        "baseline": (y, test["pd_baseline"].to_numpy()),
    }
    true_pd = truth = None
    if paths.truth.is_file() and paths.input_dir == paths.simulated_dir:
        truth = pd.read_parquet(paths.truth)
        joined = test.merge(truth, on=KEYS, how="left")
        if joined["true_pd"].notna().all():
            tp = true_pd = joined["true_pd"].to_numpy()
            metrics["oracle_auc"] = auc(y, tp)
            metrics["true_pd_gap"] = {
                "mean_abs_error": float(np.mean(np.abs(joined["pd"] - tp))),
                "ece_vs_true_pd": ev.gap_to_truth(joined["pd"].to_numpy(), tp, n_bins),
                "brier_oracle": brier(y, tp),
            }
            curves["oracle"] = (y, tp)
    roc = ev.roc_table(curves)
    cal_tables = {
        "model": ev.calibration_table(y, test["pd"].to_numpy(), n_bins),
        "uncalibrated": ev.calibration_table(y, test["pd_uncalibrated"].to_numpy(), n_bins),
        "baseline": ev.calibration_table(y, test["pd_baseline"].to_numpy(), n_bins),
    }
    gains = ev.gains_table(y, test["pd"].to_numpy())
    feats = pd.read_parquet(paths.features)
    feats_test = test[KEYS].merge(feats, on=KEYS, how="left")
    decisions = model.decide(feats_test, with_reasons=False)
    bands = ev.band_table(
        decisions["score"].to_numpy(),
        y,
        decisions["pd"].to_numpy(),
        p.score.bands,
        limit=decisions["credit_limit"].to_numpy(),
    )
    check = ev.band_check(bands, p.evaluate.min_band_people, p.evaluate.band_tolerance_z)
    monotone, why = check["status"] != ev.FAIL, check["why"]
    metrics["band_default_rate_monotone"] = check["status"] == ev.PASS  # never when unjudged
    metrics["band_check"] = check
    if truth is not None:  # a historical policy in the world: the model through the door
        block = selection_bias.evaluation_block(
            model,
            feats,
            truth,
            cohorts["test"],
            getattr(train_log, "reject_inference", None),
            p.decision.limit.lgd,
            n_bins,
        )
        if block is not None:
            metrics["reject_inference"] = block
    metrics["approval_rate"] = float((decisions["credit_limit"] > 0).mean())
    metrics["mean_limit_approved"] = float(
        decisions.loc[decisions["credit_limit"] > 0, "credit_limit"].mean()
    )
    fair = fairness(p, paths, test, decisions, true_pd)
    metrics["fairness"] = fairness_mod.summary_metrics(fair)
    write_json(fair, paths.fairness)
    dims = dict(zip(model.feature_names, model.feature_dimensions, strict=True))
    imp = ev.importance_table(model.booster, model.feature_names, dims)
    write_json(metrics, paths.metrics)
    write_json(ev.headline(metrics), paths.headline)
    for name, df in {
        "roc": roc,
        "calibration": pd.concat([t.assign(model=k) for k, t in cal_tables.items()]),
        # one file per curve: DVC's plots draw one line per file (dvc.yaml `plots:`)
        **{f"roc_{k}": t for k, t in ev.per_curve(roc).items()},
        **{f"calibration_{k}": t for k, t in cal_tables.items()},
        "gains": gains,
        "importance": imp,
        "band_table": bands,
        "score_distribution": pd.DataFrame(
            {
                "score": np.r_[score_train, score_test],
                "slice": ["train"] * len(score_train) + ["test"] * len(score_test),
            }
        )
        .groupby(["slice", "score"])
        .size()
        .rename("people")
        .reset_index(),
    }.items():
        write_atomic(
            paths.plots_dir / f"{name}.csv", lambda tmp, df=df: df.to_csv(tmp, index=False)
        )
    figures = {
        "roc.png": ev.plot_roc(roc, {k: auc(*v) for k, v in curves.items()}),
        "calibration.png": ev.plot_calibration(cal_tables),
        "gains_ks.png": ev.plot_gains(gains),
        "score_distribution.png": ev.plot_score_distribution(
            {"train": score_train, "test": score_test}, p.score.bands
        ),
        "feature_importance.png": ev.plot_importance(imp),
        "band_table.png": ev.plot_band_table(bands),
        "limit_distribution.png": ev.plot_limit_distribution(
            decisions["credit_limit"].to_numpy(), decisions["band"].to_numpy()
        ),
        "learning_curve.png": ev.plot_learning_curve(
            train_log.evals_result, train_log.best_iteration
        ),
        "fairness.png": fairness_mod.plot_fairness(fair),
    }
    for fname, fig in figures.items():
        write_atomic(
            paths.plots_dir / fname, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110)
        )
    return {
        "metrics": metrics,
        "fairness": fair,
        "fairness_path": paths.fairness,
        "monotone": monotone,
        "why": why,
        "band_status": check["status"],
    }


def split_record(train_log: TrainLog) -> dict[str, Any]:
    """How training split the data (train_log's ``split``), with ``evidence``: what the
    test numbers are evidence of. Logs from before the record are out of time."""
    record = dict((train_log.model_extra or {}).get("split") or {})
    method = record.get("method") or train_log.cohorts.method
    record.setdefault("method", method)
    record.setdefault("evidence", EVIDENCE.get(method, method))
    return record


def fairness(
    p: Params,
    paths: Paths,
    test: pd.DataFrame,
    decisions: pd.DataFrame,
    true_pd: np.ndarray | None = None,
) -> dict:
    """Join the test cohort's decisions to its protected attributes and build the report.

    With the simulator's true PD (synthetic world only), the oracle's approvals are those
    whose true-PD score clears the cut-off (the limit is 0 exactly below it).
    """
    oracle = None
    if true_pd is not None:
        oracle = ScoreScale.from_params(p.score).score(true_pd) >= p.decision.limit.cutoff_score
    protected = pd.read_parquet(paths.protected)
    aligned = test[KEYS].merge(protected, on=KEYS, how="left", validate="many_to_one")
    try:
        return fairness_mod.fairness_report(
            decisions.reset_index(drop=True),
            test[LABEL].to_numpy(),
            aligned,
            p.fairness,
            sorted(p.score.bands, key=p.score.bands.get),
            p.calibrate.ece_bins,
            true_pd=true_pd,
            oracle_approved=oracle,
        )
    except ValueError as err:
        raise StageError(f"fairness report ({paths.protected}): {err}") from None
