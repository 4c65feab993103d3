"""MLflow helpers: where runs go, the pyfunc wrapper, registration, champion re-scoring.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set (a team's shared server),
else from params (local SQLite by default). The registered model is the plain-file
bundle of :mod:`credit_scoring.decision.bundle` wrapped as an MLflow pyfunc, so loading it back by
alias (``models:/<name>@champion``) unpickles nothing but this module's small class.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from credit_scoring.config import MlflowParams

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

    return [f"{p}=={version(p)}" for p in MODEL_PACKAGES]


#: What the shipped ``credit_scoring`` code imports to load and run a bundle (checked by
#: loading the model in a fresh environment built from these pins, tests/tracking).
MODEL_PACKAGES = (
    "lightgbm",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "pyarrow",
    "pydantic",
    "pyyaml",
    "mlflow",
)
#: The project's package, shipped inside the model (``code_paths``) so that it loads where
#: ``credit_scoring`` is not installed.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def model_signature(model: Any, example: pd.DataFrame) -> Any:
    """Every feature an optional double (the service accepts any subset and treats the rest
    as missing, so must the model); outputs and the ``with_reasons`` param inferred."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    from credit_scoring.decision.bundle import decisions_frame

    inferred = infer_signature(
        example, decisions_frame(model.decide(example)), params={"with_reasons": True}
    )
    inputs = Schema([ColSpec(DataType.double, n, required=False) for n in model.feature_names])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


def log_model(model: Any, bundle: str | Path, example: pd.DataFrame, name: str) -> Any:
    """Log the bundle as a models-from-code pyfunc that ships this package and pins its
    requirements, registered as ``name``; returns MLflow's ModelInfo.

    MLflow prints "Registered model ... already exists" / "Created version ..." straight
    to stderr (not through a logger): silenced here, the register summary says it."""
    with contextlib.redirect_stderr(io.StringIO()):
        return _log_model(model, bundle, example, name)


def _log_model(model: Any, bundle: str | Path, example: pd.DataFrame, name: str) -> Any:
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={"bundle": str(bundle)},
        code_paths=[str(PACKAGE_DIR)],
        signature=model_signature(model, example),
        input_example=example,
        pip_requirements=pip_requirements(),
        registered_model_name=name,
    )


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


def champion_version(client: MlflowClient, name: str):
    """The registry's current champion version, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None


def score_champion(name: str, test_features: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """The champion's PD for today's test cohort, so the comparison is like for like.

    Returns ``(pd, "")``, or ``(None, why)`` when the champion cannot score these features
    (its feature set changed, its artefact is gone): the gate then says so and applies its
    stated rule; no metric logged on another cohort stands in for it.
    """
    try:
        champ = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        p = np.asarray(champ.predict(test_features)["pd"], dtype=float)
    except Exception as err:  # any failure to load or score means: not comparable
        return None, f"{type(err).__name__}: {err}".splitlines()[0][:300]
    if p.shape != (len(test_features),) or not np.isfinite(p).all():
        return None, f"its PDs are not one finite number per person (shape {p.shape})"
    return p, ""
