"""The report stage: the model validation report of this run, one HTML page.

Reads what the pipeline wrote (train log, predictions, features, bundle, metrics,
fairness, robustness and gate reports); each missing or unreadable artefact makes its
section say "not available" with the reason, never stops the page. Writes
``reports/validation/index.html`` (self-contained: plots embedded) with the plots as PNG
beside it, and logs the folder to the MLflow run the register stage made (the ``run_id``
of ``reports/gate.json``), under ``validation/``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from credit_scoring.artefacts import (
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
from credit_scoring.audit import report as rp
from credit_scoring.config import Params
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.scorecard import ScoreScale
from credit_scoring.io import write_atomic
from credit_scoring.modelling.metrics import psi
from credit_scoring.modelling.split import SLICES, select_slice
from credit_scoring.schemas import LABEL
from credit_scoring.tracking import registry as tracking

T = TypeVar("T")
#: Characteristics analysed bin by bin (the most important by gain).
N_CHARACTERISTICS = 6
#: Rows of the CSI table shown (all are in csi.csv beside the page).
N_CSI_SHOWN = 15


def _attempt(missing: dict[str, str], key: str, fn: Callable[[], T]) -> T | None:
    """``fn()``, or None with the reason recorded under ``key``."""
    try:
        return fn()
    except (ArtefactError, OSError, ValueError, KeyError) as err:
        missing[key] = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None


def run(params: Params) -> dict[str, Any]:
    """Build and write the report; returns where it is and what was not available."""
    p = params
    paths = Paths.from_params(p)
    missing: dict[str, str] = {}
    train_log = _attempt(
        missing, "train log", lambda: read_json(paths.train_log, TrainLog, "train")
    )
    preds = _attempt(missing, "predictions", lambda: read_predictions(paths.predictions))
    metrics = _attempt(
        missing, "metrics", lambda: read_json(paths.metrics, MetricsReport, "evaluate")
    )
    fairness = _attempt(
        missing, "fairness", lambda: read_json(paths.fairness, FairnessReport, "evaluate")
    )
    robust = _attempt(
        missing,
        "robustness",
        lambda: read_json(paths.robustness, RobustnessReport, "robustness"),
    )
    gate = _attempt(missing, "gate", lambda: read_json(paths.gate, GateReport, "register"))
    # the validated model (its test-cohort numbers are the evidence), not a deployed refit
    model = _attempt(missing, "bundle", lambda: CreditModel.load(paths.measured_bundle()))
    table = None
    if train_log is not None:
        table = _attempt(missing, "features", lambda: pd.read_parquet(paths.features))
    scale = ScoreScale.from_params(p.score)
    cohorts = train_log.cohorts.model_dump() if train_log is not None else None

    pngs: dict[str, bytes] = {}
    sections = [
        _data_section(p, paths, train_log, preds, missing),
        _performance_section(p, preds, metrics, missing),
        _score_odds_section(p, scale, preds, cohorts, pngs, missing),
        _calibration_section(p, preds, cohorts, metrics, pngs, missing),
        _stability_section(scale, preds, cohorts, table, model, pngs, missing),
        _characteristics_section(table, cohorts, preds, model, missing),
        _fairness_section(fairness, missing),
        _selection_bias_section(metrics, missing),
        _robustness_section(robust, missing),
        _gate_section(gate, missing),
        _model_card(p, paths, train_log, metrics, fairness, robust, gate),
    ]
    context = {
        "title": f"{p.mlflow.model_name}"
        + (f" v{gate.version}" if gate is not None else " (not registered)"),
        "subtitle": f"commit {tracking.git_commit()[:10]}, data {p.data.input_dir}",
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kpis": _kpis(preds, cohorts, metrics, gate),
        "verdicts": _verdicts(p, metrics, fairness, robust, gate),
        "sections": sections,
    }
    html = rp.render_html(context)
    out = paths.validation_dir
    for name, png in pngs.items():
        write_atomic(out / name, lambda tmp, png=png: tmp.write_bytes(png))
    write_atomic(paths.validation_report, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    logged = _log_to_run(p, paths, gate)
    return {
        "report": str(paths.validation_report),
        "sections": len(sections),
        "not available": ", ".join(sorted(missing)) or "nothing",
        "mlflow": logged,
    }


def _log_to_run(p: Params, paths: Paths, gate: GateReport | None) -> str:
    """Log the report folder to the registered run; say why not when it cannot be."""
    if gate is None:
        return "not logged (no reports/gate.json: register has not run)"
    try:
        client = tracking.configure(p.mlflow)
        client.log_artifacts(gate.run_id, str(paths.validation_dir), "validation")
    except Exception as err:  # the store is elsewhere or the run is gone: report, not fail
        return f"not logged to run {gate.run_id}: {type(err).__name__}"
    return f"logged to run {gate.run_id} under validation/"


# --------------------------------------------------------------------------- sections


def _slice(preds: pd.DataFrame | None, cohorts, name: str) -> pd.DataFrame | None:
    if preds is None or cohorts is None:
        return None
    return select_slice(preds, cohorts, name)


def _data_section(p, paths, train_log, preds, missing) -> dict:
    if train_log is None:
        return rp.section("data", "Data and split", None, missing.get("train log", ""))
    cohorts = train_log.cohorts.model_dump()
    rows = []
    for name in SLICES:
        part = preds[preds["slice"] == name] if preds is not None else None
        rows.append(
            {
                "slice": name,
                "cohorts (observation dates)": ", ".join(str(d) for d in cohorts[name]),
                "rows": int(train_log.slices.get(name, 0)),
                "defaults": int(part[LABEL].sum()) if part is not None else None,
                "default rate": float(part[LABEL].mean()) if part is not None else None,
            }
        )
    n_dates = len({d for name in SLICES for d in cohorts[name]})
    label = p.data.label
    in_time = cohorts.get("method") == "in_time"
    how = (
        "In-time split (one snapshot, or too few rows per period): people drawn at random, "
        "stratified by label, a person's rows kept together. The test is in-time evidence, "
        "not out-of-time."
        if in_time
        else "Out-of-time split by observation period: the oldest train, then validation "
        "(early stopping), calibration, and the newest periods are the untouched test."
    )
    blocks = [
        rp.text(
            f"Input data: {p.data.input_dir}"
            + (
                " (the synthetic behaviour world)."
                if paths.input_dir == paths.simulated_dir
                else "."
            )
            + f" Label: {label.column} (default within {label.horizon_months} months). {how}"
        ),
        rp.table(pd.DataFrame(rows)),
    ]
    if n_dates < 2 and not in_time:
        blocks.append(
            rp.text("One observation date only: the validation is in time, not out of time.")
        )
    return rp.section("data", "Data and split", blocks)


def _performance_section(p, preds, metrics, missing) -> dict:
    if preds is None:
        return rp.section("performance", "Performance", None, missing.get("predictions", ""))
    perf = rp.performance_table(
        preds,
        LABEL,
        SLICES,
        {"model": "pd", "WoE baseline": "pd_baseline"},
        n_bins=p.calibrate.ece_bins,
        confidence=p.gate.confidence,
        seed=p.base.seed,
    )
    view = pd.DataFrame(
        {
            "slice": perf["slice"],
            "model": perf["model"],
            "people": perf["people"].astype(int),
            "default rate": perf["default_rate"],
            "AUC [95% CI]": [_ci(r, "auc") for r in perf.to_dict("records")],
            "Gini [95% CI]": [_ci(r, "gini") for r in perf.to_dict("records")],
            "KS [95% CI]": [_ci(r, "ks") for r in perf.to_dict("records")],
            "Brier [95% CI]": [_ci(r, "brier") for r in perf.to_dict("records")],
            "ECE [95% CI]": [_ci(r, "ece") for r in perf.to_dict("records")],
        }
    )
    blocks = [
        rp.text(
            "AUC intervals: DeLong; Gini = 2 AUC - 1; KS, Brier and ECE: percentile bootstrap "
            f"(200 resamples, seed {p.base.seed}). The baseline is a WoE logistic scorecard on "
            "the same scored features, calibrated on the same calibration slice."
        ),
        rp.table(view),
    ]
    if metrics is not None and metrics.oracle_auc is not None:
        blocks.append(
            rp.text(f"Oracle AUC (the simulator's true PDs, test cohort): {metrics.oracle_auc:.4f}")
        )
    return rp.section("performance", "Performance", blocks)


def _ci(row: dict, key: str) -> str:
    if key not in row or row[key] is None or not math.isfinite(row[key]):
        return rp.NOT_AVAILABLE
    return f"{row[key]:.4f} [{row[f'{key}_lo']:.4f}, {row[f'{key}_hi']:.4f}]"


def _score_odds_section(p, scale, preds, cohorts, pngs, missing) -> dict:
    test = _slice(preds, cohorts, "test")
    if test is None:
        why = missing.get("predictions") or missing.get("train log", "")
        return rp.section("score-odds", "Score to odds", None, why)
    score = scale.score(test["pd"].to_numpy())
    tab = rp.score_odds_table(score, test[LABEL], scale.offset, scale.factor)
    fit = rp.score_odds_fit(tab, p.score.pdo)
    pngs["score_odds.png"] = rp.figure_png(rp.plot_score_odds(tab, fit))
    shown = tab.astype({"from": int, "to": int}).rename(
        columns={
            "mean_score": "mean score",
            "observed_log_odds": "observed ln(odds good)",
            "stated_log_odds": "stated ln(odds good)",
            "log_odds_se": "std. error",
        }
    )
    return rp.section(
        "score-odds",
        "Score to odds",
        [
            rp.text(
                f"The scale states {p.score.pdo:g} points to double the odds of being good "
                f"(score = {scale.offset:.1f} + {scale.factor:.2f} ln(odds good)). Observed on "
                f"the test cohort, a weighted line through the buckets gives "
                f"{rp.fmt(fit['implied_pdo'], 1)} points per doubling "
                f"(slope {rp.fmt(fit['slope'], 5)} per point, {fit['buckets']} buckets)."
            ),
            rp.image(pngs["score_odds.png"], "observed log-odds per score bucket"),
            rp.table(shown, 3),
        ],
    )


def _calibration_section(p, preds, cohorts, metrics, pngs, missing) -> dict:
    test = _slice(preds, cohorts, "test")
    if test is None:
        why = missing.get("predictions") or missing.get("train log", "")
        return rp.section("calibration", "Calibration", None, why)
    tab = rp.calibration_deciles(test[LABEL], test["pd"], p.calibrate.ece_bins)
    pngs["calibration.png"] = rp.figure_png(rp.plot_calibration(tab))
    inside = int(tab["inside"].sum())
    blocks = [
        rp.text(
            f"Observed default rate per PD decile (Wilson 95% interval) against the mean PD: "
            f"the mean PD lies inside the interval in {inside} of {len(tab)} deciles."
            + (
                f" ECE {metrics.ece:.4f} (uncalibrated {metrics.uncalibrated.ece:.4f}); "
                f"method {metrics.calibration_method}."
                if metrics is not None
                else ""
            )
        ),
        rp.image(pngs["calibration.png"], "calibration by decile"),
        rp.table(
            tab.rename(
                columns={
                    "mean_pd": "mean PD",
                    "observed_rate": "observed rate",
                    "rate_lo": "95% low",
                    "rate_hi": "95% high",
                    "inside": "PD inside",
                }
            ),
            4,
        ),
    ]
    return rp.section("calibration", "Calibration", blocks)


def _stability_section(scale, preds, cohorts, table, model, pngs, missing) -> dict:
    train, test = _slice(preds, cohorts, "train"), _slice(preds, cohorts, "test")
    if train is None or test is None:
        why = missing.get("predictions") or missing.get("train log", "")
        return rp.section("stability", "Stability (PSI / CSI)", None, why)
    s_train, s_test = scale.score(train["pd"].to_numpy()), scale.score(test["pd"].to_numpy())
    score_psi = psi(s_train, s_test)
    pd_psi = psi(train["pd"].to_numpy(), test["pd"].to_numpy())
    base_psi = psi(train["pd_baseline"].to_numpy(), test["pd_baseline"].to_numpy())
    rows = pd.DataFrame(
        [
            {"what": "model score (350-950)", "computed on": "score", "PSI": score_psi},
            {"what": "model PD", "computed on": "PD", "PSI": pd_psi},
            {"what": "WoE baseline PD", "computed on": "PD", "PSI": base_psi},
        ]
    ).assign(status=lambda d: d["PSI"].map(rp.psi_status))
    blocks = [
        rp.text("Train vs test cohort, deciles of the training distribution."),
        rp.table(rows),
    ]
    if table is None or model is None:
        why = missing.get("features") or missing.get("bundle", "")
        blocks.append(rp.text(f"Per-characteristic CSI: {rp.NOT_AVAILABLE} ({why})."))
        return rp.section("stability", "Stability (PSI / CSI)", blocks)
    feats = [n for n in model.feature_names if model.spec(n).scored]
    ftrain = select_slice(table, cohorts, "train")
    ftest = select_slice(table, cohorts, "test")
    csi = rp.csi_table(ftrain, ftest, feats)
    pngs["csi.png"] = rp.figure_png(rp.plot_csi(csi))
    pngs["csi.csv"] = csi.to_csv(index=False).encode()
    counts = csi["status"].value_counts()
    blocks += [
        rp.heading("Characteristic stability (CSI)"),
        rp.text(
            f"{len(csi)} scored characteristics: {counts.get('stable', 0)} stable, "
            f"{counts.get('watch', 0)} to watch, {counts.get('act', 0)} to act on "
            "(missing values are a bin of their own; all rows in csi.csv)."
        ),
        rp.image(pngs["csi.png"], "CSI per characteristic"),
        rp.table(csi.head(N_CSI_SHOWN)),
    ]
    return rp.section("stability", "Stability (PSI / CSI)", blocks)


def _characteristics_section(table, cohorts, preds, model, missing) -> dict:
    title = "Characteristic analysis"
    if table is None or model is None or preds is None or cohorts is None:
        why = next(
            (
                missing[k]
                for k in ("features", "bundle", "predictions", "train log")
                if k in missing
            ),
            "",
        )
        return rp.section("characteristics", title, None, why)
    gain = model.booster.feature_importance(importance_type="gain")
    ranked = [
        model.feature_names[i]
        for i in np.argsort(-gain, kind="stable")
        if gain[i] > 0 and model.spec(model.feature_names[i]).scored
    ][:N_CHARACTERISTICS]
    ftrain = select_slice(table, cohorts, "train")
    ftest = select_slice(table, cohorts, "test")
    test_preds = select_slice(preds, cohorts, "test")
    joined = ftest[["person_id", "observation_date"]].merge(
        test_preds[["person_id", "observation_date", "pd"]],
        on=["person_id", "observation_date"],
        how="left",
    )
    blocks = [
        rp.text(
            f"The {len(ranked)} most important characteristics (LightGBM gain): per bin of the "
            "training values, the share of train and test people, and on test the observed "
            "default rate against the mean PD."
        )
    ]
    for f in ranked:
        spec = model.spec(f)
        blocks.append(rp.heading(f"{f}: {spec.description}"))
        blocks.append(
            rp.table(
                rp.characteristic_table(
                    f, ftrain, ftest, ftest[LABEL], joined["pd"].to_numpy()
                ).drop(columns="feature")
            )
        )
    return rp.section("characteristics", title, blocks)


def _fairness_section(fairness: FairnessReport | None, missing) -> dict:
    if fairness is None:
        return rp.section("fairness", "Fairness", None, missing.get("fairness", ""))
    blocks = [
        rp.text(f"Test cohort, {fairness.people:,} people: {fairness.verdict}."),
        rp.bullets(fairness.breaches or ["no breach"]),
    ]
    cols = ["group", "people", "approval_rate", "default_rate", "mean_pd", "calibration_gap"]
    for attribute, body in fairness.attributes.items():
        groups = pd.DataFrame(body.get("groups", []))
        blocks.append(rp.heading(attribute))
        blocks.append(rp.table(groups[[c for c in [*cols, "in_gaps"] if c in groups]]))
        gaps = {k: v for k, v in body.get("gaps", {}).items() if not isinstance(v, dict)}
        if gaps:
            blocks.append(
                rp.table(
                    pd.DataFrame(
                        {
                            "gap between groups": [k.replace("_", " ") for k in gaps],
                            "value": list(gaps.values()),
                        }
                    )
                )
            )
    return rp.section("fairness", "Fairness", blocks)


def _selection_bias_section(metrics: MetricsReport | None, missing) -> dict:
    """The model through the door on a world with a historical policy (issue #18)."""
    title = "Selection bias (through the door)"
    block = getattr(metrics, "reject_inference", None) if metrics is not None else None
    if block is None:
        why = missing.get("metrics") or (
            "no historical acceptance policy in the data (no declined applicants), or no "
            "true PD to measure against (your own data)"
        )
        return rp.section("selection-bias", title, None, why)
    ttd = block["through_the_door"]
    blocks = [
        rp.text(
            f"Reject inference: {block['method']}. Every applicant of the test cohort, "
            "previously declined ones included, against the simulator's true PD: AUC "
            "against outcomes drawn from the true PD, ECE vs the true PD, PD bias "
            "(mean PD - mean true PD; negative = risk under-stated) and the expected loss "
            "of the limits granted (true PD x LGD x limit, CNY per applicant)."
        ),
        rp.table(rp.selection_bias_table(ttd)),
    ]
    grey = ttd.get("grey_zone")
    if grey:
        lo, hi = grey["default_rate_ci"]
        blocks.append(
            rp.text(
                f"Grey zone (approved at random near the old cut-off, {grey['n']:,} people): "
                f"observed default rate {grey['default_rate']:.4f} (95% CI {lo:.4f}-{hi:.4f})"
                f" vs mean PD {grey['mean_pd']:.4f}."
            )
        )
    return rp.section("selection-bias", title, blocks)


def _robustness_section(robust: RobustnessReport | None, missing) -> dict:
    title = "Gaming and score stability"
    if robust is None:
        return rp.section("robustness", title, None, missing.get("robustness", ""))
    rows = []
    for name, s in robust.gaming.items():
        d = s.model_dump()
        lg = d.get("limit_gain", {})
        rows.append(
            {
                "scenario": name,
                "status": d.get("status", "pass" if s.within_bound else "breach"),
                "applied to": f"{d.get('n', 0):,} of {d.get('n_targets', robust.sample_people):,}",
                "moved": d.get("share_moved"),
                "mean gain": s.mean,
                f"p{100 * s.bounded_quantile:g} gain": s.bounded_gain,
                "max gain": s.max,
                f"p{100 * s.bounded_quantile:g} limit gain (CNY)": lg.get("bounded_gain"),
                "max limit gain (CNY)": lg.get("max"),
                f"p{100 * s.bounded_quantile:g} limit gain beyond allowed (CNY)": lg.get(
                    "bounded_excess"
                ),
            }
        )
    b = robust.bounds
    st = robust.stability.get("stable", {})
    sliced = (robust.model_extra or {}).get("slice", "test")
    whose = "development-slice" if sliced == "development" else "test-cohort"
    blocks = [
        rp.text(
            f"Cheap activity added to {robust.sample_people:,} {whose} people. Bounds: "
            f"p{100 * b.get('gain_quantile', 0.99):g} of score gains <= "
            f"{b.get('max_gain_points', math.nan):g} points in every scenario, and each "
            "person's limit gain at most what that many points would give them (an income "
            "claim: up to the limit of the policy's cap on unverified income, "
            f"{b.get('max_unverified_capacity', math.nan):,.0f} CNY a month); a scenario "
            "that changes no model input is 'not exercised', not a pass."
        ),
        rp.table(pd.DataFrame(rows), 2),
        rp.heading("Breaches"),
        rp.bullets([part for b in robust.breaches for part in b.split("; ")] or ["none"]),
        rp.heading("Month-over-month stability"),
        rp.text(
            f"People with no material change of behaviour ({rp.fmt(st.get('share_of_people'), 2)}"
            f" of the sample): p90 |score change| {rp.fmt(st.get('p90'), 1)} points over "
            f"{robust.stability.get('lag_days', '?')} days (bound "
            f"{b.get('max_p90_change_points', math.nan):g})."
        ),
    ]
    return rp.section("robustness", title, blocks)


def _gate_section(gate: GateReport | None, missing) -> dict:
    if gate is None:
        return rp.section("gate", "Promotion gate", None, missing.get("gate", ""))
    blocks = [
        rp.text(
            f"{gate.model_name} v{gate.version} (MLflow run {gate.run_id}): "
            + ("PROMOTED to champion." if gate.promote else "not promoted.")
        ),
        rp.bullets(gate.reasons),
    ]
    if gate.comparison:
        c = gate.comparison
        blocks.append(
            rp.table(
                pd.DataFrame(
                    [
                        {
                            "challenger AUC": c.get("auc_challenger"),
                            "champion AUC": c.get("auc_champion"),
                            "gain": c.get("difference"),
                            "CI low": c.get("ci_low"),
                            "CI high": c.get("ci_high"),
                            "confidence": c.get("confidence"),
                            "people": c.get("n"),
                            "method": c.get("method"),
                        }
                    ]
                )
            )
        )
    else:
        blocks.append(rp.text("No paired comparison with a champion (see the reasons)."))
    return rp.section("gate", "Promotion gate", blocks)


def _model_card(p, paths, train_log, metrics, fairness, robust, gate) -> dict:
    limits = []
    if paths.input_dir == paths.simulated_dir:
        limits.append(
            "Trained and validated on the synthetic behaviour world: the numbers show the "
            "method works, not how it performs on a real population."
        )
    if train_log is not None and len(train_log.cohorts.test) == 1:
        limits.append("The test is one cohort (one observation date): one point in time.")
    if metrics is not None and not metrics.band_default_rate_monotone:
        limits.append("The default rate does not fall monotonically over the score bands.")
    if fairness is not None and fairness.breaches:
        limits.append(f"{len(fairness.breaches)} fairness threshold(s) breached (see Fairness).")
    if robust is not None and robust.breaches:
        limits.append(f"{len(robust.breaches)} gaming or stability bound(s) breached (see Gaming).")
    if gate is not None and not gate.promote:
        limits.append("The gate refused promotion: this model is a challenger only.")
    for name, why in (("metrics", metrics), ("fairness", fairness), ("robustness", robust)):
        if why is None:
            limits.append(f"The {name} report was not available: that part is not checkable.")
    limits.append(
        "Thin-file people (little platform history) get scores driven by few facts; their "
        "scores are less certain than the bands suggest."
    )
    blocks = [
        rp.heading("Intended use"),
        rp.text(
            "A behaviour-based consumer credit score (350-950, "
            f"{p.score.pdo:g} points to double the odds) for platform users, the credit limit "
            f"({p.decision.limit.min_limit:,.0f}-{p.decision.limit.max_limit:,.0f} CNY) and "
            "benefit tiers that follow from it, with adverse-action reasons. Decisions are "
            "for consumer credit on the platform and are recorded with the model version."
        ),
        rp.heading("Not intended for"),
        rp.bullets(
            [
                "Employment, housing, insurance or any decision outside platform credit.",
                "People unlike the training cohorts (other countries, business credit).",
                "Protected attributes are never inputs; they are used only to measure fairness.",
            ]
        ),
        rp.heading("Limitations"),
        rp.bullets(limits),
    ]
    return rp.section("model-card", "Model card: intended use and limitations", blocks)


def _kpis(preds, cohorts, metrics, gate) -> list[dict[str, str]]:
    out = []
    if metrics is not None:
        out += [
            {"label": "test AUC", "value": f"{metrics.auc:.3f}"},
            {"label": "Gini", "value": f"{metrics.gini:.3f}"},
            {"label": "KS", "value": f"{metrics.ks:.3f}"},
            {"label": "ECE", "value": f"{metrics.ece:.4f}"},
            {"label": "score PSI", "value": f"{metrics.psi:.3f}"},
        ]
    test = _slice(preds, cohorts, "test")
    if test is not None:
        out.append({"label": "test people", "value": f"{len(test):,}"})
    out.append(
        {
            "label": "gate",
            "value": rp.NOT_AVAILABLE
            if gate is None
            else ("promoted" if gate.promote else "refused"),
        }
    )
    return out


def _verdicts(p, metrics, fairness, robust, gate) -> list[dict[str, str]]:
    def v(ok: bool | None, text: str) -> dict[str, str]:
        if ok is None:
            return {"status": "not checkable", "cls": "warn", "text": text}
        return {"status": "pass" if ok else "fail", "cls": "ok" if ok else "bad", "text": text}

    out = []
    if metrics is None:
        out.append(v(None, "calibration, stability, band order: no metrics report"))
    else:
        out.append(v(metrics.ece <= p.gate.max_ece, f"calibration: ECE {metrics.ece:.4f}"))
        out.append(v(metrics.psi <= p.gate.max_psi, f"score stability: PSI {metrics.psi:.3f}"))
        out.append(v(metrics.band_default_rate_monotone, "default rate falls over the bands"))
    out.append(
        v(None, "fairness: no fairness report")
        if fairness is None
        else v(not fairness.breaches, f"fairness: {fairness.verdict}")
    )
    out.append(
        v(None, "gaming and stability: no robustness report")
        if robust is None
        else v(robust.summary.passed, f"gaming and stability: {len(robust.breaches)} breach(es)")
    )
    out.append(
        v(None, "promotion gate: register has not run")
        if gate is None
        else v(gate.promote, "promotion gate: " + ("promoted" if gate.promote else "refused"))
    )
    return out
