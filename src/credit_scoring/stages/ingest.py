"""The ingest stage: validate the input tables into accepted rows, rejects with reasons and
a data-quality report (input rows = accepted + rejected).

The report also states which validations the labelled outcomes allow (``splits``: out of
time, in time, which one ``split.method`` picks and why, from
:func:`credit_scoring.modelling.split.allowed_splits`), and the stage refuses in one line
when none is possible, so a dataset too small or too short is turned away at the first
stage rather than three stages later.

``data.mode`` says what the input folder holds: the four event tables, or a features
table with its metadata (bring your own features, :mod:`credit_scoring.data.byof`);
``auto`` picks the features mode when both of its files are there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data import byof
from credit_scoring.data.ingest_stream import ingest_to_folder
from credit_scoring.data.validated import read_table
from credit_scoring.io import write_json
from credit_scoring.modelling.split import allowed_splits
from credit_scoring.stages import StageError


def run(params: Params, input_dir: Path | None = None) -> dict[str, Any]:
    """Validate ``input_dir`` (default ``data.input_dir``); returns the folder read, the
    mode, the per-table counts of the quality report and the split the data allows.

    Raises:
        StageError: the outcomes allow no split (the message names the counts).
    """
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
        labelled = pd.read_parquet(paths.validated_dir / f"{byof.FEATURES_TABLE}.parquet")
        splits = record_splits(params, paths, labelled)
        summary = {"input_dir": folder, "mode": "features", "tables": found.report["tables"]}
    else:
        label = params.data.label
        report = ingest_to_folder(
            folder,
            validated_dir=paths.validated_dir,
            rejects_dir=paths.rejects_dir,
            report_path=paths.quality_report,
            label_column=label.column,
            horizon_months=label.horizon_months,
            batch_rows=params.data.batch_rows,
        )
        byof.clear_byof(paths.validated_dir, paths.rejects_dir)
        splits = record_splits(params, paths, read_table(paths.validated_dir, "outcomes"))
        summary = {"input_dir": folder, "mode": "events", "tables": report.get("tables", {})}
    if splits["chosen"] is None:
        raise StageError(f"the labelled outcomes allow no validation: {splits['why']}")
    return {**summary, "split": f"{splits['chosen']}: {splits['why']}"}


def record_splits(params: Params, paths: Paths, labelled: pd.DataFrame) -> dict[str, Any]:
    """Which splits the labelled rows (person, observation date, label) allow, added to the
    data-quality report as ``splits``; returns that entry."""
    splits = allowed_splits(labelled, params.split, params.base.seed)
    report = json.loads(paths.quality_report.read_text(encoding="utf-8"))
    report["splits"] = splits
    write_json(report, paths.quality_report)
    return splits
