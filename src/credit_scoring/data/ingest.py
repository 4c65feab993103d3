"""The validation boundary: a folder of user (or simulated) files -> validated tables.

``ingest(folder)`` reads the four tables of :mod:`credit_scoring.schemas` (CSV or
Parquet) and the optional ones that are present (``transactions``, ``applications``,
``profile_history``), checks every row against the contract and returns the accepted rows
in the canonical dtypes, the rejected rows with a reason each, and a data-quality report.
Every rule comes from ``schemas.py``; nothing here restates a vocabulary or a bound. The
label is read from the column the user names (``data.label.column``) and written as
:data:`credit_scoring.schemas.LABEL`.

Two kinds of problem:

- **fatal** (:class:`InputError`, one line naming the file and column): the folder or
  a table file is missing, a file cannot be read, a required column is missing, or
  profiles/outcomes/events has no data rows. Nothing is written.
- **row-level** (a reject): a value that does not parse for its column's kind, a
  missing value in a non-nullable column, a value outside min/max or the column's
  vocabulary, an event missing a field its type needs or with a category its type does
  not allow, a contact pointing at the person themself, a ``person_id`` not among the
  accepted profiles, a repeated key. A row gets the *first* reason found, in the order
  the rules are listed in docs/input-format.md, so reasons can be counted by category.

Invariant: for every table, input rows = accepted rows + rejected rows.

The row checks are vectorised (Arrow compute kernels and numpy masks, with a
per-distinct-value fallback only for columns that contain a bad value), so tens of
millions of events validate in minutes; reject messages are formatted once per distinct
bad value, and only for rejected rows.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pda
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from credit_scoring import io, schemas
from credit_scoring.artefacts import ArtefactError
from credit_scoring.data import validated

logger = logging.getLogger(__name__)

# Cells that mean "missing" in a CSV file (pandas' defaults, plus the empty cell).
NA_TOKENS: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "-NaN",
    "-nan",
    "NULL",
    "null",
    "None",
    "<NA>",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "1.#IND",
    "1.#QNAN",
)
# Spellings accepted for a bool column, compared case-insensitively.
BOOL_TOKENS: dict[str, bool] = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
}
# Tables that must have at least one data row (contacts may be empty; events may be empty
# when transactions has rows).
NON_EMPTY_TABLES: tuple[str, ...] = ("profiles", "outcomes", "events")
# Columns added to every rejects table.
REJECT_COLUMNS: tuple[str, ...] = ("reject_reason", "source_file", "source_row")
# Prefix of the event_id derived from the data row number when the file has none.
DERIVED_EVENT_ID_PREFIX = "row-"
# Tables whose id column is derived from the data row number when the file has none.
DERIVED_ID_COLUMNS: dict[str, str] = {"events": "event_id", "transactions": "transaction_id"}
# Allowed-value columns whose reject reads "unknown <column> '<value>'".
_UNKNOWN_VALUE_COLUMNS: frozenset[str] = frozenset({"event_type"})
# Order the tables are validated in: profiles first, the others refer to it.
_TABLE_ORDER: tuple[str, ...] = tuple(schemas.ALL_TABLES)

# Rows compared at a time when looking for repeated keys in sorted order.
_SORT_BLOCK = 4_000_000

_ARROW_KIND_TYPES: dict[str, pa.DataType] = {
    "str": pa.large_string(),
    "date": pa.timestamp("ns"),
    "datetime": pa.timestamp("ns"),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


class InputError(ArtefactError):
    """A fatal problem with the input files; the message is one line naming file and column.

    A kind of :class:`~credit_scoring.artefacts.ArtefactError` (so a ``ValueError``): the
    input tables are the pipeline's first artefacts."""


@dataclass(frozen=True)
class IngestResult:
    """What ingest produces: accepted data, rejected rows and the data-quality report.

    ``data`` holds the accepted rows in the canonical dtypes with every column of the
    contract present; ``rejects`` holds, per table, the rejected rows' original values
    as strings plus ``reject_reason``, ``source_file`` and ``source_row`` (1-based data
    row number in the file); ``report`` is JSON-serialisable.
    """

    data: schemas.BehaviourData
    rejects: dict[str, pd.DataFrame]
    report: dict


# --------------------------------------------------------------------------- reading


