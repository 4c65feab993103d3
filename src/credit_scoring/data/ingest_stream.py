"""Ingest in bounded memory: each table validated and written one batch of rows at a time.

The row checks are those of :mod:`credit_scoring.data.ingest` (``_check_table``, run on one
batch of ``batch_rows`` data rows with its offset in the file), so the accepted rows, the
rejects with their reasons and source rows, and the data-quality report equal the in-memory
:func:`~credit_scoring.data.ingest.ingest` followed by
:func:`~credit_scoring.data.ingest.write_ingest_result` (tested). ``batch_rows=None`` runs
the same code with the whole file as one batch.

What needs the whole file is done with bounded memory:

- **repeated keys and exact duplicate rows** (first occurrence in the file wins): a first
  pass reads only the key columns, parses them, and spills ``(key, row)`` into hash buckets
  (Arrow IPC files); each bucket, ``batch_rows`` rows or so, is searched with the same
  sort-based ``_repeats`` as the in-memory path. Only the repeating rows are kept.
- **references** (person ids of profiles, (person, date) keys of outcomes): the accepted
  keys of those small tables are kept in memory (1 M people: tens of MB).
- **person order** (outcomes, events, contacts and the optional tables are written ordered
  by their person's row in profiles, stable, :mod:`credit_scoring.data.validated`): an
  external sort. Each accepted batch is spilled into ranges of person rows; each range, read
  back alone, is sorted stably and appended to the Parquet file.
- **the report**: counts, missing rates, time spans and people are accumulated per batch.

Nothing is written in place until every table is through: files are built in a staging
folder and moved into place at the end, so a fatal error leaves earlier outputs untouched.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from credit_scoring import io, schemas
from credit_scoring.data import ingest as core
from credit_scoring.data import validated

logger = logging.getLogger(__name__)

# Rows of a Parquet row group in the validated files (as io.write_parquet_ordered).
ROW_GROUP_ROWS = 1 << 20
# Bytes per CSV data row assumed when estimating a file's rows (sizes buckets and ranges
# only: a wrong guess costs memory or files, never correctness).
_CSV_BYTES_PER_ROW = 40
_CODE = "__person_row"
# Most spill files open at once per table (hash buckets or ranges of people).
MAX_SPILL_FILES = 512


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One input table file: its columns and an estimate of its data rows."""

    path: Path
    columns: list[str]
    est_rows: int

    @property
    def is_csv(self) -> bool:
        return self.path.suffix == ".csv"


def open_source(folder: str | Path, table: schemas.Table) -> Source:
    """Find the table's file and read its header (the same fatal errors as ``read_table``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise core.InputError(f"{folder}: input folder not found")
    path = io.find_table_file(folder, table.name)
    if path is None:
        raise core.InputError(
            f"{folder}: missing {table.name} table: expected "
            + " or ".join(f"{table.name}{s}" for s in io.TABLE_SUFFIXES)
        )
    if path.suffix == ".csv":
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh), None)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise core.InputError(f"{path}: unreadable CSV file: {core._first_line(err)}") from None
        if not header or header == [""]:
            raise core.InputError(f"{path}: empty file (no header row)")
        names, est = header, max(1, path.stat().st_size // _CSV_BYTES_PER_ROW)
    else:
        try:
            meta = pq.ParquetFile(path)
            names, est = meta.schema_arrow.names, meta.metadata.num_rows
        except (OSError, pa.ArrowException) as err:
            raise core.InputError(
                f"{path}: unreadable Parquet file: {core._first_line(err)}"
            ) from None
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise core.InputError(f"{path}: duplicate column '{dupes[0]}'")
    return Source(path, list(names), int(est))


def _record_batches(src: Source, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    if src.is_csv:
        reader = pacsv.open_csv(
            src.path,
            read_options=pacsv.ReadOptions(block_size=4 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(src.columns, pa.string()),
                null_values=list(core.NA_TOKENS),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                include_columns=columns or [],
            ),
        )
        yield from reader
    else:
        yield from pq.ParquetFile(src.path).iter_batches(batch_size=1 << 16, columns=columns)


def batches(
    src: Source, batch_rows: int | None, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The file's data rows in tables of ``batch_rows`` rows (the last one shorter); the
    whole file at once when ``batch_rows`` is None. An empty file gives one empty table.

    Raises:
        InputError: the file cannot be read (one line naming it).
    """
    kind = "CSV" if src.is_csv else "Parquet"
    try:
        if batch_rows is None:
            whole = core._read_csv(src.path) if src.is_csv else core._read_parquet(src.path)
            yield whole.select(columns) if columns is not None else whole
            return
        pending: list[pa.RecordBatch] = []
        size, schema, sent = 0, None, False
        for batch in _record_batches(src, columns):
            schema = batch.schema
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            size += batch.num_rows
            while size >= batch_rows:
                joined = pa.Table.from_batches(pending)
                yield joined.slice(0, batch_rows)
                sent = True
                rest = joined.slice(batch_rows)
                pending, size = rest.to_batches(), rest.num_rows
        if size or not sent:
            if pending:
                yield pa.Table.from_batches(pending)
            else:
                names = columns if columns is not None else src.columns
                yield (
                    schema.empty_table()
                    if schema is not None
                    else pa.table({n: pa.array([], pa.string()) for n in names})
                )
    except (OSError, pa.ArrowException) as err:
        raise core.InputError(
            f"{src.path}: unreadable {kind} file: {core._first_line(err)}"
        ) from None


