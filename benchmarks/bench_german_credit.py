"""The German credit data through the pipeline's model vs a plain LightGBM, same splits.

The data (examples/german_credit, 1,000 applicants, one date) allows only an in-time
split. Here it is made by hand: per repeat, a split stratified by the label into train
50% / validation 15% / calibration 15% / test 20% (every person has one row, so the split
is also grouped by person). On each split:

- **pipeline**: the bring-your-own-features path (``data.byof`` validation of the
  converted folder, then ``CreditModel.fit``: LightGBM with the declared monotone
  constraints, early stopping on validation, calibration on the calibration slice), with
  the project's default LightGBM params (``params.yaml``) and with small-data params
  (``min_child_samples`` 20, 7 leaves), since the defaults are sized for 60,000 people;
- **plain LightGBM**: ``lightgbm.LGBMClassifier()`` with its defaults on the *raw*
  columns of german_credit.csv (categories as pandas categoricals, LightGBM's own
  categorical splits; the protected attributes left out as for the pipeline), trained
  on the train slice, and once more on train + validation + calibration (all the labels
  the pipeline sees).

Reports test AUC (mean, sd over repeats, and the paired difference pipeline - plain),
ECE of the calibrated pipeline, and for the first split a bootstrap 95% CI of the AUCs.

Usage::

    .venv/bin/python benchmarks/bench_german_credit.py [--repeats 20]

Writes ``benchmarks/results/german_credit.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.config import CalibrateParams, Params
from credit_scoring.data.byof import ingest_features
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.modelling.metrics import auc, ece
from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.schemas import LABEL

REPO = Path(__file__).resolve().parents[1]
GERMAN = REPO / "examples" / "german_credit"
RESULTS = Path(__file__).resolve().parent / "results" / "german_credit.json"
FRACTIONS = {"train": 0.50, "validation": 0.15, "calibration": 0.15, "test": 0.20}
RAW_PROTECTED = ("personal_status_and_sex", "age_in_years", "foreign_worker")


def stratified_slices(y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Row positions of each slice, stratified by the label (the same shares per class)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in FRACTIONS}
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == cls))
        edges = np.round(np.cumsum(list(FRACTIONS.values())) * len(rows)).astype(int)
        for name, chunk in zip(FRACTIONS, np.split(rows, edges[:-1]), strict=True):
            parts[name].append(chunk)
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def bootstrap_ci(y: np.ndarray, p: np.ndarray, seed: int, n: int = 2000) -> list[float]:
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            stats.append(auc(y[i], p[i]))
    return [float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))]


def pipeline_model(table, catalogue, slices, params: Params, lgbm_update: dict, seed: int):
    split = Split(
        **{k: table.iloc[v].reset_index(drop=True) for k, v in slices.items()},
        cohorts={k: [dt.date(1994, 1, 1)] for k in slices},
    )
    train = params.train.model_copy(
        update={"lightgbm": params.train.lightgbm.model_copy(update=lgbm_update)}
    )
    names = [m.name for m in catalogue if not m.protected]
    model = CreditModel(
        names,
        train_params=train,
        calibrate_params=CalibrateParams(method="sigmoid", ece_bins=10),
        seed=seed,
        catalogue=catalogue,
    )
    model.fit(split, local_trainer(num_threads=1))
    return model.predict_pd(split.test), model


def plain_lightgbm(raw: pd.DataFrame, y: np.ndarray, train_rows, test_rows, seed: int):
    X = raw.drop(columns=["creditability", *RAW_PROTECTED])
    X = X.astype({c: "category" for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])})
    clf = lgb.LGBMClassifier(random_state=seed, verbose=-1, n_jobs=1)
    clf.fit(X.iloc[train_rows], y[train_rows])
    return clf.predict_proba(X.iloc[test_rows])[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    result = ingest_features(GERMAN / "byof")
    table, catalogue = result.features, result.metadata
    raw = pd.read_csv(GERMAN / "german_credit.csv")
    y = table[LABEL].to_numpy(dtype=int)
    if not np.array_equal(y, (raw["creditability"] == "bad").to_numpy(dtype=int)):
        raise SystemExit("converted and raw rows are not aligned")
    params = Params()
    variants = {
        "pipeline_default_params": {},
        "pipeline_small_data_params": {"min_child_samples": 20, "num_leaves": 7},
    }
    rows = []
    first_ci = {}
    for r in range(args.repeats):
        slices = stratified_slices(y, seed=r)
        yt = y[slices["test"]]
        row: dict[str, float] = {"seed": r}
        preds = {}
        for name, update in variants.items():
            pd_, _ = pipeline_model(table, catalogue, slices, params, update, seed=r)
            preds[name] = pd_
            row[f"{name}_auc"] = auc(yt, pd_)
            row[f"{name}_ece"] = ece(yt, pd_, 10)
        preds["plain_lightgbm_train"] = plain_lightgbm(raw, y, slices["train"], slices["test"], r)
        everything = np.sort(np.concatenate([slices[k] for k in FRACTIONS if k != "test"]))
        preds["plain_lightgbm_all_labels"] = plain_lightgbm(raw, y, everything, slices["test"], r)
        for name in ("plain_lightgbm_train", "plain_lightgbm_all_labels"):
            row[f"{name}_auc"] = auc(yt, preds[name])
        rows.append(row)
        if r == 0:
            first_ci = {k: bootstrap_ci(yt, p, seed=0) for k, p in preds.items()}
    frame = pd.DataFrame(rows)
    summary = {}
    for col in [c for c in frame.columns if c != "seed"]:
        summary[col] = {"mean": float(frame[col].mean()), "sd": float(frame[col].std(ddof=1))}
    for name in variants:
        for plain in ("plain_lightgbm_train", "plain_lightgbm_all_labels"):
            diff = frame[f"{name}_auc"] - frame[f"{plain}_auc"]
            summary[f"{name}_minus_{plain}"] = {
                "mean": float(diff.mean()),
                "sd": float(diff.std(ddof=1)),
                "se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            }
    out = {
        "data": "examples/german_credit (UCI Statlog, 1,000 applicants, 30% bad)",
        "split": {"stratified_by_label": True, **FRACTIONS, "repeats": args.repeats},
        "summary": summary,
        "first_split_test_auc_bootstrap_95ci": first_ci,
        "per_repeat": rows,
        "machine": {"python": platform.python_version(), "lightgbm": lgb.__version__},
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"{k:<{width}}  {v['mean']:.4f} +- {v['sd']:.4f}")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