def read_table(folder: str | Path, table: schemas.Table) -> tuple[pd.DataFrame, Path]:
    """Find ``<table>.parquet`` or ``<table>.csv`` in ``folder`` and read it raw.

    CSV cells are read as strings (``NA_TOKENS`` become missing); Parquet columns keep
    their stored types. Columns are Arrow-backed (``pd.ArrowDtype``), without copying.

    Raises:
        InputError: the folder or file is missing, or the file cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: input folder not found")
    path = io.find_table_file(folder, table.name)
    if path is None:
        raise InputError(
            f"{folder}: missing {table.name} table: expected "
            + " or ".join(f"{table.name}{s}" for s in io.TABLE_SUFFIXES)
        )
    arrow = _read_csv(path) if path.suffix == ".csv" else _read_parquet(path)
    names = arrow.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: duplicate column '{dupes[0]}'")
    frame = pd.DataFrame(
        {n: pd.Series(pd.arrays.ArrowExtensionArray(arrow.column(n)), copy=False) for n in names},
        copy=False,
    )
    return frame, path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _read_csv(path: Path) -> pa.Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: unreadable CSV file: {_first_line(err)}") from None
    if not header or header == [""]:
        raise InputError(f"{path}: empty file (no header row)")
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=list(NA_TOKENS),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"{path}: unreadable CSV file: {_first_line(err)}") from None


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"{path}: unreadable Parquet file: {_first_line(err)}") from None


# --------------------------------------------------------------------------- parsing


def _as_arrow(s: pd.Series) -> pa.ChunkedArray:
    """A column as an Arrow chunked array, zero-copy for Arrow-backed columns."""
    try:
        arr = pa.array(s, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        arr = pa.array(s.astype("string"), from_pandas=True)  # mixed Python objects
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr], type=arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    return arr


def _np_mask(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow array as a numpy bool array, missing counted as False."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _as_strings(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if _is_string(arr.type):
        return arr
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")
    return pc.cast(arr, pa.string())


def _by_distinct(strings: pa.ChunkedArray, parse: Callable[[pd.Series], pd.Series]) -> pa.Array:
    """Apply a pandas parser once per distinct value and spread the result to every row."""
    codes, uniques = pd.factorize(pd.Series(pd.arrays.ArrowExtensionArray(strings)))
    parsed = parse(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    # one trailing null so that code -1 (missing) maps to missing
    values = pa.array(pd.concat([parsed, pd.Series([None], dtype=parsed.dtype)]), from_pandas=True)
    return values.take(pa.array(np.where(codes < 0, len(parsed), codes)))


def _cast_or(
    strings: pa.ChunkedArray, to: pa.DataType, slow: Callable[[pa.ChunkedArray], Any]
) -> pa.ChunkedArray:
    """Arrow's vectorised cast, chunk by chunk; a chunk holding any value the cast refuses
    is parsed by ``slow`` instead (which turns bad values into missing ones), so the slow
    path only ever sees the few chunks with a bad value in them."""
    chunks = []
    for chunk in strings.chunks:
        try:
            chunks.append(pc.cast(chunk, to))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed = slow(pa.chunked_array([chunk], type=chunk.type))
            chunks.extend(_chunked(pc.cast(parsed, to)).chunks)
    return pa.chunked_array(chunks, type=to)


def _numbers_by_distinct(strings: pa.ChunkedArray) -> pa.Array:
    return _by_distinct(strings, lambda u: pd.to_numeric(u, errors="coerce").astype("float64"))


def _whole_numbers(numbers: pa.ChunkedArray) -> pa.ChunkedArray:
    """Integers from floats: values that are not whole (or too large to be exact) -> missing."""
    numbers = pc.cast(numbers, pa.float64())
    whole = pc.and_(pc.is_finite(numbers), pc.equal(pc.floor(numbers), numbers))
    ok = pc.and_(whole, pc.less_equal(pc.abs(numbers), 2.0**53))
    return pc.cast(pc.if_else(ok, numbers, pa.scalar(None, pa.float64())), pa.int64())


def _parse_int(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_integer(arr.type):
        return pc.cast(arr, pa.int64())
    if _is_float(arr.type):
        return _whole_numbers(arr)
    # "5" casts directly; "5.0" (whole) and bad values take the slow path
    return _cast_or(_as_strings(arr), pa.int64(), lambda c: _whole_numbers(_numbers_by_distinct(c)))


def _is_float(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_decimal(t)


def _parse_float(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_integer(arr.type) or _is_float(arr.type):
        numbers = pc.cast(arr, pa.float64())
    else:
        numbers = _cast_or(_as_strings(arr), pa.float64(), _numbers_by_distinct)
    # NaN and +-inf in a present cell are not usable numbers
    return _null_where(pc.invert(pc.is_finite(numbers)), numbers)


def _parse_iso_distinct(u: pd.Series) -> pd.Series:
    iso = u.str.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)?")
    out = pd.to_datetime(u.where(iso.fillna(False).astype(bool)), format="ISO8601", errors="coerce")
    return out.astype("datetime64[ns]")


def _parse_datetime(arr: pa.ChunkedArray, date_only: bool) -> pa.ChunkedArray:
    ns = pa.timestamp("ns")
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is not None:  # keep the wall-clock time, drop the zone
            arr = pc.local_timestamp(arr)
        out = pc.cast(arr, ns, safe=False)
    elif pa.types.is_date(arr.type):
        out = pc.cast(pc.cast(arr, pa.date32()), ns)
    else:
        out = _cast_or(_as_strings(arr), ns, lambda c: _by_distinct(c, _parse_iso_distinct))
    if date_only:  # a date column takes whole days only
        out = _null_where(pc.not_equal(pc.floor_temporal(out, unit="day"), out), out)
    return out


def _parse_bool(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_boolean(arr.type):
        return arr
    lowered = pc.utf8_lower(_as_strings(arr))
    keys = pa.array(list(BOOL_TOKENS), pa.string())
    values = pa.array([*BOOL_TOKENS.values(), None], pa.bool_())
    idx = pc.index_in(lowered, value_set=pc.cast(keys, lowered.type))
    return values.take(pc.fill_null(idx, len(BOOL_TOKENS)))


def _parse_str(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    strings = _as_strings(arr)
    # an empty string is a missing value (CSV empties are missing already)
    return _null_where(pc.equal(strings, ""), strings)


def _null_where(mask: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """``values`` with missing where ``mask`` is true; no copy when the mask is all false."""
    if not pc.any(mask).as_py():
        return values
    return pc.if_else(mask, pa.scalar(None, values.type), values)


def _parse(arr: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    """Parse a raw column to its kind's Arrow type; unparseable values become missing."""
    if kind == "str":
        return _parse_str(arr)
    if kind == "float":
        return _parse_float(arr)
    if kind == "int":
        return _parse_int(arr)
    if kind in ("date", "datetime"):
        return _parse_datetime(arr, date_only=kind == "date")
    if kind == "bool":
        return _parse_bool(arr)
    raise ValueError(f"unknown column kind {kind!r}")


def _chunked(arr: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr], type=arr.type)


def _to_canonical(arr: pa.ChunkedArray, kind: str) -> Any:
    """Arrow values of a kind -> the pandas array of the canonical dtype."""
    if kind == "str":
        return pd.arrays.ArrowStringArray(pc.cast(arr, pa.large_string()))
    if kind in ("float", "date", "datetime"):
        return arr.to_numpy()  # nulls -> NaN / NaT
    missing = _np_mask(arr.is_null())
    if kind == "int":
        values = np.asarray(pc.fill_null(arr, 0).to_numpy(), dtype=np.int64)
        return pd.arrays.IntegerArray(values, missing)
    values = np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)
    return pd.arrays.BooleanArray(values, missing)