def _frame(table: pa.Table) -> pd.DataFrame:
    """A raw batch as the frame ``read_table`` gives (Arrow-backed columns, no copy)."""
    return pd.DataFrame(
        {
            n: pd.Series(pd.arrays.ArrowExtensionArray(table.column(n)), copy=False)
            for n in table.column_names
        },
        copy=False,
    )


# --------------------------------------------------------------------------- repeats


def _parsed(table: pa.Table, spec: schemas.Table, names: list[str]) -> dict[str, pa.ChunkedArray]:
    """Columns parsed as the row checks parse them, in one type per kind for every batch."""
    out = {}
    for n in names:
        kind = spec.column(n).kind
        raw = table.column(n)  # already Arrow: no trip through pandas
        if pa.types.is_dictionary(raw.type):
            raw = pc.cast(raw, raw.type.value_type)
        values = core._chunked(core._parse(raw, kind))
        out[n] = values.cast(core._ARROW_KIND_TYPES[kind])
    return out


def _bucket_of(columns: dict[str, pa.ChunkedArray], n_buckets: int) -> np.ndarray:
    """A bucket per row from a hash of its values' text: equal rows share a bucket."""
    h = np.zeros(len(next(iter(columns.values()))), dtype=np.uint64)
    for values in columns.values():
        text = pc.fill_null(pc.cast(values, pa.large_string()), "\x00")
        part = pd.util.hash_array(np.asarray(text.to_numpy(zero_copy_only=False), dtype=object))
        h = (h * np.uint64(1_000_003)) ^ part
    return (h % np.uint64(n_buckets)).astype(np.int64)


def find_repeats(
    src: Source,
    spec: schemas.Table,
    names: list[str],
    batch_rows: int | None,
    spill: Path,
    exact: bool = False,
) -> core.Repeats:
    """Rows of the file repeating an earlier row in every column of ``names`` (parsed).

    ``exact``: missing values equal each other and each repeat's first equal row is kept
    (exact duplicate rows); else a row with a missing value repeats no one (keys). Memory:
    one batch, then one bucket of about ``batch_rows`` rows of these columns.
    """
    if batch_rows is None:
        table = next(batches(src, None, names))
        repeat, first = core._repeats(
            _parsed(table, spec, names), nulls_equal=exact, with_first=exact
        )
        rows = np.flatnonzero(repeat)
        return core.Repeats(rows, first[rows] if exact else None)
    n_buckets = min(MAX_SPILL_FILES, max(1, math.ceil(src.est_rows / batch_rows)))
    spill.mkdir(parents=True, exist_ok=True)
    writers: dict[int, Any] = {}
    offset = 0
    with contextlib.ExitStack() as stack:
        for table in batches(src, batch_rows, names):
            n = table.num_rows
            if n == 0:
                continue
            cols = _parsed(table, spec, names)
            bucket = _bucket_of(cols, n_buckets)
            order = np.argsort(bucket, kind="stable")
            cut = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
            part = pa.table(
                {f"c{i}": c for i, c in enumerate(cols.values())}
                | {"row": pa.array(np.arange(offset, offset + n, dtype=np.int64))}
            ).take(pa.array(order))
            for b in np.flatnonzero(np.diff(cut)):
                if b not in writers:
                    sink = stack.enter_context(pa.OSFile(str(spill / f"{b}.arrow"), "wb"))
                    writers[b] = stack.enter_context(pa.ipc.new_stream(sink, part.schema))
                writers[b].write_table(part.slice(cut[b], cut[b + 1] - cut[b]))
            offset += n
    rows, firsts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for b in sorted(writers):
        path = spill / f"{b}.arrow"
        with pa.OSFile(str(path), "rb") as fh:
            table = pa.ipc.open_stream(fh).read_all()
        cols = {c: table.column(c) for c in table.column_names if c != "row"}
        repeat, first = core._repeats(cols, nulls_equal=exact, with_first=exact)
        where = table.column("row").to_numpy()
        rows.append(where[repeat])
        if exact:
            firsts.append(where[first[repeat]])
        del table, cols
        path.unlink()
    all_rows = np.concatenate(rows)
    order = np.argsort(all_rows, kind="stable")
    return core.Repeats(all_rows[order], np.concatenate(firsts)[order] if exact else None)


