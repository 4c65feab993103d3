"""False-alarm and detection rates of the monitor on simulated production streams.

Trains the small test model (5,000-person world, 150 rounds), freezes its training
reference, then for each seed draws a two-month stream (month 0 stable, month 1 drifted
unless the kind is ``none``), decides it with the model and monitors it with outcomes
matured. Counts, per kind, how often the newest window / the backtest reach watch and act.
Writes ``benchmarks/results/monitoring.json``. Run:
``.venv/bin/python benchmarks/bench_monitoring.py --seeds 10 --people 800``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from credit_scoring.config import BaseParams, CalibrateParams, SimulateParams, parse_params
from credit_scoring.data.drift import DRIFT_KINDS
from credit_scoring.data.simulate import simulate_world
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.features.compute import compute_features
from credit_scoring.features.registry import feature_names
from credit_scoring.modelling.split import out_of_time_split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.monitoring.reference import reference_from_model
from credit_scoring.stages import monitor, monitor_stream
from credit_scoring.telemetry import disable_telemetry

AS_OF = pd.Timestamp("2028-01-01")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--people", type=int, default=800)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/monitoring.json"))
    args = ap.parse_args()
    disable_telemetry()
    params = parse_params(
        {"monitor": {"min_outcomes": 200}, "evaluate": {"bootstrap_samples": 100}}
    )
    data, _ = simulate_world(SimulateParams(n_users=5000, chunk_size=5000), BaseParams())
    table = compute_features(data).merge(
        data.outcomes[["person_id", "observation_date", "default_12m"]],
        on=["person_id", "observation_date"],
    )
    split = out_of_time_split(table, params.split)
    lgbm = params.train.lightgbm.model_copy(update={"num_boost_round": 150, "learning_rate": 0.1})
    model = CreditModel(
        feature_names(),
        train_params=params.train.model_copy(update={"lightgbm": lgbm}),
        calibrate_params=CalibrateParams(method="sigmoid", ece_bins=10),
        seed=0,
    ).fit(split, local_trainer(num_threads=1))
    ref = reference_from_model(model, split.train, 10, 5000, 0, {})
    results: dict = {"people_per_month": args.people, "seeds": args.seeds, "kinds": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "bundle")
        for kind in DRIFT_KINDS:
            counts = {
                "window_watch": 0,
                "window_act": 0,
                "backtest_watch": 0,
                "backtest_act": 0,
                "act_items": {},
            }
            for seed in range(100, 100 + args.seeds):
                out = Path(tmp) / f"{kind}-{seed}"
                monitor_stream.run(
                    params, out, kind, 2, args.people, 1, None, seed, Path(tmp) / "bundle"
                )
                result = monitor.assess(
                    monitor.decisions_from_file(out / "decisions.parquet"),
                    ref,
                    params,
                    pd.read_parquet(out / "outcomes.parquet"),
                    AS_OF,
                )
                newest = result["windows"][-1]
                counts["window_watch"] += newest["status"] == "watch"
                counts["window_act"] += newest["status"] == "act"
                counts["backtest_watch"] += result["backtest"]["status"] == "watch"
                counts["backtest_act"] += result["backtest"]["status"] == "act"
                for it in newest["items"]:
                    if it["status"] == "act":
                        key = f"{it['item']} ({it['kind']})"
                        counts["act_items"][key] = counts["act_items"].get(key, 0) + 1
            counts["act_items"] = dict(
                sorted(counts["act_items"].items(), key=lambda kv: -kv[1])[:8]
            )
            results["kinds"][kind] = counts
            print(kind, counts, flush=True)
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["note"] = "2 cores shared with other jobs: timings are of a loaded machine"
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