# --------------------------------------------------------------------------- reasons


def _fmt_bound(b: float) -> str:
    return str(int(b)) if float(b).is_integer() else repr(float(b))


def _fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "<missing>"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d") if v == v.normalize() else v.isoformat(sep=" ")
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v) if isinstance(v, float | int) and not isinstance(v, bool) else str(v)


def _describe_values(
    values: pa.ChunkedArray, template: Callable[[str], str], as_strings: bool = False
) -> Callable[[np.ndarray], pa.Array]:
    """Messages for rows, formatted once per distinct value: ``template(value_text)``.

    Lazy: nothing is computed unless the rule rejects some row. ``as_strings`` shows
    the original cell as text instead of the parsed value.
    """

    def describe(rows: np.ndarray) -> pa.Array:
        taken = values.take(pa.array(rows))
        if as_strings:
            taken = _as_strings(taken)
        codes, uniques = pd.factorize(pd.Series(taken.to_pandas(), dtype=object))
        texts = [template(_fmt_value(u)) for u in uniques] + [template("<missing>")]
        return pa.array(texts, pa.string()).take(pa.array(np.where(codes < 0, len(uniques), codes)))

    return describe


def _describe_constant(message: str) -> Callable[[np.ndarray], pa.Array]:
    def describe(rows: np.ndarray) -> pa.Array:
        return pa.array([message], pa.string()).take(pa.array(np.zeros(len(rows), np.int64)))

    return describe


@dataclass(frozen=True)
class _Rule:
    category: str
    describe: Callable[[np.ndarray], pa.Array]


class _Rejecter:
    """Records the first failing rule per row as a small integer code (0 = accepted)."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int16)
        self.rules: list[_Rule] = []

    def flag(self, mask: np.ndarray, category: str, describe: Callable[[np.ndarray], pa.Array]):
        hit = mask & (self.code == 0)
        if hit.any():
            self.rules.append(_Rule(category, describe))
            self.code[hit] = len(self.rules)

    @property
    def open(self) -> np.ndarray:
        """Rows not rejected so far."""
        return self.code == 0

    def reasons(self) -> tuple[np.ndarray, pa.Array]:
        """Rejected row positions (ascending) and their reason messages."""
        rows = np.flatnonzero(self.code)
        if len(rows) == 0:
            return rows, pa.array([], pa.string())
        codes = self.code[rows]
        order = np.argsort(codes, kind="stable")
        parts = []
        for k, rule in enumerate(self.rules, start=1):
            sel = rows[codes == k]
            if len(sel):
                parts.append(rule.describe(sel).cast(pa.string()))
        messages = pa.concat_arrays(parts)  # grouped by rule, rows ascending within a rule
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return rows, messages.take(pa.array(inverse))

    def release(self) -> None:
        """Drop the columns the messages were built from (only the categories stay)."""
        self.rules = [_Rule(r.category, _describe_constant(r.category)) for r in self.rules]

    def counts(self) -> dict[str, int]:
        per_code = np.bincount(self.code, minlength=len(self.rules) + 1)
        out: dict[str, int] = {}
        for k, rule in enumerate(self.rules, start=1):
            out[rule.category] = out.get(rule.category, 0) + int(per_code[k])
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


# --------------------------------------------------------------------------- validation


@dataclass
class _Checked:
    """One table after the row checks: parsed columns and the reject codes."""

    table: schemas.Table
    source: str
    raw: pd.DataFrame | None  # dropped once the rejects are taken, to free memory
    n_rows: int
    parsed: dict[str, pa.ChunkedArray]
    rejecter: _Rejecter
    ignored_columns: list[str]
    absent_columns: list[str]
    warnings: list[str]  # of this batch, in order; see :func:`_table_warnings` for a table's
    row_offset: int = 0  # data rows of the file before this batch
    unparseable: dict[str, tuple[int, int]] | None = None  # column -> (bad, present) counts
    derived_id: str | None = None  # the id column derived from the row number, if any


def _check_columns(
    raw: pd.DataFrame, table: schemas.Table
) -> tuple[dict[str, pa.ChunkedArray], _Rejecter, dict[str, tuple[int, int]]]:
    """Parse each column and flag unparseable, missing, out-of-range and unknown values.

    Also returns, per column in the file, (unparseable, present) counts: a column whose
    every value is unparseable gets a warning once the whole table is counted."""
    n = len(raw)
    rejecter = _Rejecter(n)
    parsed: dict[str, pa.ChunkedArray] = {}
    stats: dict[str, tuple[int, int]] = {}
    for col in table.columns:
        if col.name not in raw.columns:
            parsed[col.name] = pa.chunked_array([pa.nulls(n, _ARROW_KIND_TYPES[col.kind])])
            continue
        original = _as_arrow(raw[col.name])
        values = _chunked(_parse(original, col.kind))
        parsed[col.name] = values
        present = _np_mask(pc.is_valid(original))
        if _is_string(original.type):
            present &= ~_np_mask(pc.equal(original, ""))
        bad = present & _np_mask(values.is_null())
        name = col.name
        stats[name] = (int(bad.sum()), int(present.sum()))
        rejecter.flag(
            bad,
            f"unparseable {name}",
            _describe_values(
                original, lambda v, name=name: f"unparseable {name} '{v}'", as_strings=True
            ),
        )
        if not col.nullable:
            rejecter.flag(~present, f"missing {name}", _describe_constant(f"missing {name}"))
        if col.min is not None:
            low = _np_mask(pc.less(values, pa.scalar(col.min, pa.float64())))
            if col.min == 0:
                category, tmpl = f"negative {name}", (lambda v, name=name: f"negative {name} {v}")
            else:
                lo = _fmt_bound(col.min)
                category = f"{name} below min"
                tmpl = lambda v, name=name, lo=lo: f"{name} {v} below min {lo}"  # noqa: E731
            rejecter.flag(low, category, _describe_values(values, tmpl))
        if col.max is not None:
            high = _np_mask(pc.greater(values, pa.scalar(col.max, pa.float64())))
            hi = _fmt_bound(col.max)
            rejecter.flag(
                high,
                f"{name} above max",
                _describe_values(values, lambda v, name=name, hi=hi: f"{name} {v} above max {hi}"),
            )
        if col.allowed is not None:
            known = pc.is_in(values, value_set=pa.array(col.allowed, values.type))
            outside = _np_mask(values.is_valid()) & ~_np_mask(known)
            if name in _UNKNOWN_VALUE_COLUMNS:
                category = f"unknown {name}"
                tmpl = lambda v, name=name: f"unknown {name} '{v}'"  # noqa: E731
            else:
                category = f"{name} not in vocabulary"
                tmpl = lambda v, name=name: f"{name} '{v}' not in vocabulary"  # noqa: E731
            rejecter.flag(outside, category, _describe_values(values, tmpl))
    return parsed, rejecter, stats


def _table_warnings(
    table: schemas.Table,
    source: str,
    ignored: list[str],
    unparseable: dict[str, tuple[int, int]],
    derived_id: str | None,
) -> list[str]:
    """A table's warnings, in a fixed order, from its (whole-table) counts."""
    warnings = [f"{source}: unknown column '{c}' ignored" for c in ignored]
    for col in table.columns:
        bad, present = unparseable.get(col.name, (0, 0))
        if bad and bad == present:
            warnings.append(
                f"{source}: every value of column '{col.name}' is unparseable as {col.kind}; "
                "all rows with a value there are rejected"
            )
    if derived_id is not None:
        warnings.append(
            f"{source}: no {derived_id} column; {derived_id} derived from the data row number "
            f"('{DERIVED_EVENT_ID_PREFIX}<row>') and exact duplicate rows rejected"
        )
    return warnings