# --------------------------------------------------------------------------- report


@dataclass
class _Tally:
    """A table's report, accumulated batch by batch (equal to ``_table_report`` and the
    summaries of the in-memory path)."""

    name: str
    source: str
    n_people: int
    label: str = schemas.LABEL  # outcomes' label column, as named in the file
    input_rows: int = 0
    accepted: int = 0
    reasons: Counter = field(default_factory=Counter)
    missing: Counter = field(default_factory=Counter)
    unparseable: dict[str, tuple[int, int]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    derived: str | None = None
    columns: list[str] = field(default_factory=list)
    by_value: Counter = field(default_factory=Counter)
    first_time: Any = None
    last_time: Any = None
    people: np.ndarray | None = None
    balance_rows: int = 0
    negative: int = 0
    dates: dict[Any, list[int]] = field(default_factory=dict)

    def add(self, checked: Any, accepted: pd.DataFrame, codes: np.ndarray | None) -> None:
        if self.input_rows == 0 and not self.columns:
            self.ignored, self.absent = checked.ignored_columns, checked.absent_columns
            self.derived, self.columns = checked.derived_id, list(accepted.columns)
        self.input_rows += checked.n_rows
        self.accepted += len(accepted)
        self.reasons.update(checked.rejecter.counts())
        for c, (bad, present) in checked.unparseable.items():
            old = self.unparseable.get(c, (0, 0))
            self.unparseable[c] = (old[0] + bad, old[1] + present)
        for c in accepted.columns:
            self.missing[c] += int(accepted[c].isna().sum())
        if self.name == "events":
            self._span(accepted["event_time"])
            self.by_value.update(accepted["event_type"].value_counts().to_dict())
            self._people(codes)
        elif self.name == "transactions":
            self._span(accepted["transaction_time"])
            self.by_value.update(accepted["kind"].fillna("other").value_counts().to_dict())
            self._people(codes)
            balance = accepted["balance"].dropna()
            self.balance_rows += len(balance)
            self.negative += int((balance < 0).sum())
        elif self.name == "outcomes":
            for date, grp in accepted.groupby("observation_date", sort=False):
                labelled = grp[self.label].notna()
                tally = self.dates.setdefault(date, [0, 0, 0])
                tally[0] += len(grp)
                tally[1] += int(labelled.sum())
                tally[2] += int(grp.loc[labelled, self.label].sum())

    def _span(self, times: pd.Series) -> None:
        lo, hi = times.min(), times.max()
        if not pd.isna(lo):
            self.first_time = lo if self.first_time is None else min(self.first_time, lo)
            self.last_time = hi if self.last_time is None else max(self.last_time, hi)

    def _people(self, codes: np.ndarray | None) -> None:
        if self.people is None:
            self.people = np.zeros(self.n_people, dtype=bool)
        if codes is not None and len(codes):
            self.people[codes] = True

    def table_report(self) -> dict[str, Any]:
        n = self.accepted
        return {
            "source_file": self.source,
            "input_rows": self.input_rows,
            "accepted": n,
            "rejected": self.input_rows - n,
            "rejected_by_reason": dict(
                sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            ),
            "missing_rate": (
                dict.fromkeys(self.columns)
                if n == 0
                else {c: round(float(self.missing[c] / n), 6) for c in self.columns}
            ),
            "ignored_columns": self.ignored,
            "absent_optional_columns": self.absent,
            "present": True,
        }

    def warnings(self, spec: schemas.Table) -> list[str]:
        return core._table_warnings(spec, self.source, self.ignored, self.unparseable, self.derived)

    def summary(self) -> dict[str, Any]:
        people = int(self.people.sum()) if self.people is not None else 0
        span = (core._date(self.first_time), core._date(self.last_time))
        if self.name == "events":
            return {
                "by_type": {t: int(self.by_value.get(t, 0)) for t in schemas.EVENT_TYPES},
                "first_event_time": span[0],
                "last_event_time": span[1],
                "people_with_events": people,
            }
        if self.name == "transactions":
            rows = self.balance_rows
            return {
                "by_kind": {k: int(self.by_value.get(k, 0)) for k in schemas.TRANSACTION_KINDS},
                "first_transaction_time": span[0],
                "last_transaction_time": span[1],
                "people_with_transactions": people,
                "rows_with_balance": rows,
                "negative_balance_share": round(float(self.negative / rows), 6) if rows else None,
            }
        out = {}
        for date in sorted(self.dates):
            rows, labelled, total = self.dates[date]
            rate = round(float(total / labelled), 6) if labelled else None
            out[pd.Timestamp(date).strftime("%Y-%m-%d")] = {
                "rows": rows,
                "labelled": labelled,
                "default_rate": rate,
            }
        return {"observation_dates": out}


# --------------------------------------------------------------------------- writing


class _PersonSort:
    """External stable sort of accepted rows by their person's row in profiles: batches are
    spilled into ranges of person rows, then each range is sorted alone and appended."""

    def __init__(self, spill: Path, n_people: int, n_ranges: int) -> None:
        self.spill, self.n_people, self.n_ranges = spill, max(n_people, 1), max(n_ranges, 1)
        spill.mkdir(parents=True, exist_ok=True)
        self.stack = contextlib.ExitStack()
        self.writers: dict[int, Any] = {}

    def add(self, table: pa.Table, codes: np.ndarray) -> None:
        ranges = codes * self.n_ranges // self.n_people
        table = table.append_column(_CODE, pa.array(codes, pa.int64()))
        if len(codes) > 1 and bool((codes[1:] < codes[:-1]).any()):  # else in order already
            order = np.argsort(ranges, kind="stable")
            ranges, table = ranges[order], table.take(pa.array(order))
        cut = np.searchsorted(ranges, np.arange(self.n_ranges + 1))
        for r in np.flatnonzero(np.diff(cut)):
            if r not in self.writers:
                sink = self.stack.enter_context(pa.OSFile(str(self.spill / f"{r}.arrow"), "wb"))
                self.writers[r] = self.stack.enter_context(pa.ipc.new_stream(sink, table.schema))
            self.writers[r].write_table(table.slice(cut[r], cut[r + 1] - cut[r]))

    def drain(self, writer: pq.ParquetWriter) -> None:
        self.stack.close()
        for r in sorted(self.writers):
            path = self.spill / f"{r}.arrow"
            with pa.OSFile(str(path), "rb") as fh:
                table = pa.ipc.open_stream(fh).read_all()
            codes = table.column(_CODE).to_numpy()
            if len(codes) > 1 and bool((codes[1:] < codes[:-1]).any()):
                table = table.take(pc.sort_indices(table.column(_CODE)))  # stable
            writer.write_table(table.drop_columns([_CODE]), ROW_GROUP_ROWS)
            del table
            path.unlink()


class _Writer:
    """A Parquet file written batch by batch, its schema taken from the first batch."""

    def __init__(self, path: Path) -> None:
        self.path, self.writer, self.schema = path, None, None

    def arrow(self, df: pd.DataFrame) -> pa.Table:
        if self.schema is None:
            self.schema = pa.Schema.from_pandas(df, preserve_index=False)
        return pa.Table.from_pandas(df, schema=self.schema, preserve_index=False)

    def open(self, schema: pa.Schema) -> pq.ParquetWriter:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, schema)
        return self.writer

    def write(self, df: pd.DataFrame) -> None:
        table = self.arrow(df)
        self.open(table.schema).write_table(table, ROW_GROUP_ROWS)

    def close(self, empty: pd.DataFrame) -> None:
        if self.writer is None:
            empty.to_parquet(self.path, index=False)
        else:
            self.writer.close()


