"""The gate's like-for-like comparison and the validated model's record in MLflow.

With ``train.refit_on_all`` the registered (deployed) model has seen the test cohort, so:

- the challenger is compared as its *validated* model (``models/validated_bundle``);
- the champion is re-scored as its own validated twin, logged in its run under
  :data:`VALIDATED_ARTIFACT` (else as the registered model: a champion registered before
  twins existed), and only on the test rows it was provably not fit on
  (:func:`credit_scoring.audit.gate.unseen_rows`);
- the validated model's test metrics are logged beside the deployed model
  (``validated_test_*`` run metrics, a ``validated_test_auc`` version tag) and its bundle
  in the run, so the next run can re-score it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from credit_scoring.artefacts import Paths
from credit_scoring.audit.gate import (
    AucComparison,
    delong_auc_difference,
    legacy_fit_record,
    unseen_rows,
)
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.schemas import LABEL
from credit_scoring.tracking import registry as tracking

#: Where a run keeps the validated twin of its registered model.
VALIDATED_ARTIFACT = "validated_bundle"


def log_validated(
    client: MlflowClient, name: str, version: str, paths: Paths, metrics: dict[str, Any]
) -> None:
    """Log the validated bundle to the active run and its test metrics beside the deployed
    model: ``validated_test_<metric>`` run metrics and version tags ``deployed_model``
    (validated or refit) and ``validated_test_auc``."""
    bundle = paths.measured_bundle()
    mlflow.log_artifacts(str(bundle), artifact_path=VALIDATED_ARTIFACT)
    flat = {
        k.replace(".", "_"): float(v)
        for k, v in tracking.flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    mlflow.log_metrics({f"validated_test_{k}": v for k, v in flat.items()})
    deployed = str((metrics.get("deployment") or {}).get("deployed", "validated"))
    mlflow.set_tags({"deployed_model": deployed, "validated_model_artifact": VALIDATED_ARTIFACT})
    client.set_model_version_tag(name, version, "deployed_model", deployed)
    client.set_model_version_tag(name, version, "validated_test_auc", f"{metrics['auc']:.4f}")


def _champion_model(name: str, run_id: str | None) -> tuple[CreditModel, str]:
    """The champion's validated twin from its run, else its registered model."""
    if run_id:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=VALIDATED_ARTIFACT, dst_path=tmp
                )
                return CreditModel.load(Path(local)), "its validated twin"
        except Exception:  # no twin (a champion from before twins): the registered model
            pass
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@{tracking.CHAMPION}")
    return pyfunc.unwrap_python_model().model, "the registered model"


def compare_with_champion(
    client: MlflowClient,
    name: str,
    test: pd.DataFrame,
    challenger: CreditModel,
    confidence: float,
) -> tuple[dict[str, Any] | None, AucComparison | None]:
    """``(champion info, comparison)`` for :func:`~credit_scoring.audit.gate.decide_promotion`.

    ``(None, None)`` without a champion; ``(info, None)`` with ``info["why"]`` when it
    cannot be re-scored fairly (it fails to load or score, or it was fit on every row of
    this cohort). ``challenger`` is the validated model, never fit on ``test``.
    """
    champ = tracking.champion_version(client, name)
    if champ is None:
        return None, None
    info: dict[str, Any] = {"version": str(champ.version), "rescored": False}
    try:
        model, scored_as = _champion_model(name, getattr(champ, "run_id", None))
        keep = unseen_rows(test, legacy_fit_record(model.metadata))
        y = test[LABEL].to_numpy(dtype=int)[keep]
        info |= {"scored_as": scored_as, "rows": int(keep.sum()), "rows_seen": int((~keep).sum())}
        if not 0 < y.sum() < y.size:
            info["why"] = (
                f"{scored_as} was fit on {int((~keep).sum()):,} of the {len(test):,} "
                f"test-cohort rows and the {int(keep.sum()):,} left lack defaulters or "
                "payers: no fair comparison"
            )
            return info, None
        rows = test.loc[keep]
        champ_pd = np.asarray(model.predict_pd(rows), dtype=float)
    except Exception as err:  # any failure to load or score means: not comparable
        info["why"] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        return info, None
    comparison = delong_auc_difference(y, challenger.predict_pd(rows), champ_pd, confidence)
    info |= {"rescored": True, "auc": comparison.auc_champion}
    return info, comparison
