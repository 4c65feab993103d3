"""MLflow helpers: where runs go, the pyfunc wrapper, registration and the promotion gate.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set (a team's shared server),
else from params (local SQLite by default). The registered model is the plain-file
bundle of :mod:`credit_scoring.model` wrapped as an MLflow pyfunc, so loading it back by
alias (``models:/<name>@champion``) unpickles nothing but this module's small class.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from credit_scoring.config import GateParams, MlflowParams

CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_uri(params: MlflowParams) -> str:
    """The environment wins over params, so a team can point every run at one server."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri


def configure(params: MlflowParams) -> MlflowClient:
    """Point MLflow (tracking and registry) at the store and select the experiment."""
    uri = tracking_uri(params)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(params.experiment)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


MODEL_CODE = Path(__file__).with_name("mlflow_model.py")


def pip_requirements() -> list[str]:
    """Pin the packages the bundle needs to their installed versions (no inference pass)."""
    from importlib.metadata import version

    pkgs = ["lightgbm", "numpy", "pandas", "scikit-learn", "pyarrow", "pydantic", "mlflow"]
    return [f"{p}=={version(p)}" for p in pkgs]


def git_commit(cwd: str | Path = ".") -> str:
    """The code version of a run; 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_md5(path: str | Path) -> str:
    """MD5 of a file, the same hash DVC records for single-file outputs."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params -> dotted keys, as MLflow params want them."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


@dataclass
class GateDecision:
    """Whether the challenger becomes champion, and every reason, pass or fail."""

    promote: bool
    reasons: list[str] = field(default_factory=list)
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    gate: GateParams,
    fairness_breaches: list[str] | None = None,
    block_on_fairness: bool = False,
) -> GateDecision:
    """Pure promotion rule: calibrated, stable and better than the champion on the same test.

    ``fairness_breaches`` (from reports/fairness.json; None = no fairness report) refuse
    promotion only when ``block_on_fairness`` (params ``fairness.block_promotion``) is
    true; otherwise they are listed as warnings so the decision record still shows them.
    """
    reasons: list[str] = []
    ok = True
    ece, psi, auc = challenger["ece"], challenger["psi"], challenger["auc"]
    if ece <= gate.max_ece:
        reasons.append(f"pass: ECE {ece:.4f} <= {gate.max_ece}")
    else:
        ok = False
        reasons.append(f"fail: ECE {ece:.4f} > {gate.max_ece} (not calibrated enough)")
    if psi <= gate.max_psi:
        reasons.append(f"pass: PSI {psi:.4f} <= {gate.max_psi}")
    else:
        ok = False
        reasons.append(f"fail: PSI {psi:.4f} > {gate.max_psi} (score not stable)")
    if champion is None:
        reasons.append("pass: no current champion")
    else:
        need = champion["auc"] + gate.min_auc_gain
        if auc >= need:
            reasons.append(
                f"pass: AUC {auc:.4f} >= champion {champion['auc']:.4f} + {gate.min_auc_gain}"
            )
        else:
            ok = False
            reasons.append(
                f"fail: AUC {auc:.4f} < champion {champion['auc']:.4f} + {gate.min_auc_gain}"
            )
    if fairness_breaches is not None:
        if not fairness_breaches:
            reasons.append("pass: no fairness breach")
        elif block_on_fairness:
            ok = False
            reasons += [f"fail: fairness: {b}" for b in fairness_breaches]
        else:
            reasons += [
                f"warn: fairness (not blocking, fairness.block_promotion false): {b}"
                for b in fairness_breaches
            ]
    return GateDecision(promote=ok, reasons=reasons, challenger=challenger, champion=champion)


def champion_version(client: MlflowClient, name: str):
    """The registry's current champion version, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None


def score_champion_auc(name: str, test_features: pd.DataFrame, y: np.ndarray) -> float | None:
    """Re-score the champion on today's test cohort so the comparison is like for like."""
    from credit_scoring.metrics import auc

    try:
        champ = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        p = np.asarray(champ.predict(test_features)["pd"], dtype=float)
    except Exception:  # the champion cannot score these features (e.g. feature set changed)
        return None
    return float(auc(y, p))