# --------------------------------------------------------------------------- ingest


def ingest_to_folder(
    folder: str | Path,
    validated_dir: str | Path,
    rejects_dir: str | Path,
    report_path: str | Path,
    label_column: str = schemas.LABEL,
    horizon_months: int = 12,
    batch_rows: int | None = 1_000_000,
) -> dict[str, Any]:
    """Validate ``folder``'s tables a batch of ``batch_rows`` rows at a time and write what
    ``write_ingest_result(ingest(folder))`` writes; returns the data-quality report.

    Raises:
        InputError: as :func:`credit_scoring.data.ingest.ingest` (nothing is written then).
    """
    if batch_rows is not None and batch_rows < 1:
        raise ValueError("batch_rows must be >= 1 (or None for whole tables)")
    validated_dir, rejects_dir = Path(validated_dir), Path(rejects_dir)
    validated_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".ingest-", dir=validated_dir.parent))
    try:
        report, written = _ingest(Path(folder), stage, label_column, horizon_months, batch_rows)
        rejects_dir.mkdir(parents=True, exist_ok=True)
        for name in written:
            os.replace(
                stage / "validated" / f"{name}.parquet", validated.table_path(validated_dir, name)
            )
            os.replace(stage / "rejects" / f"{name}.parquet", rejects_dir / f"{name}.parquet")
        io.write_json(report, report_path)
        return report
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _sources(folder: Path) -> dict[str, Source]:
    out = {}
    for name, table in schemas.ALL_TABLES.items():
        if name in schemas.OPTIONAL_TABLES and io.find_table_file(folder, name) is None:
            continue
        out[name] = open_source(folder, table)
    return out


