"""Benchmark and summary of advice on the newest cohort of the default world.

Needs `make run` (or `dvc repro evaluate`) first: reads data/features/features.parquet and
the deployed bundle models/bundle. Times :func:`credit_scoring.decision.advice.advise`
for one person (median and p99 over repeats) and for the whole newest cohort in one call,
and reports how often each action is advised, its median and largest gain, and how many
people would cross into a better band by following the advice.

Usage::

    .venv/bin/python benchmarks/bench_advice.py

Writes ``benchmarks/results/advice.json`` and prints it.
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

RESULTS = Path(__file__).resolve().parent / "results" / "advice.json"


def main() -> None:
    from credit_scoring.decision.advice import ACTIONS, advise
    from credit_scoring.decision.bundle import CreditModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="data/features/features.parquet")
    ap.add_argument("--model", default="models/bundle")
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()

    model = CreditModel.load(args.model)
    table = pd.read_parquet(args.features)
    newest = table[table["observation_date"] == table["observation_date"].max()]
    newest = newest.reset_index(drop=True)

    one = newest.iloc[[0]]
    advise(model, one)  # warm-up
    times = []
    for i in range(args.repeats):
        row = newest.iloc[[i % len(newest)]]
        start = time.perf_counter()
        advise(model, row)
        times.append(time.perf_counter() - start)

    start = time.perf_counter()
    results = advise(model, newest)
    cohort_s = time.perf_counter() - start

    by_action: dict[str, list[int]] = {a.id: [] for a in ACTIONS}
    for r in results:
        for it in r.items:
            by_action[it.action].append(it.outcome.gain)
    best = np.array([r.items[0].outcome.gain if r.items else 0 for r in results])
    combined = np.array(
        [
            r.combined.gain if r.combined else (r.items[0].outcome.gain if r.items else 0)
            for r in results
        ]
    )
    better_band = sum(
        any(it.outcome.band for it in r.items) or bool(r.combined and r.combined.band)
        for r in results
    )
    out = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine()},
        "people": len(newest),
        "one_person_ms": {
            "median": 1000 * float(np.median(times)),
            "p99": 1000 * float(np.quantile(times, 0.99)),
        },
        "cohort_seconds": cohort_s,
        "people_with_advice": int(sum(bool(r.items) for r in results)),
        "median_best_gain": float(np.median(best)),
        "median_gain_all_advised_together": float(np.median(combined)),
        "people_reaching_a_better_band": int(better_band),
        "actions": {
            a: {
                "advised_to": len(g),
                "median_gain": float(np.median(g)) if g else None,
                "max_gain": int(max(g)) if g else None,
            }
            for a, g in by_action.items()
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
