"""The one reader of the validated tables that ingest writes, and their person order.

Ingest writes ``outcomes``, ``events`` and ``contacts`` ordered by their person's row in
``profiles`` (:func:`person_order`), so the streaming and Dask feature engines can read
one range of people at a time. Every engine reads through :func:`read_table`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from credit_scoring import schemas
from credit_scoring.data.arrow import as_strings, codes_by_runs

#: Tables written in person order (profiles define the order).
PERSON_ORDERED: tuple[str, ...] = ("outcomes", "events", "contacts", *schemas.OPTIONAL_TABLES)


def _arrow(values: pd.Series | pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    return as_strings(values, len(values)) if isinstance(values, pd.Series) else values


def person_codes(
    person_ids: pd.Series | pa.ChunkedArray | pa.Array, profile_ids: pa.Array
) -> np.ndarray:
    """Row of each ``person_id`` in ``profile_ids`` (-1 if absent), looking up runs once."""
    values = _arrow(person_ids)
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    return codes_by_runs(values.cast(pa.large_string()), profile_ids)


def profile_ids(profiles: pd.DataFrame) -> pa.Array:
    """The profiles' ``person_id`` column as one Arrow array: the order people are chunked in."""
    return _arrow(profiles["person_id"]).combine_chunks()


def person_order(person_ids: pd.Series, ids: pa.Array) -> np.ndarray | None:
    """Stable order of rows by their person's row in profiles; None if already in order.

    Rows of people without a profile (not possible after ingest) go last.
    """
    codes = person_codes(person_ids, ids)
    codes[codes < 0] = len(ids)
    if len(codes) < 2 or bool((codes[1:] >= codes[:-1]).all()):
        return None
    return np.argsort(codes, kind="stable")


def table_path(folder: str | Path, table: str) -> str:
    """Where ingest writes a validated table: ``<folder>/<table>.parquet`` (folder may be a URI)."""
    return f"{folder}/{table}.parquet"


def read_table(
    folder: str | Path, table: schemas.Table | str, where: pc.Expression | None = None
) -> pd.DataFrame:
    """Rows of one validated table (matching ``where``), in file order, with canonical dtypes.

    The one reader of ingest's output for every engine: the in-memory and streaming
    engines read whole tables, Dask workers read their range of people (``where`` skips
    the row groups of a person-ordered file). ``folder`` may be an object-store URI. An
    optional table (:data:`~credit_scoring.schemas.OPTIONAL_TABLES`) missing from a local
    folder (written by an older ingest) reads as empty.
    """
    spec = schemas.ALL_TABLES[table] if isinstance(table, str) else table
    path = table_path(folder, spec.name)
    if "://" not in path and not Path(path).is_file():
        if spec.name in schemas.OPTIONAL_TABLES:
            return schemas.empty_table(spec)
        raise FileNotFoundError(f"{path}: validated table missing; run the ingest stage first")
    arrow = ds.dataset(path, format="parquet").to_table(filter=where)
    return schemas.conform(arrow.to_pandas(), spec).reset_index(drop=True)


def read_validated(folder: str | Path) -> schemas.BehaviourData:
    """All validated tables written by ``ingest`` (optional ones empty if absent)."""
    return schemas.BehaviourData(
        **{name: read_table(folder, spec) for name, spec in schemas.ALL_TABLES.items()}
    )
