"""Benchmark: the cost of reasons and dimension points, before/after the table TreeSHAP.

Trains a bundle as the train stage does (or loads one with ``--model``), then measures,
interleaved in the same run (the machine may be shared; ratios are what to compare):

- the score stage's cost per 1,000 people (:func:`credit_scoring.decision.batch.score_features`)
  without reasons, with reasons through LightGBM's ``pred_contrib`` (before) and with
  reasons through the look-up tables (after, :mod:`credit_scoring.decision.treeshap`);
- the contributions alone, before and after;
- one decision with reasons in process (``CreditModel.decide_one``, what the service
  calls), before and after;
- the one-off cost of building the tables when a bundle is first used;

and extrapolates 1,000,000 decisions with reasons from the per-1,000 cost (linear: the
work is per row). Also records the model's trees, leaves and depth.

Usage::

    .venv/bin/python benchmarks/bench_reasons.py                    # trains on 30,000 people
    .venv/bin/python benchmarks/bench_reasons.py --model models/bundle \\
        --features data/features/features.parquet

Writes ``benchmarks/results/reasons.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results" / "reasons.json"


@contextmanager
def _pred_contrib():
    """Today's path before the tables: every contribution from LightGBM's pred_contrib."""
    from credit_scoring.decision import treeshap

    with mock.patch.object(treeshap, "tables_for", return_value=None):
        yield


def _tree_shape(booster, num_iteration) -> dict:
    def depth(node) -> int:
        if "leaf_index" in node or "leaf_value" in node:
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))

    info = booster.dump_model(num_iteration=num_iteration)["tree_info"]
    depths = [depth(t["tree_structure"]) for t in info]
    return {
        "trees": len(info),
        "leaves_mean": float(np.mean([t["num_leaves"] for t in info])),
        "depth_mean": float(np.mean(depths)),
        "depth_max": int(max(depths)),
    }


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a saved bundle folder (else train one)")
    ap.add_argument("--features", type=Path, default=Path("data/features/features.parquet"))
    ap.add_argument("--n-users", type=int, default=30_000)
    ap.add_argument("--rows", type=int, default=20_000, help="people per batch timing")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repeats")
    ap.add_argument("--single", type=int, default=300, help="single decisions per round")
    args = ap.parse_args()

    import pandas as pd

    from credit_scoring.decision import explain, treeshap
    from credit_scoring.decision.batch import score_features
    from credit_scoring.decision.bundle import CreditModel

    if args.model:
        model = CreditModel.load(args.model)
        table = pd.read_parquet(args.features)
    else:
        from bench_decisions import _train_model

        model, table = _train_model(args.n_users)
    rng = np.random.default_rng(0)
    batch = table.iloc[rng.choice(len(table), size=args.rows, replace=len(table) < args.rows)]
    X = model.encoded(model.feature_matrix(batch))
    people = [
        {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
        for row in batch[model.feature_names].head(args.single).to_dict("records")
    ]

    t0 = time.perf_counter()  # fresh (fitting the bundle built them already)
    treeshap.build_tables(model.booster, model.best_iteration)
    build_s = time.perf_counter() - t0
    tables = treeshap.tables_for(model.booster, model.best_iteration)
    assert tables is not None, "this bundle is not covered by the tables"

    def single() -> None:
        for p in people:
            model.decide_one(p, True)

    cases = {
        "score stage, without reasons": lambda: score_features(model, batch, False),
        "score stage, with reasons (before: pred_contrib)": lambda: score_features(
            model, batch, True
        ),
        "score stage, with reasons (after: tables)": lambda: score_features(model, batch, True),
        "contributions only (before: pred_contrib)": lambda: explain.contributions(
            model.booster, X, model.best_iteration
        ),
        "contributions only (after: tables)": lambda: explain.contributions(
            model.booster, X, model.best_iteration
        ),
        "one decision with reasons, decide_one (before: pred_contrib)": single,
        "one decision with reasons, decide_one (after: tables)": single,
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for name, fn in cases.items():  # warm-up
        with _pred_contrib() if "before" in name else _nothing():
            fn()
    for _ in range(args.rounds):  # interleaved: each round runs every case once
        for name, fn in cases.items():
            with _pred_contrib() if "before" in name else _nothing():
                times[name].append(_timed(fn))
    results = {}
    for name, ts in times.items():
        per = args.single if name.startswith("one decision") else args.rows
        med = float(np.median(ts))
        r = {"median_s": med, "all_s": ts, "rows": per}
        if name.startswith("one decision"):
            r["ms_per_decision"] = med / per * 1000
        else:
            r["s_per_1000"] = med / per * 1000
            r["extrapolated_1M_min"] = med / per * 1_000_000 / 60
        results[name] = r

    def ratio(a: str, b: str) -> float:
        return results[a]["median_s"] / results[b]["median_s"]

    out = {
        "benchmark": "reasons and dimension points: pred_contrib vs table TreeSHAP",
        "command": "python benchmarks/bench_reasons.py"
        + (f" --model {args.model}" if args.model else f" --n-users {args.n_users}")
        + f" --rows {args.rows} --rounds {args.rounds}",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": _tree_shape(model.booster, model.best_iteration),
        "features": len(model.feature_names),
        "tables": {"build_s": build_s, "values": tables.size, "mib": tables.size * 8 / 2**20},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "results": results,
        "ratios": {
            "score with reasons, before / after": ratio(
                "score stage, with reasons (before: pred_contrib)",
                "score stage, with reasons (after: tables)",
            ),
            "contributions, before / after": ratio(
                "contributions only (before: pred_contrib)",
                "contributions only (after: tables)",
            ),
            "one decision, before / after": ratio(
                "one decision with reasons, decide_one (before: pred_contrib)",
                "one decision with reasons, decide_one (after: tables)",
            ),
            "score with reasons (after) / without reasons": ratio(
                "score stage, with reasons (after: tables)", "score stage, without reasons"
            ),
            "score with reasons (before) / without reasons": ratio(
                "score stage, with reasons (before: pred_contrib)",
                "score stage, without reasons",
            ),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"model": out["model"], "tables": out["tables"]}))
    print(f"{'case':62s} {'median s':>9s} {'per 1,000 s':>12s} {'1M min':>7s}")
    for name, r in results.items():
        per_k = r.get("s_per_1000")
        extra = (
            f"{per_k:12.3f} {r['extrapolated_1M_min']:7.1f}"
            if per_k is not None
            else f"{r['ms_per_decision']:9.2f} ms/decision"
        )
        print(f"{name:62s} {r['median_s']:9.2f} {extra}")
    for k, v in out["ratios"].items():
        print(f"{k:62s} {v:9.2f}x")


@contextmanager
def _nothing():
    yield


if __name__ == "__main__":
    main()
