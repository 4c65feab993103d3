"""MLflow "models from code" definition of the credit model.

MLflow stores this file's source with the model instead of a cloudpickle of a Python
object, so loading a registered model runs reviewed code from this project and never
unpickles anything. The model's data is the plain-file bundle of
:mod:`credit_scoring.decision.bundle` (LightGBM text + JSON), passed as the ``bundle``
artefact. Every prediction is the bundle's own decision (:meth:`CreditModel.decide`).
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd


class CreditModelPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of :class:`credit_scoring.decision.bundle.CreditModel`."""

    def load_context(self, context: Any) -> None:
        from credit_scoring.decision.bundle import CreditModel

        self.model = CreditModel.load(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """The whole decision per row: pd, score, band, limit, tiers, points and reasons.

        ``params={"with_reasons": False}`` skips reasons and points (about 50x cheaper).
        Every feature is optional (the signature says so): an absent column is unknown
        (missing) for every row, as in the service.
        """
        from credit_scoring.decision.bundle import decisions_frame

        with_reasons = bool((params or {}).get("with_reasons", True))
        frame = pd.DataFrame(model_input).reindex(columns=self.model.feature_names)
        return decisions_frame(self.model.decide(frame, with_reasons=with_reasons))


mlflow.models.set_model(CreditModelPyfunc())