def _has_rows(src: Source | None) -> bool:
    if src is None:
        return False
    if not src.is_csv:
        return src.est_rows > 0
    return next(batches(src, 1), pa.table({})).num_rows > 0


def _ingest(
    folder: Path, stage: Path, label_column: str, horizon_months: int, batch_rows: int | None
) -> tuple[dict[str, Any], list[str]]:
    sources = _sources(folder)
    (stage / "validated").mkdir()
    (stage / "rejects").mkdir()
    tables: dict[str, Any] = {}
    warnings: list[str] = []
    summaries: dict[str, Any] = {}
    profile_ids = None
    outcome_keys = None
    has_transactions = _has_rows(sources.get("transactions"))
    for name in core._TABLE_ORDER:
        spec = schemas.ALL_TABLES[name]
        check_spec = schemas.outcomes_table(label_column) if name == "outcomes" else spec
        out_path = stage / "validated" / f"{name}.parquet"
        rej_path = stage / "rejects" / f"{name}.parquet"
        if name not in sources:
            io.write_parquet(schemas.empty_table(spec), out_path)
            io.write_parquet(core._empty_rejects(spec), rej_path)
            tables[name] = core._absent_report()
            continue
        src = sources[name]
        tally, keys = _one_table(
            name,
            check_spec,
            src,
            stage,
            batch_rows,
            profile_ids,
            outcome_keys if name == "applications" else None,
            has_transactions,
            label_column,
        )
        tables[name] = tally.table_report()
        table_warnings = tally.warnings(check_spec)
        warnings += table_warnings
        if name == "profiles":
            profile_ids = keys
            if tally.accepted == 0:
                warnings.append(f"{src.path}: no profile accepted, so every other row is rejected")
        if name == "outcomes":
            outcome_keys = keys
            if label_column in tally.absent:
                warnings.append(
                    f"{src.path}: no label column '{label_column}' (data.label.column); "
                    "every row is unlabelled (to be scored only)"
                )
        if name in ("events", "outcomes", "transactions"):
            summaries[name] = tally.summary()
        for w in table_warnings:
            logger.warning(w)
    if not tables.get("transactions", {}).get("accepted"):
        summaries.pop("transactions", None)
    report = core.quality_report(tables, label_column, horizon_months, summaries, warnings)
    return report, list(schemas.ALL_TABLES)


