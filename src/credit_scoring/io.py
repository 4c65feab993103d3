"""Thin file I/O at the edges: atomic writes and table discovery.

Every artefact is written to a temporary file in the destination folder and moved
into place with ``os.replace`` (atomic on POSIX), so a crash never leaves a
half-written file where a later stage or DVC would read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(path: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame to Parquet atomically (index dropped)."""
    return write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically, pretty-printed and key-sorted for readable diffs."""

    def _write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    return write_atomic(path, _write)


def find_table_file(folder: str | Path, table: str) -> Path | None:
    """Return ``folder/<table>.parquet`` or ``folder/<table>.csv`` if present (Parquet first)."""
    folder = Path(folder)
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def write_parquet_ordered(
    df: pd.DataFrame, order: Any, path: str | Path, rows_per_group: int = 1 << 20
) -> Path:
    """Write ``df.iloc[order]`` to Parquet atomically, one row group at a time.

    Only one row group of the reordered rows exists at once, so reordering a table of
    tens of millions of rows costs a row group of memory, not a copy of the table.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def _write(tmp: Path) -> None:
        schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
        with pq.ParquetWriter(tmp, schema) as writer:
            for start in range(0, len(order), rows_per_group):
                part = df.iloc[order[start : start + rows_per_group]]
                writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))

    return write_atomic(path, _write)
