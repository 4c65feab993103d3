"""Packaging: the MLflow registry's champion -> the BentoML model store -> a Bento.

The registered model's plain-file bundle (LightGBM text + JSON, the ``bundle`` artefact
of :mod:`credit_scoring.tracking.mlflow_model`) is downloaded and copied, as it is, into a BentoML
model with labels and metadata naming where it came from (registry name, version, alias,
run id, test metrics). The service loads that bundle with
:meth:`credit_scoring.decision.bundle.CreditModel.load`, so no pickle is involved anywhere.

``BENTOML_HOME`` must be set before :mod:`bentoml` is first imported in the process;
:func:`use_bentoml_home` does that.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credit_scoring.config import MlflowParams
from credit_scoring.serving.contract import BENTO_MODEL_NAME, SERVE_INFO_FILE

BENTOFILE = "bentofile.yaml"


class NoChampionError(LookupError):
    """The registry has no model version behind the requested alias."""


@dataclass
class RegistryModel:
    """A registered model version and what the service reports about it."""

    name: str
    version: str
    alias: str
    run_id: str
    test_metrics: dict[str, float] = field(default_factory=dict)


def use_bentoml_home(home: str | None) -> str | None:
    """Point BentoML at ``home`` unless BENTOML_HOME is already set (the env wins)."""
    if home and not os.environ.get("BENTOML_HOME"):
        os.environ["BENTOML_HOME"] = str(Path(home).resolve())
    return os.environ.get("BENTOML_HOME")


def registry_model(params: MlflowParams, alias: str) -> RegistryModel:
    """The version behind ``alias`` in the registry, with its run's test metrics."""
    import mlflow
    from mlflow import MlflowClient

    from credit_scoring.tracking import registry as tracking

    uri = tracking.tracking_uri(params)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        mv = client.get_model_version_by_alias(params.model_name, alias)
    except mlflow.exceptions.MlflowException:
        raise NoChampionError(
            f"no '{alias}' model in the MLflow registry ({params.model_name} at {uri}); "
            "run `credit-scoring register` until the gate promotes one"
        ) from None
    metrics = client.get_run(mv.run_id).data.metrics
    test = {
        k.removeprefix("test_"): float(v)
        for k, v in metrics.items()
        if k.startswith("test_") and not k.startswith("test_learning_curve")
    }
    return RegistryModel(params.model_name, str(mv.version), alias, mv.run_id, test)


def download_bundle(params: MlflowParams, reg: RegistryModel, dest: Path) -> Path:
    """Download the registered version's artefacts and return its bundle folder."""
    import mlflow

    from credit_scoring.decision.bundle import BUNDLE_FILE
    from credit_scoring.tracking import registry as tracking

    mlflow.set_tracking_uri(tracking.tracking_uri(params))
    mlflow.set_registry_uri(tracking.tracking_uri(params))
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{reg.name}/{reg.version}", dst_path=str(dest)
        )
    )
    found = sorted(local.rglob(BUNDLE_FILE))
    if len(found) != 1:
        raise FileNotFoundError(
            f"{reg.name} v{reg.version}: expected one {BUNDLE_FILE} in the model's artefacts, "
            f"found {len(found)}"
        )
    return found[0].parent


def import_bundle(
    bundle_dir: str | Path,
    reg: RegistryModel | None,
    max_batch: int,
    name: str = BENTO_MODEL_NAME,
) -> str:
    """Copy a bundle folder into a new BentoML model; returns its tag.

    Labels (strings, searchable with ``bentoml models list``): registry name, version,
    alias, run id and headline test metrics; metadata: the same, plus every test metric.
    A ``serve_info.json`` beside the bundle carries what the service reports.
    """
    import bentoml

    from credit_scoring.decision.bundle import BOOSTER_FILE, BUNDLE_FILE, CreditModel

    bundle_dir = Path(bundle_dir)
    model = CreditModel.load(bundle_dir)  # refuse to package a bundle that does not load
    info: dict[str, Any] = {
        "model_name": reg.name if reg else name,
        "model_version": reg.version if reg else "local",
        "alias": reg.alias if reg else None,
        "run_id": reg.run_id if reg else None,
        "test_metrics": reg.test_metrics if reg else {},
        "max_batch": int(max_batch),
        "trained_at": model.metadata.get("trained_at"),
        "n_features": len(model.feature_names),
    }
    labels = {
        "mlflow_model": info["model_name"],
        "mlflow_version": info["model_version"],
        "alias": info["alias"] or "none",
        "run_id": info["run_id"] or "none",
    }
    for key in ("auc", "gini", "ks", "ece", "psi"):
        if key in info["test_metrics"]:
            labels[f"test_{key}"] = f"{info['test_metrics'][key]:.4f}"
    metadata = {k: v for k, v in info.items() if v is not None}  # BentoML refuses None
    with bentoml.models.create(name=name, labels=labels, metadata=metadata) as bento_model:
        dest = Path(bento_model.path)
        for fname in (BOOSTER_FILE, BUNDLE_FILE):
            shutil.copy2(bundle_dir / fname, dest / fname)
        tag = str(bento_model.tag)
        info["bento_model"] = tag
        (dest / SERVE_INFO_FILE).write_text(json.dumps(info, indent=2))
    return tag


def build_bento(project_dir: str | Path, labels: dict[str, str]) -> str:
    """Build the Bento described by bentofile.yaml (pinned requirements, no network)."""
    from bentoml.bentos import build_bentofile

    project_dir = Path(project_dir).resolve()
    bento = build_bentofile(str(project_dir / BENTOFILE), build_ctx=str(project_dir), labels=labels)
    return str(bento.tag)


def package_champion(
    params: MlflowParams, alias: str, max_batch: int, project_dir: str | Path, build: bool
) -> dict[str, Any]:
    """The whole `package` stage: registry alias -> BentoML model (-> Bento)."""
    reg = registry_model(params, alias)
    with tempfile.TemporaryDirectory(prefix="credit-scoring-package-") as tmp:
        bundle = download_bundle(params, reg, Path(tmp))
        tag = import_bundle(bundle, reg, max_batch)
    summary: dict[str, Any] = {
        "registry model": f"{reg.name} v{reg.version} (@{alias})",
        "run id": reg.run_id,
        "bentoml model": tag,
        "test auc": f"{reg.test_metrics.get('auc', float('nan')):.4f}",
    }
    if build:
        labels = {
            "mlflow_model": reg.name,
            "mlflow_version": reg.version,
            "bento_model": tag,
            **{
                f"test_{k}": f"{reg.test_metrics[k]:.4f}"
                for k in ("auc", "ece", "psi")
                if k in reg.test_metrics
            },
        }
        summary["bento"] = build_bento(project_dir, labels)
    return summary
