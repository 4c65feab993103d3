"""The check stage: params.yaml validated before any stage touches its outputs.

DVC deletes a stage's outputs before it runs the stage's command, so a bad param caught by
the train command would already have cost the previous model. ``check`` is the first stage
of dvc.yaml, depends on every param, and every other stage depends on its small output:
``dvc repro`` (and ``dvc exp run -S``) stops at it with one line naming the key, and
leaves every other output in place.

The output says only that the params passed, never their values, so it does not change
when a param does and no stage re-runs because of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.io import write_json


def run(params: Params, params_path: Path) -> dict[str, Any]:
    """Write ``reports/params_check.json`` for params that loaded (validation is the load)."""
    paths = Paths.from_params(params)
    write_json({"params": "valid"}, paths.params_check)
    return {"params": str(params_path), "sections": len(type(params).model_fields)}
