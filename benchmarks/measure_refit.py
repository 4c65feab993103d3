"""Does refitting on every labelled cohort help on people scored later? (issue 13)

    uv run python benchmarks/measure_refit.py --users 24000 --seeds 42 7 --out \
        benchmarks/results/refit_future.json

Simulates a world with one cohort more than the default (7, two months apart), holds the
newest labelled cohort out entirely (the "future": people scored after the model is
built), splits the other six as the train stage does (3 train, 1 validation, 1
calibration, 1 test), fits the validated model with the default parameters and then the
deployed refit (:func:`credit_scoring.decision.refit.deploy`, both rounds rules). Prints
JSON: per seed, each model's AUC on the future cohort with its DeLong 95% interval, the
paired DeLong interval of refit - validated, ECE and Brier; and the validated model's
test-cohort AUC (what evaluate reports). LightGBM runs on one thread (an execution
setting; the results do not depend on it).
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import pandas as pd

from credit_scoring.audit.gate import delong_auc_ci, delong_auc_difference
from credit_scoring.config import BaseParams, Params, SimulateParams
from credit_scoring.data.simulate import simulate_world
from credit_scoring.decision import bundle as bundle_mod
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.decision.refit import deploy
from credit_scoring.features.compute import compute_features
from credit_scoring.features.registry import feature_names
from credit_scoring.modelling.metrics import brier, ece
from credit_scoring.modelling.split import make_split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.schemas import DATE, LABEL


def _auc(y, p) -> dict[str, float]:
    a, lo, hi = delong_auc_ci(y, p)
    return {"auc": round(a, 4), "ci": [round(lo, 4), round(hi, 4)]}


def one_seed(users: int, seed: int, drift: float = 0.0) -> dict:
    params = Params()
    sim = SimulateParams(n_users=users, n_cohorts=7, chunk_size=50_000, drift=drift)
    data, _ = simulate_world(sim, BaseParams(seed=seed))
    table = compute_features(data).merge(
        data.outcomes[["person_id", DATE, LABEL]], on=["person_id", DATE]
    )
    labelled = table.loc[table[LABEL].notna()]
    newest = pd.to_datetime(labelled[DATE]).max()
    is_future = pd.to_datetime(table[DATE]) == newest
    future, past = table.loc[is_future], table.loc[~is_future]
    split = make_split(past, params.split, seed)
    out: dict = {"seed": seed, "slices": split.sizes(), "future_rows": len(future)}
    out["future_defaults"] = int(future[LABEL].sum())
    bundle_mod.local_trainer = partial(local_trainer, 1)  # one thread: a loaded machine
    validated = CreditModel(
        feature_names(),
        train_params=params.train,
        calibrate_params=params.calibrate,
        seed=seed,
    ).fit(split)
    y_test = split.test[LABEL].to_numpy(int)
    out["validated_test_cohort"] = _auc(y_test, validated.predict_pd(split.test))
    y = future[LABEL].to_numpy(int)
    p_val = validated.predict_pd(future)
    out["future"] = {
        "validated": {
            **_auc(y, p_val),
            "ece": round(ece(y, p_val, 10), 4),
            "brier": round(brier(y, p_val), 5),
            "best_iteration": validated.best_iteration,
        }
    }
    for rule in ("rows_ratio", "unchanged"):
        train = params.train.model_copy(update={"refit_rounds": rule})
        start = time.perf_counter()
        deployed, record = deploy(validated, split, train)
        p_ref = deployed.predict_pd(future)
        diff = delong_auc_difference(y, p_ref, p_val)
        out["future"][f"refit_{rule}"] = {
            **_auc(y, p_ref),
            "ece": round(ece(y, p_ref, 10), 4),
            "brier": round(brier(y, p_ref), 5),
            "rounds": deployed.best_iteration,
            "gain_vs_validated": round(diff.difference, 4),
            "gain_ci": [round(diff.ci_low, 4), round(diff.ci_high, 4)],
            "p_value": round(diff.p_value, 4),
            "test_rank_correlation": round(record["test_rank_correlation"], 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=24_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--drift", type=float, default=0.0, help="simulate.drift of the newest cohort")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    result = {
        "users": args.users,
        "cohorts": 7,
        "runs": [one_seed(args.users, s, args.drift) for s in args.seeds],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