def _check_events(parsed: dict[str, pa.ChunkedArray], rejecter: _Rejecter) -> None:
    """Per event type: the fields the type needs, and the categories it allows."""
    event_type = parsed["event_type"]
    for etype, fields in schemas.EVENT_REQUIRED_FIELDS.items():
        is_type = _np_mask(pc.equal(event_type, pa.scalar(str(etype), event_type.type)))
        if not is_type.any():
            continue
        for f in fields:
            missing = is_type & _np_mask(parsed[f].is_null())
            message = f"missing {f} for {etype}"
            rejecter.flag(missing, message, _describe_constant(message))
    category = parsed["category"]
    for etype, allowed in schemas.EVENT_CATEGORIES.items():
        is_type = _np_mask(pc.equal(event_type, pa.scalar(str(etype), event_type.type)))
        known = _np_mask(pc.is_in(category, value_set=pa.array(allowed, category.type)))
        outside = is_type & _np_mask(category.is_valid()) & ~known
        rejecter.flag(
            outside,
            f"category not allowed for {etype}",
            _describe_values(category, lambda v, t=etype: f"category '{v}' not allowed for {t}"),
        )


def _repeats(
    columns: dict[str, pa.ChunkedArray], nulls_equal: bool = False, with_first: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows equal to an earlier row in every one of ``columns``, and each row's first equal row.

    Sort-based (a stable multi-column sort, then compare neighbours), which needs far less
    memory than hashing tens of millions of distinct strings. Missing values are equal to
    each other only when ``nulls_equal``; otherwise a row with a missing value repeats no one.

    Returns:
        ``(repeat, first)``: ``repeat[i]`` is true when an earlier row equals row ``i``;
        ``first[i]`` is the position of the first row equal to row ``i`` (``i`` itself when
        it is the first), computed only ``with_first`` (else None).
    """
    n = len(next(iter(columns.values())))
    if n < 2:
        return np.zeros(n, dtype=bool), np.arange(n, dtype=np.int64) if with_first else None
    names = [f"c{i}" for i in range(len(columns))]
    table = pa.table(dict(zip(names, columns.values(), strict=True)))
    order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in names])  # stable
    same = np.ones(n - 1, dtype=bool)
    for values in columns.values():
        # compare sorted neighbours block by block: never a sorted copy of a whole column
        for start in range(0, n - 1, _SORT_BLOCK):
            ordered = values.take(order.slice(start, _SORT_BLOCK + 1))
            later, earlier = ordered.slice(1), ordered.slice(0, len(ordered) - 1)
            equal = _np_mask(pc.equal(later, earlier))
            if nulls_equal:
                equal |= _np_mask(later.is_null()) & _np_mask(earlier.is_null())
            same[start : start + len(equal)] &= equal
    order_np = order.to_numpy()
    del order
    repeat = np.zeros(n, dtype=bool)
    repeat[order_np[1:][same]] = True
    if not with_first:
        return repeat, None
    starts = np.concatenate([[True], ~same])  # first row of each run of equal rows
    run = np.cumsum(starts) - 1
    first = np.empty(n, dtype=np.int64)
    first[order_np] = order_np[starts][run]
    return repeat, first


def _display(values: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    if kind == "date":
        return pc.strftime(values, format="%Y-%m-%d")
    if kind == "datetime":
        return pc.strftime(values, format="%Y-%m-%d %H:%M:%S")
    return pc.cast(values, pa.string())


@dataclass(frozen=True)
class Repeats:
    """Rows repeating an earlier row of the whole file, found before the file is cut into
    batches (:mod:`credit_scoring.data.ingest_stream`): 0-based data rows, ascending, and
    for each the first equal row (exact duplicates only)."""

    rows: np.ndarray
    first: np.ndarray | None = None

    def in_batch(self, offset: int, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The batch's repeat mask and, with ``first``, each row's first equal row (0-based
        in the file; meaningful where the mask is true)."""
        lo, hi = np.searchsorted(self.rows, [offset, offset + n])
        mask = np.zeros(n, dtype=bool)
        mask[self.rows[lo:hi] - offset] = True
        if self.first is None:
            return mask, None
        first = np.arange(offset, offset + n, dtype=np.int64)
        first[self.rows[lo:hi] - offset] = self.first[lo:hi]
        return mask, first


def _check_key(
    table: schemas.Table,
    parsed: dict[str, pa.ChunkedArray],
    rejecter: _Rejecter,
    repeats: Repeats | None = None,
    row_offset: int = 0,
):
    """Later rows repeating the key of an earlier row (first occurrence in the file wins).

    ``repeats``: found over the whole file beforehand (a batch of it); else found here."""
    key = list(table.key)
    if repeats is None:
        dup, _ = _repeats({k: parsed[k] for k in key})
    else:
        dup, _ = repeats.in_batch(row_offset, len(parsed[key[0]]))
    if len(key) == 1:
        rejecter.flag(
            dup,
            f"duplicate {key[0]}",
            _describe_values(parsed[key[0]], lambda v, k=key[0]: f"duplicate {k} '{v}'"),
        )
        return
    shown = [_display(parsed[k], table.column(k).kind) for k in key]
    joined = pc.binary_join_element_wise(*shown, "', '")
    label = "(" + ", ".join(key) + ")"
    rejecter.flag(
        dup, f"duplicate {label}", _describe_values(joined, lambda v: f"duplicate {label} ('{v}')")
    )


def _check_exact_duplicates(
    parsed: dict[str, pa.ChunkedArray],
    rejecter: _Rejecter,
    row_offset: int = 0,
    repeats: Repeats | None = None,
) -> None:
    """Events without event_id: a row equal to an earlier row in every column is rejected.

    ``repeats``: found over the whole file beforehand (a batch of it); else found here."""
    if repeats is None:
        dup, first = _repeats(parsed, nulls_equal=True, with_first=True)
        first = first + row_offset
    else:
        dup, first = repeats.in_batch(row_offset, len(next(iter(parsed.values()))))
    first_rows = pa.chunked_array([pa.array(first + 1)])
    rejecter.flag(
        dup, "duplicate row", _describe_values(first_rows, lambda v: f"duplicate of row {v}")
    )


def _check_transactions(parsed: dict[str, pa.ChunkedArray], rejecter: _Rejecter) -> None:
    """Kinds that are credits only (income) or debits only (fees) must have that sign."""
    kind, amount = parsed["kind"], parsed["amount"]
    for kinds, wrong, word in (
        (schemas.CREDIT_ONLY_KINDS, pc.less_equal, "debit"),
        (schemas.DEBIT_ONLY_KINDS, pc.greater_equal, "credit"),
    ):
        for k in kinds:
            bad = _np_mask(pc.equal(kind, pa.scalar(k, kind.type))) & _np_mask(
                wrong(amount, pa.scalar(0.0))
            )
            rejecter.flag(
                bad,
                f"{word} amount for {k}",
                _describe_values(
                    amount, lambda v, k=k, w=word: f"{w} amount {v} not allowed for {k}"
                ),
            )


def _check_outcome_rows(
    parsed: dict[str, pa.ChunkedArray], rejecter: _Rejecter, outcome_keys: pa.Array
) -> None:
    """Applications: the (person, observation date) must be a row of accepted outcomes."""
    key = _row_key_strings(parsed["person_id"], parsed["observation_date"])
    known = _np_mask(pc.is_in(key, value_set=pc.cast(outcome_keys, key.type)))
    unknown = _np_mask(key.is_valid()) & ~known
    shown = pc.binary_join_element_wise(
        _display(parsed["person_id"], "str"), _display(parsed["observation_date"], "date"), "', '"
    )
    rejecter.flag(
        unknown,
        "no outcome row",
        _describe_values(
            shown, lambda v: f"no outcome row for (person_id, observation_date) ('{v}')"
        ),
    )


def _row_key_strings(person: pa.ChunkedArray, date: pa.ChunkedArray) -> pa.ChunkedArray:
    """``person|YYYY-MM-DD`` per row (missing if either part is), to match row keys."""
    return _chunked(
        pc.binary_join_element_wise(
            pc.cast(person, pa.large_string()),
            pc.cast(_display(date, "date"), pa.large_string()),
            pa.scalar("|", pa.large_string()),
        )
    )


def _check_table(
    table: schemas.Table,
    raw: pd.DataFrame,
    source: str,
    profile_ids: pa.Array | None,
    may_be_empty: bool = False,
    outcome_keys: pa.Array | None = None,
    row_offset: int = 0,
    repeats: Repeats | None = None,
) -> _Checked:
    """Every row check of one table, or of one batch of it (``row_offset`` data rows of the
    file before it, ``repeats`` the repeated keys or rows found over the whole file)."""
    missing = [c for c in table.required_columns if c not in raw.columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        plural = "s" if len(missing) > 1 else ""
        raise InputError(f"{source}: missing required column{plural} {names}")
    if len(raw) == 0 and row_offset == 0 and table.name in NON_EMPTY_TABLES and not may_be_empty:
        extra = " unless transactions has rows" if table.name == "events" else ""
        raise InputError(
            f"{source}: no data rows (the {table.name} table must not be empty{extra})"
        )
    raw = raw.reset_index(drop=True)
    ignored = [str(c) for c in raw.columns if c not in table.column_names]
    absent = [c for c in table.column_names if c not in raw.columns]
    source_rows = np.arange(row_offset + 1, row_offset + len(raw) + 1, dtype=np.int64)

    parsed, rejecter, unparseable = _check_columns(raw, table)
    if table is schemas.EVENTS:
        _check_events(parsed, rejecter)
    if table is schemas.TRANSACTIONS:
        _check_transactions(parsed, rejecter)
    id_column = DERIVED_ID_COLUMNS.get(table.name)
    derived = None
    if id_column is not None and id_column not in raw.columns:
        derived = id_column
        _check_exact_duplicates(
            {k: v for k, v in parsed.items() if k != id_column}, rejecter, row_offset, repeats
        )
        ids = pc.binary_join_element_wise(
            pa.scalar(DERIVED_EVENT_ID_PREFIX),
            pc.cast(pa.array(source_rows), pa.string()),
            "",
        )
        parsed[id_column] = _chunked(ids)
    if table is schemas.CONTACTS:
        loop = _np_mask(pc.equal(parsed["person_id"], parsed["contact_id"]))
        rejecter.flag(
            loop,
            "self-loop",
            _describe_values(
                parsed["contact_id"], lambda v: f"self-loop: contact_id '{v}' is the person"
            ),
        )
    if profile_ids is not None:
        person = parsed["person_id"]
        known = _np_mask(pc.is_in(person, value_set=pc.cast(profile_ids, person.type)))
        unknown = _np_mask(person.is_valid()) & ~known
        rejecter.flag(
            unknown,
            "unknown person_id",
            _describe_values(person, lambda v: f"unknown person_id '{v}'"),
        )
    if outcome_keys is not None:
        _check_outcome_rows(parsed, rejecter, outcome_keys)
    if derived is None:  # a derived id repeats no one
        _check_key(table, parsed, rejecter, repeats, row_offset)
    else:
        _check_key(table, parsed, rejecter)
    warnings = _table_warnings(table, source, ignored, unparseable, derived)
    return _Checked(
        table,
        source,
        raw,
        len(raw),
        parsed,
        rejecter,
        ignored,
        absent,
        warnings,
        row_offset,
        unparseable,
        derived,
    )


def _accepted_frame(checked: _Checked) -> pd.DataFrame:
    """The accepted rows in canonical dtypes; consumes ``checked.parsed`` column by column
    so that each parsed (and, once the raw frame is gone, raw) column is freed in turn."""
    open_rows = checked.rejecter.open
    keep = None if open_rows.all() else pa.array(open_rows)
    out = {}
    for col in checked.table.columns:
        values = checked.parsed.pop(col.name)
        if keep is not None:
            values = pc.filter(values, keep)
        out[col.name] = _to_canonical(values, col.kind)
        del values
    return pd.DataFrame(out, copy=False)


def _rejects_frame(checked: _Checked) -> pd.DataFrame:
    rows, messages = checked.rejecter.reasons()
    checked.rejecter.release()
    columns = [c for c in checked.raw.columns if c in checked.table.column_names]
    take = pa.array(rows)
    out: dict[str, Any] = {}
    for c in columns:
        strings = _as_strings(_as_arrow(checked.raw[c]).take(take))
        out[c] = pd.arrays.ArrowStringArray(pc.cast(strings, pa.large_string()))
    out["reject_reason"] = pd.arrays.ArrowStringArray(pc.cast(messages, pa.large_string()))
    out["source_file"] = pd.array([checked.source] * len(rows), dtype="string")
    out["source_row"] = pd.array(rows + 1 + checked.row_offset, dtype="Int64")
    return pd.DataFrame(out)


def _missing_rates(df: pd.DataFrame) -> dict[str, float | None]:
    if len(df) == 0:
        return dict.fromkeys(df.columns)
    return {c: round(float(df[c].isna().mean()), 6) for c in df.columns}


def _table_report(checked: _Checked, accepted: pd.DataFrame) -> dict[str, Any]:
    n = checked.n_rows
    return {
        "source_file": checked.source,
        "input_rows": n,
        "accepted": len(accepted),
        "rejected": n - len(accepted),
        "rejected_by_reason": checked.rejecter.counts(),
        "missing_rate": _missing_rates(accepted),
        "ignored_columns": checked.ignored_columns,
        "absent_optional_columns": checked.absent_columns,
    }


def _date(ts: Any) -> str | None:
    return None if pd.isna(ts) else pd.Timestamp(ts).isoformat(sep=" ")


def _events_summary(events: pd.DataFrame) -> dict[str, Any]:
    counts = events["event_type"].value_counts()
    by_type = {t: int(counts.get(t, 0)) for t in schemas.EVENT_TYPES}
    times = events["event_time"]
    return {
        "by_type": by_type,
        "first_event_time": _date(times.min()) if len(times) else None,
        "last_event_time": _date(times.max()) if len(times) else None,
        "people_with_events": int(pc.count_distinct(_as_arrow(events["person_id"])).as_py()),
    }


def _transactions_summary(tx: pd.DataFrame) -> dict[str, Any]:
    counts = tx["kind"].fillna("other").value_counts()
    times = tx["transaction_time"]
    balance = tx["balance"].dropna()
    return {
        "by_kind": {k: int(counts.get(k, 0)) for k in schemas.TRANSACTION_KINDS},
        "first_transaction_time": _date(times.min()) if len(times) else None,
        "last_transaction_time": _date(times.max()) if len(times) else None,
        "people_with_transactions": int(pc.count_distinct(_as_arrow(tx["person_id"])).as_py()),
        "rows_with_balance": len(balance),
        "negative_balance_share": round(float((balance < 0).mean()), 6) if len(balance) else None,
    }


def _outcomes_summary(outcomes: pd.DataFrame) -> dict[str, Any]:
    out = {}
    for date, grp in outcomes.groupby("observation_date", sort=True):
        labelled = grp[schemas.LABEL].notna()
        rate = float(grp.loc[labelled, schemas.LABEL].mean()) if labelled.any() else None
        out[pd.Timestamp(date).strftime("%Y-%m-%d")] = {
            "rows": len(grp),
            "labelled": int(labelled.sum()),
            "default_rate": None if rate is None else round(rate, 6),
        }
    decisions = schemas.decision_counts(outcomes)  # a past policy's declined: no outcome
    return {"observation_dates": out, **({"historical_decisions": decisions} if decisions else {})}


def validate_tables(
    raw: dict[str, pd.DataFrame],
    sources: dict[str, str],
    label_column: str = schemas.LABEL,
    horizon_months: int = 12,
) -> IngestResult:
    """Check raw tables against the contract: accepted rows, rejects and the report.

    Pure: reads nothing from disk and leaves ``raw`` as it is. ``raw`` maps table name
    -> raw frame (strings or already-typed columns); an optional table
    (:data:`~credit_scoring.schemas.OPTIONAL_TABLES`) left out of ``raw`` is empty.
    ``sources`` maps table name -> the file it came from (used in messages and in the
    rejects' ``source_file``). The label is read from outcomes' ``label_column`` and
    written as :data:`~credit_scoring.schemas.LABEL`; the report records the column and
    ``horizon_months``.

    Raises:
        InputError: a required table is absent, lacks a required column, or is empty
            when it must not be.
    """
    return _validate(dict(raw), sources, label_column, horizon_months)


def _absent_report() -> dict[str, Any]:
    return {
        "source_file": None,
        "present": False,
        "input_rows": 0,
        "accepted": 0,
        "rejected": 0,
        "rejected_by_reason": {},
        "missing_rate": {},
        "ignored_columns": [],
        "absent_optional_columns": [],
    }


def _empty_rejects(table: schemas.Table) -> pd.DataFrame:
    columns = {c: pd.Series(dtype="string") for c in (*table.column_names, "reject_reason")}
    columns["source_file"] = pd.Series(dtype="string")
    columns["source_row"] = pd.Series(dtype="Int64")
    return pd.DataFrame(columns)


def _validate(
    raw: dict[str, pd.DataFrame],
    sources: dict[str, str],
    label_column: str = schemas.LABEL,
    horizon_months: int = 12,
) -> IngestResult:
    """``validate_tables`` that empties ``raw`` as it goes, so each raw table can be freed
    as soon as its rejects are taken (ingest hands over the only reference)."""
    accepted: dict[str, pd.DataFrame] = {}
    rejects: dict[str, pd.DataFrame] = {}
    tables: dict[str, Any] = {}
    warnings: list[str] = []
    profile_ids: pa.Array | None = None
    outcome_keys: pa.Array | None = None
    has_transactions = len(raw.get("transactions", ())) > 0
    for name in _TABLE_ORDER:
        table = schemas.ALL_TABLES[name]
        if name == "outcomes":
            table = schemas.outcomes_table(label_column)
        source = sources.get(name, f"{name}.csv")
        if name not in raw:
            if name in schemas.OPTIONAL_TABLES:
                accepted[name] = schemas.empty_table(table)
                rejects[name] = _empty_rejects(table)
                tables[name] = _absent_report()
                continue
            raise InputError(f"{source}: missing {name} table")
        checked = _check_table(
            table,
            raw.pop(name),
            source,
            profile_ids,
            may_be_empty=name == "events" and has_transactions,
            outcome_keys=outcome_keys if name == "applications" else None,
        )
        rejects[name] = _rejects_frame(checked)
        checked.raw = None
        accepted[name] = _accepted_frame(checked)
        tables[name] = {**_table_report(checked, accepted[name]), "present": True}
        warnings += checked.warnings
        if name == "profiles":
            profile_ids = _as_arrow(accepted[name]["person_id"]).combine_chunks()
            if len(accepted[name]) == 0:
                warnings.append(f"{source}: no profile accepted, so every other row is rejected")
        if name == "outcomes":
            if label_column in checked.absent_columns:
                warnings.append(
                    f"{source}: no label column '{label_column}' (data.label.column); "
                    "every row is unlabelled (to be scored only)"
                )
            accepted[name] = accepted[name].rename(columns={label_column: schemas.LABEL})
            out = accepted[name]
            outcome_keys = _row_key_strings(
                _as_arrow(out["person_id"]), pa.chunked_array([pa.array(out[schemas.DATE])])
            ).combine_chunks()
        for w in checked.warnings:
            logger.warning(w)
    data = schemas.BehaviourData(**accepted)
    check_contract(data)
    summaries = {
        "events": _events_summary(data.events),
        "outcomes": _outcomes_summary(data.outcomes),
    }
    if len(data.transactions):
        summaries["transactions"] = _transactions_summary(data.transactions)
    report = quality_report(tables, label_column, horizon_months, summaries, warnings)
    return IngestResult(data=data, rejects=rejects, report=report)


def quality_report(
    tables: dict[str, dict[str, Any]],
    label_column: str,
    horizon_months: int,
    summaries: dict[str, Any],
    warnings: list[str],
) -> dict[str, Any]:
    """The data-quality report (reports/data_quality.json), whole-table or batched ingest:
    per-table counts and their total, the label, the events/outcomes (and transactions,
    when there are any) summaries, the warnings."""
    report: dict[str, Any] = {
        "tables": tables,
        "total": {
            k: sum(t[k] for t in tables.values()) for k in ("input_rows", "accepted", "rejected")
        },
        "label": {
            "column": label_column,
            "horizon_months": horizon_months,
            "internal_column": schemas.LABEL,
        },
        "events": summaries["events"],
        "outcomes": summaries["outcomes"],
        "warnings": warnings,
    }
    if "transactions" in summaries:
        report["transactions"] = summaries["transactions"]
    return report


def ingest(
    folder: str | Path, label_column: str = schemas.LABEL, horizon_months: int = 12
) -> IngestResult:
    """Read the input tables from ``folder`` and validate them (see module docstring).

    The four tables of :data:`~credit_scoring.schemas.TABLES` must be there; the optional
    ones are read when present. ``label_column``: the outcomes column holding the label
    (``data.label.column``); ``horizon_months``: its horizon, recorded in the report.
    """
    raw: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    for name in _TABLE_ORDER:
        table = schemas.ALL_TABLES[name]
        if name in schemas.OPTIONAL_TABLES and io.find_table_file(Path(folder), name) is None:
            continue
        frame, path = read_table(folder, table)
        raw[name], sources[name] = frame, str(path)
        del frame
    return _validate(raw, sources, label_column, horizon_months)


# --------------------------------------------------------------------------- contract


def _events_rule_check(df: pd.DataFrame) -> bool:
    for etype, fields in schemas.EVENT_REQUIRED_FIELDS.items():
        is_type = df["event_type"] == str(etype)
        for f in fields:
            if (is_type & df[f].isna()).any():
                return False
    for etype, allowed in schemas.EVENT_CATEGORIES.items():
        is_type = (df["event_type"] == str(etype)) & df["category"].notna()
        if (is_type & ~df["category"].isin(allowed)).any():
            return False
    return True


def _transactions_sign_check(df: pd.DataFrame) -> bool:
    credit_only = df["kind"].isin(schemas.CREDIT_ONLY_KINDS).fillna(False) & (df["amount"] <= 0)
    debit_only = df["kind"].isin(schemas.DEBIT_ONLY_KINDS).fillna(False) & (df["amount"] >= 0)
    return not bool((credit_only | debit_only).any())


def pandera_schema(table: schemas.Table) -> pda.DataFrameSchema:
    """The pandera contract of a validated table, generated from ``schemas.py``."""
    dtypes = schemas.canonical_dtypes(table)
    columns = {}
    for c in table.columns:
        checks = []
        if c.min is not None:
            checks.append(pda.Check.ge(c.min))
        if c.max is not None:
            checks.append(pda.Check.le(c.max))
        if c.allowed is not None:
            checks.append(pda.Check.isin(list(c.allowed)))
        columns[c.name] = pda.Column(dtypes[c.name], checks=checks, nullable=c.nullable)
    checks = []
    if table is schemas.EVENTS:
        checks.append(pda.Check(_events_rule_check, name="event type fields and categories"))
    if table is schemas.CONTACTS:
        checks.append(
            pda.Check(
                lambda df: bool((df["person_id"] != df["contact_id"]).all()), name="no self-loop"
            )
        )
    if table is schemas.TRANSACTIONS:
        checks.append(pda.Check(_transactions_sign_check, name="credit/debit kinds have the sign"))
    key = list(table.key)
    checks.append(
        pda.Check(lambda df: not _duplicated_keys(df, key).any(), name=f"unique key {key}")
    )
    return pda.DataFrameSchema(
        columns,
        checks=checks,
        strict=True,
        ordered=True,
        name=table.name,
    )


def _duplicated_keys(df: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Rows whose key repeats an earlier row's (leaner than pandera's ``unique=``)."""
    return _repeats({k: _as_arrow(df[k]) for k in key})[0]


def check_contract(data: schemas.BehaviourData) -> None:
    """Assert that validated data meets the contract (a bug in ingest if it does not).

    pandera checks values, nullability, keys and per-type rules; the exact canonical
    dtypes and the references to profiles are checked here directly (pandera treats
    ``str`` and ``string`` alike).

    Raises:
        pandera.errors.SchemaError: a value-level rule is broken.
        AssertionError: a dtype or a reference is wrong.
    """
    ids = _as_arrow(data.profiles["person_id"]).combine_chunks()
    for name in schemas.ALL_TABLES:
        check_table_contract(name, getattr(data, name), None if name == "profiles" else ids)


def check_table_contract(name: str, df: pd.DataFrame, profile_ids: pa.Array | None) -> None:
    """:func:`check_contract` for one table (or one batch of it: keys are then unique within
    the batch, the whole file's repeats having been rejected before); ``profile_ids``: the
    accepted profiles the rows must refer to (None for profiles themselves)."""
    table = schemas.ALL_TABLES[name]
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    expected = schemas.canonical_dtypes(table)
    if dtypes != expected:
        wrong = {c: t for c, t in dtypes.items() if expected.get(c) != t}
        raise AssertionError(f"{name}: dtypes differ from the contract: {wrong}")
    pandera_schema(table).validate(df, inplace=True)  # inplace: no copy, nothing coerced
    if profile_ids is not None:
        person = _as_arrow(df["person_id"])
        unknown = ~_np_mask(pc.is_in(person, value_set=pc.cast(profile_ids, person.type)))
        if unknown.any():
            raise AssertionError(f"{name}: {int(unknown.sum())} rows with unknown person_id")


# --------------------------------------------------------------------------- writing


def write_ingest_result(
    result: IngestResult,
    validated_dir: str | Path,
    rejects_dir: str | Path,
    report_path: str | Path,
) -> None:
    """Write validated and rejected rows as Parquet per table and the report as JSON.

    Every file is written atomically; the rejects file of a table is always written,
    empty when nothing was rejected. Outcomes, events and contacts are written in person
    order (stable: by the person's row in profiles), so the features stage can stream
    the events one chunk of people at a time (:mod:`credit_scoring.features.streaming`).
    """

    ids = validated.profile_ids(result.data.profiles)
    for name in schemas.ALL_TABLES:
        df, path = getattr(result.data, name), Path(validated.table_path(validated_dir, name))
        order = None
        if name in validated.PERSON_ORDERED:
            order = validated.person_order(df["person_id"], ids)
        if order is None:
            io.write_parquet(df, path)
        else:
            io.write_parquet_ordered(df, order, path)
        io.write_parquet(result.rejects[name], Path(rejects_dir) / f"{name}.parquet")
    io.write_json(result.report, report_path)
