"""Arrow string helpers shared by ingest, the validated-table reader and the feature engines.

Person ids and categories are hashed and matched in Arrow (pandas would loop in Python).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def as_strings(s: pd.Series | None, n: int) -> pa.ChunkedArray:
    """A string column as a pyarrow array without copying (nulls kept; all null if absent)."""
    if s is None:
        return pa.chunked_array([pa.nulls(n, type=pa.large_string())])
    arr = pa.array(s, from_pandas=True)  # zero-copy for Arrow-backed strings
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    if pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_decode(arr)
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def take_strings(values: pa.ChunkedArray, idx: np.ndarray) -> pa.Array:
    """``values`` at positions ``idx`` as one contiguous array."""
    taken = values.take(pa.array(idx, type=pa.int64()))
    return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken


def codes_in(values: pa.ChunkedArray | pa.Array, vocabulary: pa.Array) -> np.ndarray:
    """Position of each value in ``vocabulary``; -1 when null or not in it."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    idx = pc.index_in(values, value_set=vocabulary.cast(values.type))
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def codes_by_runs(values: pa.ChunkedArray, vocabulary: pa.Array) -> np.ndarray:
    """Like :func:`codes_in`, looking up each run of equal values once.

    Event tables are usually grouped by person, so this hashes a few hundred thousand
    run heads instead of tens of millions of strings; any order is still correct.
    """
    n = len(values)
    if n < 2:
        return codes_in(values, vocabulary)
    same = pc.fill_null(pc.equal(values.slice(1), values.slice(0, n - 1)), False)
    heads = np.flatnonzero(np.concatenate([[True], ~same.to_numpy(zero_copy_only=False)]))
    if len(heads) > n // 4:  # hardly any runs: look everything up directly
        return codes_in(values, vocabulary)
    head_codes = codes_in(take_strings(values, heads), vocabulary)
    return np.repeat(head_codes, np.diff(np.append(heads, n)))


def unique_strings(*arrays: pa.ChunkedArray) -> pa.Array:
    """Distinct non-null strings of ``arrays`` in order of first appearance."""
    chunks = [c for a in arrays for c in a.chunks]
    return pc.unique(pa.chunked_array(chunks, type=pa.large_string())).drop_null()


def vocabulary_array(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.large_string())