def _one_table(
    name: str,
    spec: schemas.Table,
    src: Source,
    stage: Path,
    batch_rows: int | None,
    profile_ids: pa.Array | None,
    outcome_keys: pa.Array | None,
    has_transactions: bool,
    label_column: str,
) -> tuple[_Tally, pa.Array | None]:
    """Check and write one table batch by batch; returns its tally and the accepted keys
    later tables refer to (profiles' person ids, outcomes' row keys)."""
    source = str(src.path)
    missing = [c for c in spec.required_columns if c not in src.columns]
    if missing:  # before any row is read, as the in-memory path
        names = ", ".join(f"'{c}'" for c in missing)
        plural = "s" if len(missing) > 1 else ""
        raise core.InputError(f"{source}: missing required column{plural} {names}")
    spill = stage / "spill" / name
    derived = core.DERIVED_ID_COLUMNS.get(name)
    if derived is not None and derived not in src.columns:
        names = [c for c in spec.column_names if c in src.columns and c != derived]
        repeats = find_repeats(src, spec, names, batch_rows, spill / "repeats", exact=True)
    else:
        repeats = find_repeats(src, spec, list(spec.key), batch_rows, spill / "repeats")
    n_people = 0 if profile_ids is None else len(profile_ids)
    tally = _Tally(name, source, n_people, label_column)
    ordered = name in validated.PERSON_ORDERED
    n_ranges = (
        1 if batch_rows is None else min(MAX_SPILL_FILES, math.ceil(src.est_rows / batch_rows))
    )
    sorter = _PersonSort(spill / "order", n_people, n_ranges) if ordered else None
    out = _Writer(stage / "validated" / f"{name}.parquet")
    rejects = _Writer(stage / "rejects" / f"{name}.parquet")
    keys: list[pa.ChunkedArray] = []
    empty: dict[str, pd.DataFrame] = {}  # the first batch's frames, emptied: an empty file's
    offset = 0
    for table in batches(src, batch_rows):
        checked = core._check_table(
            spec,
            _frame(table),
            source,
            profile_ids,
            may_be_empty=name == "events" and has_transactions,
            outcome_keys=outcome_keys,
            row_offset=offset,
            repeats=repeats,
        )
        del table
        rejected = core._rejects_frame(checked)
        empty.setdefault("rejects", rejected.iloc[:0])
        if len(rejected):
            rejects.write(rejected)
        checked.raw = None
        accepted = core._accepted_frame(checked)
        codes = None
        if profile_ids is not None:
            codes = validated.person_codes(accepted["person_id"], profile_ids)
        tally.add(checked, accepted, codes)  # before the label is renamed, as in memory
        if name == "outcomes":
            accepted = accepted.rename(columns={label_column: schemas.LABEL})
        empty.setdefault("accepted", accepted.iloc[:0])
        core.check_table_contract(name, accepted, profile_ids if name != "profiles" else None)
        if name == "profiles":
            keys.append(core._as_arrow(accepted["person_id"]))
        elif name == "outcomes":
            keys.append(
                core._row_key_strings(
                    core._as_arrow(accepted["person_id"]),
                    pa.chunked_array([pa.array(accepted[schemas.DATE])]),
                )
            )
        if len(accepted):
            if sorter is not None:
                sorter.add(out.arrow(accepted), codes)
            else:
                out.write(accepted)
        elif out.schema is None:
            out.arrow(accepted)
        offset += checked.n_rows
        del checked, accepted, rejected
    if sorter is not None:
        if sorter.writers:
            sorter.drain(out.open(out.schema))
        else:
            sorter.stack.close()
    out.close(empty["accepted"])
    rejects.close(empty["rejects"])
    shutil.rmtree(spill, ignore_errors=True)
    if name not in ("profiles", "outcomes"):
        return tally, None
    joined = pa.chunked_array(
        [c for k in keys for c in k.chunks], type=keys[0].type if keys else pa.large_string()
    )
    return tally, joined.cast(pa.large_string()).combine_chunks()
