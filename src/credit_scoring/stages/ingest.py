"""The ingest stage: validate the input tables into accepted rows, rejects with reasons and
a data-quality report (input rows = accepted + rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data.ingest import ingest, write_ingest_result


def run(params: Params, input_dir: Path | None = None) -> dict[str, Any]:
    """Validate ``input_dir`` (default ``data.input_dir``); returns the folder read and the
    per-table counts of the quality report."""
    paths = Paths.from_params(params)
    folder = input_dir or paths.input_dir
    label = params.data.label
    result = ingest(folder, label_column=label.column, horizon_months=label.horizon_months)
    write_ingest_result(
        result,
        validated_dir=paths.validated_dir,
        rejects_dir=paths.rejects_dir,
        report_path=paths.quality_report,
    )
    return {"input_dir": folder, "tables": result.report.get("tables", {})}
