"""Minimal FastAPI + LightGBM baseline for bench_service.py (not part of the product).

Serves the same booster and calibrator as the BentoML service, with none of its
contract: features as a plain dict, the calibrated PD and (optionally) LightGBM's
per-feature contributions. Deliberately not a credit decision (no score, limit, tiers or
reasons): it is the floor the service's latency is compared with. The feature mapping is
turned into a matrix as the bundle does (:meth:`CreditModel.records_matrix`). Run:
``BUNDLE=path uvicorn baseline_fastapi:app``.
"""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI

from credit_scoring.decision.bundle import CreditModel

model = CreditModel.load(os.environ["BUNDLE"])
app = FastAPI()


def _decide(X: np.ndarray, with_reasons: bool) -> list[dict]:
    it = model.best_iteration
    if with_reasons:
        contrib = model.booster.predict(X, pred_contrib=True, num_iteration=it)
        margin = contrib.sum(axis=1)
    else:
        margin = model.booster.predict(X, raw_score=True, num_iteration=it)
    pd_ = model.calibrator.predict(margin)
    return [{"pd": float(p)} for p in pd_]


@app.post("/score")
def score(body: dict) -> dict:
    return _decide(model.records_matrix([body["features"]]), body.get("with_reasons", True))[0]


@app.post("/score_batch")
def score_batch(body: dict) -> dict:
    return {
        "decisions": _decide(model.records_matrix(body["people"]), body.get("with_reasons", False))
    }
