"""The features stage: point-in-time features per person and observation date.

Writes ``features.parquet`` (label + features) and ``protected.parquet`` (fairness only,
never model inputs). The local engine streams the validated events a chunk of people at a
time; ``engine: dask`` computes the same table on a Dask cluster. With features brought by
the lender (``data.mode: features``, :mod:`credit_scoring.data.byof`) ingest has already
written both tables in this shape: they are passed through, with their catalogue
(``feature_metadata.json``), whatever the engine.
"""

from __future__ import annotations

from typing import Any

from credit_scoring import cluster
from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data import catalogue as byof
from credit_scoring.features import dask_engine, streaming
from credit_scoring.features.registry import feature_names
from credit_scoring.io import write_parquet
from credit_scoring.stages import Progress


def run(params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Compute and write the feature table; returns rows, features, observation dates."""
    paths = Paths.from_params(params)
    if byof.is_byof(paths.validated_dir):
        return _passthrough(paths)
    (paths.features_dir / byof.METADATA_FILE).unlink(missing_ok=True)  # of an earlier run
    if params.engine == "dask":
        return _on_dask(params, progress)
    summary = streaming.write_features(
        paths.validated_dir,
        paths.features_dir,
        params.features.windows,
        chunk_people=params.features.chunk_people,
        progress=progress,
    )
    return {
        "rows": summary["rows"],
        "features": len(feature_names(params.features.windows)),
        "observation dates": summary["observation_dates"],
        "chunks": summary["chunks"] or "1 (loaded whole)",
    }


def _on_dask(params: Params, progress: Progress | None) -> dict[str, Any]:
    """The same outputs computed on Dask (partitions of people)."""
    paths = Paths.from_params(params)
    with cluster.dask_client(params.dask) as client:
        table, protected = dask_engine.compute_features_dask(
            client,
            params.data.validated_dir,  # as given: workers may read an object-store URI
            params.features.windows,
            params.dask.people_per_partition,
            progress=progress,
        )
    write_parquet(table, paths.features)
    write_parquet(protected, paths.protected)
    return {
        "rows": len(table),
        "features": len(feature_names(params.features.windows)),
        "observation dates": table["observation_date"].nunique(),
    }


def _passthrough(paths: Paths) -> dict[str, Any]:
    """Features brought by the lender: validated by ingest, copied as they are."""
    features, protected, catalogue = byof.read_byof(paths.validated_dir)
    byof.write_passthrough(features, protected, catalogue, paths.features_dir)
    return {
        "rows": len(features),
        "features": sum(not m.protected for m in catalogue),
        "observation dates": features["observation_date"].nunique(),
        "source": "brought by the lender (data.mode: features)",
    }
