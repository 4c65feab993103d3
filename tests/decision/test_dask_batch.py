"""Batch scoring on Dask: each worker reads its own rows and decides them with the same code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_scoring import cluster
from credit_scoring.config import DaskParams
from credit_scoring.decision.batch import score_features
from credit_scoring.decision.dask_batch import read_rows, score_features_dask


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes with 1 thread each (as tests/test_cluster.py)."""
    params = DaskParams(n_workers=2, threads_per_worker=1, memory_limit="2GiB")
    with cluster.dask_client(params) as c:
        yield c


def _bad_table(small_model, small_world) -> pd.DataFrame:
    """400 rows with a non-numeric value, an infinite one, a missing person and a key
    repeated across partitions (row 390 repeats row 10)."""
    table = small_world[2].head(400).copy().reset_index(drop=True)
    name = small_model.feature_names[0]
    table[name] = table[name].astype(object)
    table.loc[3, name] = "lots"
    table.loc[205, small_model.feature_names[1]] = np.inf
    table.loc[308, "person_id"] = None
    table.loc[390] = table.loc[10]
    table[name] = table[name].astype(str)
    return table


def test_dask_scoring_equals_local_scoring_row_for_row(client, small_model, small_world, tmp_path):
    """Decisions (with reasons) and rejects (reasons, row numbers in the whole file) of a
    feature table cut into ranges of 120 rows, written as Parquet row groups of 150 rows,
    equal the local engine's on the same file; a key repeated across ranges is rejected."""
    table = _bad_table(small_model, small_world)
    path = tmp_path / "features.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path, row_group_size=150)
    small_model.save(tmp_path / "bundle")
    local = score_features(small_model, pd.read_parquet(path), with_reasons=True)
    dask = score_features_dask(
        client, path, tmp_path / "bundle", with_reasons=True, rows_per_partition=120
    )
    pd.testing.assert_frame_equal(dask[0], local[0], obj="decisions")
    pd.testing.assert_frame_equal(dask[1], local[1], obj="rejects")
    reasons = dict(zip(dask[1]["source_row"], dask[1]["reason"], strict=True))
    assert reasons[391].startswith("duplicate")
    assert reasons[206].startswith("infinite")
    assert len(dask[0]) + len(dask[1]) == len(table)


def test_read_rows_reads_any_range_across_row_groups(tmp_path):
    """A worker's range of rows, whatever row groups it spans, is exactly those rows."""
    df = pd.DataFrame({"x": np.arange(1_000)})
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False), tmp_path / "f.parquet", row_group_size=64
    )
    got = read_rows(str(tmp_path / "f.parquet"), 100, 333)
    assert got["x"].tolist() == list(range(100, 333))
