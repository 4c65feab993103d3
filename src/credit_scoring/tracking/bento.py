"""Packaging: the MLflow registry's champion -> the BentoML model store -> a Bento.

The registered model's plain-file bundle (LightGBM text + JSON, the ``bundle`` artefact
of :mod:`credit_scoring.tracking.mlflow_model`) is downloaded and copied, as it is, into a BentoML
model with labels and metadata naming where it came from (registry name, version, alias,
run id, test metrics). The service loads that bundle with
:meth:`credit_scoring.decision.bundle.CreditModel.load`, so no pickle is involved anywhere.

The served model is pinned: :func:`write_serve_config` writes the exact tag just imported
(with its registry version and run id) to the serve config file the service reads at start
(:mod:`credit_scoring.serving.serve_config`), and the Bento carries the same tag in its
environment; the service never loads ``:latest``.

``BENTOML_HOME`` must be set before :mod:`bentoml` is first imported in the process;
:func:`use_bentoml_home` does that.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credit_scoring.config import MlflowParams, ServeParams
from credit_scoring.io import write_json
from credit_scoring.serving.audit_log import bundle_sha256
from credit_scoring.serving.contract import BENTO_MODEL_NAME, SERVE_INFO_FILE
from credit_scoring.serving.serve_config import MODEL_TAG_ENV, serve_config_document

BENTOFILE = "bentofile.yaml"
#: What a Bento is built from (bentofile.yaml's ``include`` and requirements): hashed to
#: tell whether an existing Bento is still this code, copied when building from a temp copy.
BUILD_SOURCES = ("bentofile.yaml", "requirements/serve.txt", "src/credit_scoring")


class HiddenPathError(RuntimeError):
    """The project sits under a dot-folder and no temporary copy outside one could be made."""


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
    from credit_scoring.tracking.runs import quiet_mlflow

    quiet_mlflow()  # no download progress bar on the terminal
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
    sha = bundle_sha256(bundle_dir)
    info: dict[str, Any] = {
        "model_name": reg.name if reg else name,
        # what every decision reports: the registry version and the run that trained it
        "model_version": f"{reg.version}@{reg.run_id}" if reg else f"local@{sha[:12]}",
        "registry_version": reg.version if reg else None,
        "bundle_sha256": sha,
        "alias": reg.alias if reg else None,
        "run_id": reg.run_id if reg else None,
        "test_metrics": reg.test_metrics if reg else {},
        "max_batch": int(max_batch),
        "trained_at": model.metadata.get("trained_at"),
        "n_features": len(model.feature_names),
    }
    labels = {
        "mlflow_model": info["model_name"],
        "mlflow_version": info["registry_version"] or "local",
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


def find_imported(reg: RegistryModel, bundle_dir: str | Path, max_batch: int) -> str | None:
    """The tag of a model already in the store for this registry version, run, bundle hash
    and max_batch (what `package` would import again), or None."""
    import bentoml

    sha = bundle_sha256(Path(bundle_dir))
    try:
        models = bentoml.models.list(BENTO_MODEL_NAME)
    except bentoml.exceptions.NotFound:  # an empty store
        return None
    for m in models:
        labels, meta = m.info.labels, m.info.metadata
        if (
            labels.get("mlflow_model") == reg.name
            and labels.get("mlflow_version") == reg.version
            and labels.get("run_id") == reg.run_id
            and meta.get("bundle_sha256") == sha
            and int(meta.get("max_batch", -1)) == int(max_batch)
        ):
            return str(m.tag)
    return None


def source_sha256(project_dir: str | Path) -> str:
    """sha256 of the files a Bento is built from (:data:`BUILD_SOURCES`, .py and text)."""
    root = Path(project_dir)
    h = hashlib.sha256()
    for src in BUILD_SOURCES:
        path = root / src
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def find_bento(model_tag: str, source_sha: str) -> str | None:
    """A Bento already built for ``model_tag`` from the same sources, or None."""
    import bentoml

    try:
        bentos = bentoml.bentos.list()
    except bentoml.exceptions.NotFound:
        return None
    for b in bentos:
        labels = b.info.labels
        if labels.get("bento_model") == model_tag and labels.get("source_sha256") == source_sha:
            return str(b.tag)
    return None


def hidden_parts(path: str | Path) -> list[str]:
    """The dot-folders on ``path`` (BentoML refuses to build from under any of them)."""
    return [p for p in Path(path).resolve().parts if p.startswith(".") and p not in (".", "..")]


def build_context(project_dir: str | Path, tmp: str | Path) -> Path:
    """``project_dir`` itself, or, when it sits under a dot-folder, a copy of its build
    sources in ``tmp`` (outside any dot-folder; else a one-line :class:`HiddenPathError`)."""
    project_dir = Path(project_dir).resolve()
    hidden = hidden_parts(project_dir)
    if not hidden:
        return project_dir
    if hidden_parts(tmp):
        raise HiddenPathError(
            f"BentoML refuses to build under a dot-folder ({hidden[0]!r} in {project_dir}) and "
            f"the temporary folder {tmp} is under one too: set TMPDIR to a plain folder, or "
            "move the project"
        )
    copy = Path(tmp) / "project"
    for src in BUILD_SOURCES:
        path = project_dir / src
        if path.is_dir():
            shutil.copytree(path, copy / src, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.is_file():
            (copy / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy / src)
    return copy


def served_model_info(tag: str) -> dict[str, Any]:
    """The serve_info.json of a model in the BentoML store (name, versions, run id, hash)."""
    import bentoml

    return json.loads((Path(bentoml.models.get(tag).path) / SERVE_INFO_FILE).read_text())


def write_serve_config(serve: ServeParams, tag: str, path: str | Path | None = None) -> Path:
    """Pin ``tag`` for the service: the serve config file names it, its registry version,
    run id and bundle hash, and carries the ``serve.auth``/``serve.audit`` settings."""
    info = served_model_info(tag)
    model = {
        "tag": tag,
        "model_name": info.get("model_name"),
        "model_version": info.get("model_version"),
        "registry_version": info.get("registry_version"),
        "run_id": info.get("run_id"),
        "bundle_sha256": info.get("bundle_sha256"),
    }
    out = Path(path or serve.config_file)
    write_json(serve_config_document(model, serve.auth, serve.audit), out)
    return out


def build_bento(project_dir: str | Path, labels: dict[str, str], model_tag: str) -> str:
    """Build the Bento described by bentofile.yaml (pinned requirements, no network), with
    ``model_tag`` pinned in its environment (and so the only model it packs). A project
    under a dot-folder is built from a temporary copy of its sources (BentoML refuses
    hidden paths)."""
    with tempfile.TemporaryDirectory(prefix="credit-scoring-bento-") as tmp:
        ctx = build_context(project_dir, tmp)
        return _build(ctx, labels, model_tag)


def _build(project_dir: Path, labels: dict[str, str], model_tag: str) -> str:
    import attr
    from bentoml._internal.bento.build_config import BentoBuildConfig, BentoEnvSchema
    from bentoml.bentos import build

    cfg = BentoBuildConfig.from_file(str(project_dir / BENTOFILE))
    envs = [e for e in (cfg.envs or []) if e.name != MODEL_TAG_ENV]
    envs.append(BentoEnvSchema(name=MODEL_TAG_ENV, value=model_tag))
    previous = os.environ.get(MODEL_TAG_ENV)
    os.environ[MODEL_TAG_ENV] = model_tag  # the service module resolves its model on import
    try:
        bento = build(
            **{
                k: v
                for k, v in attr.asdict(cfg, recurse=False).items()
                if k in ("service", "name", "description", "include", "exclude", "python")
            },
            labels={**(cfg.labels or {}), **labels},
            envs=envs,
            build_ctx=str(project_dir),
        )
    finally:
        if previous is None:
            os.environ.pop(MODEL_TAG_ENV, None)
        else:
            os.environ[MODEL_TAG_ENV] = previous
    return str(bento.tag)


def package_champion(
    params: MlflowParams,
    alias: str,
    max_batch: int,
    project_dir: str | Path,
    build: bool,
    serve: ServeParams | None = None,
) -> dict[str, Any]:
    """The whole `package` stage: registry alias -> BentoML model (-> pinned -> Bento)."""
    reg = registry_model(params, alias)
    with tempfile.TemporaryDirectory(prefix="credit-scoring-package-") as tmp:
        bundle = download_bundle(params, reg, Path(tmp))
        tag = find_imported(reg, bundle, max_batch)
        reused = tag is not None
        if tag is None:
            tag = import_bundle(bundle, reg, max_batch)
    summary: dict[str, Any] = {
        "registry model": f"{reg.name} v{reg.version} (@{alias})",
        "run id": reg.run_id,
        "bentoml model": tag,
        "bentoml model reused": reused,  # same registry version, run and bundle hash
        "bentoml home": os.environ.get("BENTOML_HOME") or "~/bentoml",
        "test auc": f"{reg.test_metrics.get('auc', float('nan')):.4f}",
    }
    if serve is not None:
        summary["serve config"] = str(write_serve_config(serve, tag))
    if build:
        source = source_sha256(project_dir)
        existing = find_bento(tag, source)
        if existing is not None:
            summary["bento"], summary["bento reused"] = existing, True
            return summary
        labels = {
            "source_sha256": source,
            "mlflow_model": reg.name,
            "mlflow_version": reg.version,
            "bento_model": tag,
            **{
                f"test_{k}": f"{reg.test_metrics[k]:.4f}"
                for k in ("auc", "ece", "psi")
                if k in reg.test_metrics
            },
        }
        summary["bento"], summary["bento reused"] = build_bento(project_dir, labels, tag), False
    return summary
