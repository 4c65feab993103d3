"""Benchmark of in-process decisions: people per second, with and without reasons.

Trains a model on a simulated world (or loads a bundle with ``--model``), then times
``CreditModel.decide_matrix`` for one person and for a batch of 10,000, with and without
reasons (reasons need LightGBM's per-feature contributions, about 50x a prediction).
Reports the median and p99 over repeats. Targets (issue 4): one person's full decision
with reasons <= 5 ms; 10,000 without reasons <= 0.5 s.

Usage::

    .venv/bin/python benchmarks/bench_decisions.py            # trains on 30,000 people
    .venv/bin/python benchmarks/bench_decisions.py --model models/bundle

Writes ``benchmarks/results/decisions.json`` and prints a small table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "decisions.json"


def _train_model(n_users: int):
    """A bundle learnt as the train stage does (``CreditModel(...).fit(split)``) on a
    simulated world of ``n_users``, and that world's feature table."""
    from credit_scoring.config import BaseParams, CalibrateParams, Params, SimulateParams
    from credit_scoring.data.simulate import simulate_world
    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.features.compute import compute_features
    from credit_scoring.features.registry import feature_names
    from credit_scoring.modelling.split import out_of_time_split

    params = Params()
    data, _ = simulate_world(SimulateParams(n_users=n_users), BaseParams())
    table = compute_features(data).merge(
        data.outcomes[["person_id", "observation_date", "default_12m"]],
        on=["person_id", "observation_date"],
    )
    split = out_of_time_split(table, params.split)
    model = CreditModel(
        feature_names(),
        train_params=params.train,
        calibrate_params=CalibrateParams(method="sigmoid", ece_bins=10),
        seed=42,
    )
    return model.fit(split), table


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    arr = np.array(times) * 1000
    return {
        "median_ms": float(np.median(arr)),
        "p99_ms": float(np.percentile(arr, 99)),
        "repeats": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a saved bundle folder (else train one)")
    ap.add_argument("--features", type=Path, default=Path("data/features/features.parquet"))
    ap.add_argument("--n-users", type=int, default=30_000)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()

    import pandas as pd

    from credit_scoring.decision.bundle import CreditModel

    if args.model:
        model = CreditModel.load(args.model)
        table = pd.read_parquet(args.features)
    else:
        model, table = _train_model(args.n_users)
    X = model.feature_matrix(table)
    rng = np.random.default_rng(0)
    batch = X[rng.choice(len(X), size=args.batch, replace=len(X) < args.batch)]
    one = X[:1]
    single_dict = dict(zip(model.feature_names, one[0].tolist(), strict=True))
    results = {
        "one person, with reasons (decide_matrix)": _time(
            lambda: model.decide_matrix(one, True), 2000
        ),
        "one person, with reasons (decide_one, from a dict)": _time(
            lambda: model.decide_one(single_dict, True), 2000
        ),
        "one person, without reasons": _time(lambda: model.decide_matrix(one, False), 2000),
        f"{args.batch:,} people, without reasons": _time(
            lambda: model.decide_matrix(batch, False), 20
        ),
        f"{args.batch:,} people, with reasons": _time(lambda: model.decide_matrix(batch, True), 5),
    }
    for name, r in results.items():
        n = args.batch if name.startswith(f"{args.batch:,}") else 1
        r["people_per_s"] = n / (r["median_ms"] / 1000)
    out = {
        "benchmark": "decisions in process",
        "command": "python benchmarks/bench_decisions.py"
        + (f" --model {args.model}" if args.model else f" --n-users {args.n_users}"),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "trees": model.booster.num_trees(),
        "features": len(model.feature_names),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'case':55s} {'median ms':>10s} {'p99 ms':>9s} {'people/s':>12s}")
    for name, r in results.items():
        print(f"{name:55s} {r['median_ms']:10.3f} {r['p99_ms']:9.3f} {r['people_per_s']:12,.0f}")


if __name__ == "__main__":
    main()
