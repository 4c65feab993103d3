"""The ingest stage: validate the input tables into accepted rows, rejects with reasons and
a data-quality report (input rows = accepted + rejected).

``data.mode`` says what the input folder holds: the four event tables, or a features
table with its metadata (bring your own features, :mod:`credit_scoring.data.byof`);
``auto`` picks the features mode when both of its files are there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data import byof
from credit_scoring.data.ingest import ingest, write_ingest_result


def run(params: Params, input_dir: Path | None = None) -> dict[str, Any]:
    """Validate ``input_dir`` (default ``data.input_dir``); returns the folder read, the
    mode and the per-table counts of the quality report."""
    paths = Paths.from_params(params)
    folder = input_dir or paths.input_dir
    if byof.input_mode(folder, params.data.mode) == "features":
        found = byof.ingest_features(folder)
        byof.write_byof_result(
            found,
            validated_dir=paths.validated_dir,
            rejects_dir=paths.rejects_dir,
            report_path=paths.quality_report,
        )
        return {"input_dir": folder, "mode": "features", "tables": found.report["tables"]}
    result = ingest(folder)
    byof.clear_byof(paths.validated_dir, paths.rejects_dir)
    write_ingest_result(
        result,
        validated_dir=paths.validated_dir,
        rejects_dir=paths.rejects_dir,
        report_path=paths.quality_report,
    )
    return {"input_dir": folder, "mode": "events", "tables": result.report.get("tables", {})}
