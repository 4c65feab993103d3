"""The score stage: a whole table into decisions (PD, score, band, limit, tiers, reasons,
points) with the deployable bundle.

Writes ``decisions.parquet`` and ``rejects.parquet`` (rows that cannot be scored, with the
reason); input rows = scored + rejected. The input is the feature table by default, or any
features file, or a folder of raw input files scored through the feature code (or, for a
folder of features the lender brought, validated as ingest does). With ``engine: dask``
a Parquet feature table is scored on the cluster, each worker reading its own rows
(:mod:`credit_scoring.decision.dask_batch`), with the same decisions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from credit_scoring import cluster
from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data import byof
from credit_scoring.data.ingest import ingest
from credit_scoring.decision.batch import score_features
from credit_scoring.decision.bundle import CreditModel, decisions_frame
from credit_scoring.decision.dask_batch import score_features_dask
from credit_scoring.features.compute import compute_features
from credit_scoring.io import write_parquet
from credit_scoring.stages import Progress, StageError


def run(
    params: Params,
    input_path: Path | None = None,
    output_dir: Path | None = None,
    model_dir: Path | None = None,
    reasons: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score ``input_path`` (default: the feature table) with the bundle in ``model_dir``
    (default ``models/bundle``) into ``output_dir`` (default ``data/scores``); returns the
    counts of input, scored, rejected and approved rows."""
    paths = Paths.from_params(params)
    source = input_path or paths.features
    out = dataclasses.replace(paths, scores_dir=output_dir) if output_dir else paths
    model = CreditModel.load(model_dir or paths.bundle)
    if source.is_dir() and byof.input_mode(source, params.data.mode) == "features":
        found = byof.ingest_features(source)  # features the lender brought, validated
        table, upstream = found.features, found.rejects
        n_input = len(table) + len(upstream)
    elif source.is_dir():
        result = ingest(source)
        table = compute_features(result.data, params.features.windows)
        upstream = result.rejects.get("outcomes")
        n_input = len(table) + (0 if upstream is None else len(upstream))
    elif source.is_file() and source.suffix != ".csv" and params.engine == "dask":
        table, upstream = None, None  # each Dask worker reads its own rows
    elif source.is_file():
        table = pd.read_csv(source) if source.suffix == ".csv" else pd.read_parquet(source)
        upstream, n_input = None, len(table)
    else:
        raise StageError(f"{source}: no such file or folder")
    if table is None:
        with cluster.dask_client(params.dask) as client:
            decisions, rejects = score_features_dask(
                client, source, model_dir or paths.bundle, with_reasons=reasons
            )
        n_input = len(decisions) + len(rejects)
    else:
        decisions, rejects = score_features(model, table, with_reasons=reasons, progress=progress)
    if upstream is not None and len(upstream):
        rejects = pd.concat(
            [rejects, upstream.rename(columns={"reject_reason": "reason"})], ignore_index=True
        )
    write_parquet(decisions_frame(decisions), out.decisions)
    write_parquet(rejects.astype(str), out.score_rejects)
    return {
        "source": source,
        "input rows": n_input,
        "scored": len(decisions),
        "rejected": len(rejects),
        "approved (limit > 0)": int((decisions["credit_limit"] > 0).sum()),
    }
