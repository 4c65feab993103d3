"""The robustness stage: manipulation resistance and score stability on real people of the
development slice (``robustness.slice``: validation + calibration; never the final test
cohort, so gaming fixes chosen on these numbers are not chosen on the test).

Adds cheap activity (every scenario of :data:`credit_scoring.audit.robustness.SCENARIOS`)
to a sample of those people in the days before their observation date,
re-scores them with the deployed model and bounds the score and limit gains (a scenario
that moves nobody is reported as not exercised, a breach); and compares each person's
score with their score a month earlier. Writes ``reports/robustness.json`` and plots under
``reports/robustness/``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from credit_scoring.artefacts import Paths, TrainLog, read_json
from credit_scoring.audit import robustness as rb
from credit_scoring.config import Params
from credit_scoring.data.catalogue import is_byof
from credit_scoring.data.validated import read_validated
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.features.compute import person_data
from credit_scoring.io import write_atomic, write_json
from credit_scoring.modelling.split import select_slice
from credit_scoring.schemas import ROW_KEY
from credit_scoring.stages import Progress


def run(params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Run the audit and write its report; returns the report (``breaches`` lists every
    broken bound: the CLI fails on them when ``robustness.fail_on_breach``)."""
    p, r = params, params.robustness
    paths = Paths.from_params(p)
    steps, done = len(rb.SCENARIOS) + 2, 0

    def step(_: object = None) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    if is_byof(paths.validated_dir):
        return _not_checkable(params, paths)
    model = CreditModel.load(paths.bundle)
    train_log = read_json(paths.train_log, TrainLog, "train")
    table = pd.read_parquet(paths.features)
    # people of the development slice by default, never the final test cohort (#13)
    people = select_slice(table, train_log.cohorts.model_dump(), r.slice)
    scored = people[list(ROW_KEY)].assign(
        score=model.decide(people, with_reasons=False)["score"].to_numpy()
    )
    targets, pool = rb.choose_people(scored, r.sample_people, r.good_contacts, p.base.seed)
    data = read_validated(paths.validated_dir)
    sliced = person_data(data, list(targets["person_id"]) + list(pool))
    del data
    step()
    ctx = rb.GamingContext(r.window_days, pool, r.good_contacts)
    gains = rb.gaming_gains(
        model,
        sliced,
        targets,
        ctx,
        p.base.seed,
        p.features.windows,
        progress=step,
        points=r.max_gain_points,
    )
    summary = rb.gains_summary(gains, r.max_gain_points, r.gain_quantile)
    changes = rb.score_changes(model, sliced, targets, r.stability.lag_days, p.features.windows)
    stability = rb.stability_summary(changes)
    step()
    breaches = []
    for check in (
        lambda: rb.check_gains(summary, r.max_gain_points),
        lambda: rb.check_exercised(summary),
        lambda: rb.check_stability(stability, r.stability.max_p90_change_points),
    ):
        try:
            check()
        except rb.RobustnessError as err:
            breaches.append(str(err))
    report = {
        "slice": r.slice,
        "sample_people": len(targets),
        "good_contact_pool": len(pool),
        "bounds": {
            "max_gain_points": r.max_gain_points,
            "gain_quantile": r.gain_quantile,
            "max_unverified_capacity": p.decision.limit.max_unverified_capacity,
            "max_p90_change_points": r.stability.max_p90_change_points,
        },
        "gaming": summary,
        "stability": {"lag_days": r.stability.lag_days, **stability},
        "summary": {
            "max_bounded_gain": max(s["bounded_gain"] for s in summary.values()),
            "worst_scenario": max(summary, key=lambda k: summary[k]["bounded_gain"]),
            "max_bounded_limit_gain": max(
                s["limit_gain"]["bounded_gain"] for s in summary.values()
            ),
            "max_bounded_limit_excess": max(
                s["limit_gain"]["bounded_excess"] for s in summary.values()
            ),
            "not_exercised": [k for k, s in summary.items() if s["status"] == rb.NOT_EXERCISED],
            "stable_p90_change": stability["stable"]["p90"],
            "passed": not breaches,
        },
        "breaches": breaches,
    }
    write_json(report, paths.robustness)
    out = paths.robustness_dir
    write_atomic(out / "gains.csv", lambda tmp: gains.to_csv(tmp, index=False))
    write_atomic(out / "stability.csv", lambda tmp: changes.to_csv(tmp, index=False))
    figures = {
        "gaming_gains.png": rb.plot_gains(gains, r.max_gain_points),
        "stability.png": rb.plot_stability(
            changes, r.stability.lag_days, r.stability.max_p90_change_points
        ),
    }
    for fname, fig in figures.items():
        write_atomic(out / fname, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110))
    return report


def _not_checkable(params: Params, paths: Paths) -> dict[str, Any]:
    """Features brought by the lender have no events behind them: there is no activity to
    add and no earlier history to re-score, so the audit says so instead of passing."""
    r = params.robustness
    why = (
        "not checkable: the features were brought by the lender (data.mode: features), "
        "there are no events to add cheap activity to or to re-score a month earlier"
    )
    report = {
        "not_checkable": why,
        "sample_people": 0,
        "good_contact_pool": 0,
        "bounds": {
            "max_gain_points": r.max_gain_points,
            "gain_quantile": r.gain_quantile,
            "max_p90_change_points": r.stability.max_p90_change_points,
        },
        "gaming": {},
        "stability": {"lag_days": r.stability.lag_days},
        "summary": {
            "max_bounded_gain": 0.0,
            "worst_scenario": "not checkable",
            "stable_p90_change": 0.0,
            "passed": False,
            "checked": False,
        },
        "breaches": [],
    }
    write_json(report, paths.robustness)
    write_atomic(paths.robustness_dir / "README.txt", lambda tmp: tmp.write_text(why + "\n"))
    return report
