"""Selection bias and reject inference on a world with a 70% historical approval policy.

Per seed: simulate a world (``simulate.acceptance`` on: an older model, logit of the true
PD plus N(0, 1) error, approves 70%, 10% of applicants around its cut-off decided by a
coin), compute the features, split out of time as the pipeline does (``params.yaml``
split), then fit one model per reject-inference method on the same split:

- ``none`` (approved applicants only), ``reweight``, ``augment``, ``parcel``;
- ``full_information``: the same world with every outcome known (the policy draws from its
  own random stream, so it is the same people with the same labels): the ceiling no lender
  has, to show how much of the gap each method closes.

Each model is evaluated on every applicant of the test cohort against the simulator's true
PD (``audit.selection_bias.evaluate_through_door``): AUC against outcomes drawn from the
true PD, ECE vs the true PD, mean PD bias and the expected loss (true PD x LGD x limit, CNY
per applicant) of the limits the model grants, for everyone and for the previously declined;
plus the usual approved-only test AUC (observed labels). Differences method - none are
paired by seed: mean and a t 95% interval over the seeds.

Usage::

    .venv/bin/python benchmarks/bench_reject_inference.py [--people 10000] [--seeds 4]

Seeds are independent: ``--first-seed K --seeds 1 --out part_K.json`` runs one, and
``--combine part_*.json`` summarises several parts into one result (how the committed
result was made, one process per seed on a shared machine).

Writes ``benchmarks/results/reject_inference.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from credit_scoring.audit import selection_bias as sb
from credit_scoring.config import AcceptanceParams, BaseParams, Params
from credit_scoring.data.simulate import simulate_world
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.features.compute import compute_features
from credit_scoring.features.registry import feature_names
from credit_scoring.modelling import reject_inference as ri
from credit_scoring.modelling.metrics import auc
from credit_scoring.modelling.split import make_split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.schemas import LABEL, ROW_KEY

RESULTS = Path(__file__).resolve().parent / "results" / "reject_inference.json"
METHODS = ("none", "reweight", "augment", "parcel")
KEYS = list(ROW_KEY)


def world(
    people: int, seed: int, approval_rate: float
) -> tuple[pd.DataFrame, pd.DataFrame, Params]:
    """Feature table (label hidden for the declined, decision beside it), truth, params."""
    params = Params()
    policy = AcceptanceParams(enabled=True, approval_rate=approval_rate)
    sim = params.simulate.model_copy(
        update={"n_users": people, "chunk_size": max(people, 1000), "acceptance": policy}
    )
    data, truth = simulate_world(sim, BaseParams(seed=seed))
    table = compute_features(data).merge(data.outcomes, on=KEYS)
    return table, truth, params


def run_seed(people: int, seed: int, approval_rate: float) -> dict:
    table, truth, params = world(people, seed, approval_rate)
    split = make_split(table, params.split, seed)
    declined = ri.declined_rows(table, table[[*KEYS, "decision"]])
    names = feature_names(params.features.windows)

    def new_model() -> CreditModel:
        return CreditModel(
            names,
            score_params=params.score,
            decision_params=params.decision,
            train_params=params.train,
            calibrate_params=params.calibrate,
            seed=seed,
        )

    def fit(m: CreditModel, s) -> CreditModel:
        return m.fit(s, local_trainer(num_threads=2))

    applicants, truth_test = sb.period_applicants(table, truth, split)
    lgd = params.decision.limit.lgd
    out: dict = {"seed": seed, "declined_rows": len(declined), "methods": {}}
    approved_only = None
    for method in METHODS:
        start = time.perf_counter()
        model, report = sb.fit_with_method(
            new_model, split, declined, method, seed, fit, approved_only
        )
        if method == "none":
            approved_only = model
        ttd = sb.evaluate_through_door(model, applicants, truth_test, lgd)
        y = split.test[LABEL].to_numpy(dtype=float)
        ttd["approved_only_test_auc"] = auc(y, model.predict_pd(split.test))
        ttd["fit_seconds"] = time.perf_counter() - start
        ttd["report"] = {k: v for k, v in report.items() if k != "parcel_band_default_rates"}
        out["methods"][method] = ttd
    # the ceiling: every outcome known (same world; the policy's stream is separate)
    full = table.copy()
    full = full.drop(columns=[LABEL]).merge(
        _labels_without_policy(people, seed), on=KEYS, how="left"
    )
    full_split = make_split(full, params.split, seed)
    model = fit(new_model(), full_split)
    ttd = sb.evaluate_through_door(model, applicants, truth_test, lgd)
    ttd["approved_only_test_auc"] = auc(
        split.test[LABEL].to_numpy(dtype=float), model.predict_pd(split.test)
    )
    out["methods"]["full_information"] = ttd
    return out


def _labels_without_policy(people: int, seed: int) -> pd.DataFrame:
    params = Params()
    sim = params.simulate.model_copy(update={"n_users": people, "chunk_size": max(people, 1000)})
    data, _ = simulate_world(sim, BaseParams(seed=seed))
    return data.outcomes[[*KEYS, LABEL]]


ROWS = (
    ("all", "auc_vs_true_pd"),
    ("previously_declined", "auc_vs_true_pd"),
    ("previously_declined", "ece_vs_true_pd"),
    ("previously_declined", "pd_bias"),
    ("previously_declined", "expected_loss_true"),
    ("previously_declined", "approval_rate"),
    ("all", "ece_vs_true_pd"),
    ("all", "expected_loss_true"),
)


def _ci(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    n = len(a)
    half = float(stats.t.ppf(0.975, n - 1) * a.std(ddof=1) / np.sqrt(n)) if n > 1 else None
    mean = float(a.mean())
    return {
        "mean": mean,
        "ci95": None if half is None else [mean - half, mean + half],
        "values": [float(v) for v in a],
    }


def summarise(runs: list[dict]) -> dict:
    methods = list(runs[0]["methods"])
    summary: dict = {}
    for method in methods:
        block: dict = {}
        for group, metric in ROWS:
            vals = [r["methods"][method][group][metric] for r in runs]
            base = [r["methods"]["none"][group][metric] for r in runs]
            block[f"{group}.{metric}"] = _ci(vals)
            if method != "none":
                block[f"{group}.{metric}.minus_none"] = _ci(
                    [v - b for v, b in zip(vals, base, strict=True)]
                )
        vals = [r["methods"][method]["approved_only_test_auc"] for r in runs]
        block["approved_only_test_auc"] = _ci(vals)
        summary[method] = block
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--combine", type=Path, nargs="*", help="summarise these result files")
    ap.add_argument("--approval-rate", type=float, default=0.7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    start = time.perf_counter()
    runs = []
    if args.combine:
        parts = [json.loads(p.read_text()) for p in args.combine]
        runs = sorted((r for part in parts for r in part["runs"]), key=lambda r: r["seed"])
        args.people = parts[0]["people"]
        args.approval_rate = parts[0]["approval_rate"]
    for seed in range(args.first_seed, args.first_seed + args.seeds) if not args.combine else ():
        runs.append(run_seed(args.people, seed, args.approval_rate))
        print(f"seed {seed} done, {time.perf_counter() - start:.0f} s", flush=True)
    result = {
        "what": "reject inference on a simulated world with a historical approval policy",
        "people": args.people,
        "seeds": [r["seed"] for r in runs],
        "approval_rate": args.approval_rate,
        "policy": AcceptanceParams(enabled=True, approval_rate=args.approval_rate).model_dump(),
        "evaluated_on": "every applicant of the test cohort (out-of-time), vs the true PD",
        "summary": summarise(runs),
        "runs": runs,
        "seconds": sum(m.get("fit_seconds", 0.0) for r in runs for m in r["methods"].values()),
        "seconds_note": "model fitting only, summed over seeds (a loaded, shared machine)",
        "machine": f"{platform.machine()} {platform.python_version()}, shared 2-core, loaded",
        "date": dt.date.today().isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result["summary"]))


def table(summary: dict) -> str:
    """The README table: mean over seeds, [95% CI] of the paired difference to none."""
    cols = [
        ("all.auc_vs_true_pd", "AUC all (true PD)", 3),
        ("previously_declined.auc_vs_true_pd", "AUC declined", 3),
        ("previously_declined.ece_vs_true_pd", "ECE declined", 4),
        ("previously_declined.pd_bias", "PD bias declined", 4),
        ("previously_declined.approval_rate", "approved now, declined", 3),
        ("previously_declined.expected_loss_true", "EL/declined applicant, CNY", 1),
        ("approved_only_test_auc", "AUC approved test", 3),
    ]
    head = "| method | " + " | ".join(c[1] for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for method, block in summary.items():
        cells = []
        for key, _, digits in cols:
            cell = f"{block[key]['mean']:.{digits}f}"
            diff = block.get(f"{key}.minus_none")
            if diff and diff["ci95"]:
                lo, hi = diff["ci95"]
                cell += f" ({diff['mean']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}])"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
