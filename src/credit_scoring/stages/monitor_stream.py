"""The monitor-stream command: a simulated production stream decided by the bundle, and
its later outcomes (:mod:`credit_scoring.data.drift` draws it), for the monitoring example
and tests. Writes ``decisions.parquet`` (decided_at, person_id, ``feature:<name>`` columns,
the decision, reason codes) and ``outcomes.parquet`` (label and default date)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.io import write_parquet
from credit_scoring.monitoring.reference import reason_codes
from credit_scoring.monitoring.stability import FEATURE_PREFIX
from credit_scoring.schemas import DATE


def run(
    params: Params,
    out_dir: Path,
    kind: str = "none",
    months: int = 6,
    people: int = 2000,
    start_month: int = 0,
    strength: float | None = None,
    seed: int = 1,
    model_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """A production stream from the simulator, decided by the bundle: ``decisions.parquet``
    (decided_at, person_id, features, decision) and ``outcomes.parquet`` (label and
    default date) in ``out_dir``."""
    from credit_scoring.data.drift import stream_month
    from credit_scoring.decision.batch import score_features
    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.features.compute import compute_features

    model = CreditModel.load(model_dir or Paths.from_params(params).bundle)
    rng = np.random.default_rng(seed)
    decided, outcomes = [], []
    for i in range(months):
        month = stream_month(
            params.simulate, params.base, i, people, kind, strength, start_month, seed
        )
        feats = compute_features(month.data, params.features.windows)
        prefix = f"M{i:02d}-"
        feats["person_id"] = prefix + feats["person_id"].astype(str)
        dec, _ = score_features(model, feats, with_reasons=True)
        named = feats[["person_id", *model.feature_names]].rename(
            columns={c: FEATURE_PREFIX + c for c in model.feature_names}
        )
        dec = dec.merge(named, on="person_id")
        seconds = rng.integers(9 * 3600, 18 * 3600, len(dec))
        dec["decided_at"] = pd.to_datetime(dec[DATE]) + pd.to_timedelta(seconds, unit="s")
        dec["reason_codes"] = [json.dumps(r) for r in reason_codes(dec.pop("reasons"))]
        dec["tiers"] = [json.dumps(list(t)) for t in dec["tiers"]]
        dec = dec.drop(
            columns=[
                c for c in dec if c.startswith("points_") or c in ("base_points", "limit_reasons")
            ],
            errors="ignore",
        )
        decided.append(dec)
        out = month.outcomes.assign(person_id=prefix + month.outcomes["person_id"].astype(str))
        outcomes.append(out)
        if progress is not None:
            progress(i + 1, months)
    decisions = pd.concat(decided, ignore_index=True)
    outcome_frame = pd.concat(outcomes, ignore_index=True)
    write_parquet(decisions, out_dir / "decisions.parquet")
    write_parquet(outcome_frame, out_dir / "outcomes.parquet")
    return {
        "kind": kind,
        "months": f"{decisions['decided_at'].min():%Y-%m} .. {decisions['decided_at'].max():%Y-%m}",
        "decisions": len(decisions),
        "default rate": float(outcome_frame["default_12m"].astype(float).mean()),
        "folder": out_dir,
    }
