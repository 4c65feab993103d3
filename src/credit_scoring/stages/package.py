"""The package stage: the registry's champion into the BentoML model store, and the Bento.

Downloads the model behind the ``serve.alias`` alias (default ``champion``) from the MLflow
registry, imports its plain-file bundle into the BentoML model store (``BENTOML_HOME`` or
``serve.bentoml_home``) labelled with the registry version and test metrics, pins that exact
tag in the serve config file (``serve.config_file``) the service reads at start, and builds the
Bento from bentofile.yaml with the same tag. Writes ``reports/package.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credit_scoring.artefacts import GateReport, Paths, read_json
from credit_scoring.config import Params
from credit_scoring.io import write_json
from credit_scoring.tracking import bento


def run(params: Params, build: bool | None = None) -> dict[str, Any]:
    """Package the champion (build the Bento unless ``build`` or ``serve.build`` says no).

    Returns the summary written to ``reports/package.json`` plus, when the register stage
    has run here, what its gate decided about the newest version (``last gate``). With no
    model behind the alias (the gate never promoted one) nothing is packaged and the summary
    says so (``packaged: false``): a refusal is a result, not a failure.
    """
    paths = Paths.from_params(params)
    bento.use_bentoml_home(params.serve.bentoml_home)
    try:
        summary = bento.package_champion(
            params.mlflow,
            params.serve.alias,
            params.serve.max_batch,
            Path.cwd(),
            params.serve.build if build is None else build,
            serve=params.serve,
        )
    except bento.NoChampionError as err:
        # The gate refused every model so far: not a pipeline failure (the refusal and the
        # reports are the result); say so, package nothing, exit 0 (issue #12).
        summary = {"packaged": False, "alias": params.serve.alias, "reason": str(err)}
    write_json(summary, paths.package)
    if not paths.gate.is_file():
        return summary
    gate = read_json(paths.gate, GateReport, "register")
    verdict = "promoted" if gate.promote else "refused, champion unchanged"
    return {**summary, "last gate": f"{gate.model_name} v{gate.version} {verdict}"}
