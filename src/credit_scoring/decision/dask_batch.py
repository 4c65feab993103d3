"""Batch scoring on Dask (``engine: dask``): the same decisions, cut into row ranges.

Nothing here decides: each task reads its own range of rows of the feature table from the
Parquet file (only the row groups it overlaps), loads the bundle from the model folder and
calls :func:`credit_scoring.decision.batch.score_features`, the very function of the local
engine, which calls ``CreditModel.decide_matrix``. What needs the whole table, the repeated
keys (first row wins), is found on the client from the key columns alone and handed to each
range; each range's rejects carry their row numbers in the whole file. The parts, gathered
in order, equal the local result row for row (tested).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from credit_scoring.cluster import location
from credit_scoring.decision.batch import score_features
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.schemas import ROW_KEY


@functools.lru_cache(maxsize=2)
def _model(model_dir: str) -> CreditModel:
    """The bundle, loaded once per worker process."""
    return CreditModel.load(Path(model_dir))


def read_rows(path: str, start: int, stop: int) -> pd.DataFrame:
    """Rows ``[start, stop)`` of a Parquet file, reading only the row groups they overlap."""
    f = pq.ParquetFile(path)
    groups, first, at = [], None, 0
    for g in range(f.metadata.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if at + n > start and at < stop:
            groups.append(g)
            first = at if first is None else first
        at += n
    if not groups:
        return f.schema_arrow.empty_table().to_pandas()
    table = f.read_row_groups(groups)
    return table.slice(start - first, stop - start).to_pandas()


def _score_range(
    path: str, model_dir: str, start: int, stop: int, dup: np.ndarray, with_reasons: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = read_rows(path, start, stop)
    return score_features(_model(model_dir), table, with_reasons, start, dup)


def score_features_dask(
    client: Any,
    features_path: str | Path,
    model_dir: str | Path,
    with_reasons: bool = True,
    rows_per_partition: int = 100_000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decisions and rejects of a Parquet feature table, computed on Dask; equal to
    ``score_features(CreditModel.load(model_dir), pd.read_parquet(features_path))``."""
    path, model = location(features_path), location(model_dir)
    names = pq.ParquetFile(path).schema_arrow.names
    keys = [k for k in ROW_KEY if k in names]
    n = pq.ParquetFile(path).metadata.num_rows
    if "person_id" in names:
        key_table = pq.read_table(path, columns=keys).to_pandas()
        dup = key_table.duplicated(subset=keys, keep="first").to_numpy()
    else:
        dup = np.zeros(n, dtype=bool)
    if n == 0:
        return score_features(_model(model), read_rows(path, 0, 0), with_reasons)
    parts = [
        client.submit(
            _score_range,
            path,
            model,
            a,
            min(a + rows_per_partition, n),
            dup[a : a + rows_per_partition],
            with_reasons,
            pure=False,
        )
        for a in range(0, n, rows_per_partition)
    ]
    results = client.gather(parts)
    decisions = pd.concat([r[0] for r in results], ignore_index=True)
    rejects = pd.concat([r[1] for r in results], ignore_index=True)
    return decisions, rejects
