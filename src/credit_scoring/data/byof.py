"""Bring your own features: a lender's own per-person feature table, validated like events.

The input folder holds two files instead of the four event tables:

- ``features.csv`` (or ``.parquet``): one row per person and observation date, with
  ``person_id``, ``observation_date``, the label ``default_12m`` (1/0, empty = to be
  scored), one column per feature and, optionally, protected attributes;
- ``feature_metadata.yaml`` (or ``.csv``): one row per column of the features table other
  than the key and the label: its ``dimension``, ``description``, ``risk_direction``,
  ``actionable`` (and optional ``unit``, ``min``, ``max``, ``integer``, ``levels``), or
  ``protected: true`` for attributes kept for fairness measurement only.

Metadata problems are fatal (one line naming the file, the row and the field: a model
must never be trained on a feature whose meaning is unknown). Rows of the features
table follow the same rejects-with-reason rule as the event tables (the same parser,
range checks and messages, :mod:`credit_scoring.data.ingest`): input rows = accepted +
rejected, and every rejected row keeps its values, reason, file and row number.

What is written (:func:`write_byof_result`) is already in the shape the event engines
produce, so the features stage only passes it through: ``features.parquet`` (person id,
observation date, label, the model features as float64) and ``protected.parquet``
(person id, observation date, ``gender``, ``age_band`` and any other protected
attribute, as text), plus ``feature_metadata.json``, the validated catalogue that the
deployable bundle carries. Pure except for the readers and the writer at the end.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from credit_scoring import io, schemas
from credit_scoring.data import ingest as _ingest
from credit_scoring.data.catalogue import (
    FEATURES_TABLE,
    METADATA_FILE,
    PROTECTED_TABLE,
    FeatureMeta,
    is_byof,
    read_byof,
    read_catalogue,
    write_passthrough,
)
from credit_scoring.data.ingest import InputError
from credit_scoring.schemas import DATE, DIMENSIONS, LABEL, ROW_KEY

__all__ = [
    "METADATA_FILE",
    "ByofResult",
    "FeatureMeta",
    "InputError",
    "ingest_features",
    "input_mode",
    "is_byof",
    "read_byof",
    "read_catalogue",
    "read_metadata",
    "validate_features",
    "validate_metadata",
    "write_byof_result",
]

METADATA_NAME = "feature_metadata"
METADATA_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".csv")
MODES: tuple[str, ...] = ("auto", "events", "features")
#: Columns that are protected attributes by their name: they may be declared only as
#: ``protected`` (fairness measurement), never as model inputs.
PROTECTED_NAMES: frozenset[str] = frozenset(
    {"gender", "sex", "birth_year", "age", "age_band"}
    | {c.name for t in schemas.TABLES.values() for c in t.columns if c.protected}
)
#: Units a feature may declare: they only change how its value reads in reasons.
UNITS: tuple[str, ...] = (
    "",
    "count",
    "share",
    "flag",
    "days",
    "months",
    "years",
    "CNY",
    "ratio",
    "level",
)
METADATA_COLUMNS: tuple[str, ...] = (
    "feature",
    "dimension",
    "description",
    "risk_direction",
    "actionable",
    "unit",
    "min",
    "max",
    "integer",
    "levels",
    "protected",
)
_REQUIRED_FOR_FEATURES = ("dimension", "description", "risk_direction", "actionable")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
#: Protected columns read as numbers (the others are text).
_NUMERIC_PROTECTED = {"age": "float", "birth_year": "int"}


@dataclass
class ByofResult:
    """What ingest produces in features mode (the counterpart of ``IngestResult``).

    ``features``: accepted rows, key + label + model features (float64); ``protected``:
    key + ``gender`` + ``age_band`` + other protected attributes (text); ``metadata``:
    the validated catalogue, model features first in table order; ``rejects``: every
    rejected row with its values as text, ``reject_reason``, ``source_file``,
    ``source_row``; ``report``: the data-quality report (JSON-serialisable).
    """

    features: pd.DataFrame
    protected: pd.DataFrame
    metadata: list[FeatureMeta]
    rejects: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def model_features(self) -> list[str]:
        return [m.name for m in self.metadata if not m.protected]


# --------------------------------------------------------------------------- the mode


def metadata_file(folder: str | Path) -> Path | None:
    """``feature_metadata.yaml``, ``.yml`` or ``.csv`` in ``folder`` (in that order)."""
    for suffix in METADATA_SUFFIXES:
        candidate = Path(folder) / f"{METADATA_NAME}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def input_mode(folder: str | Path, mode: str = "auto") -> str:
    """``"events"`` or ``"features"``: what ``folder`` is read as under ``data.mode``.

    ``auto`` is ``features`` when the folder holds both a features table and a metadata
    file, else ``events``. ``features`` with either file missing is fatal (one line).
    """
    if mode not in MODES:
        raise ValueError(f"data.mode must be one of {list(MODES)}; got {mode!r}")
    folder = Path(folder)
    if mode == "events":
        return "events"
    table = io.find_table_file(folder, FEATURES_TABLE) if folder.is_dir() else None
    meta = metadata_file(folder) if folder.is_dir() else None
    if mode == "auto":
        return "features" if table is not None and meta is not None else "events"
    if not folder.is_dir():
        raise InputError(f"{folder}: input folder not found")
    if table is None:
        raise InputError(
            f"{folder}: missing features table: expected features.parquet or features.csv"
        )
    if meta is None:
        raise InputError(
            f"{folder}: missing feature metadata: expected "
            + " or ".join(f"{METADATA_NAME}{s}" for s in METADATA_SUFFIXES)
        )
    return "features"


# --------------------------------------------------------------------------- metadata


def read_metadata(path: str | Path) -> list[dict[str, Any]]:
    """The metadata file's rows as mappings (YAML: a ``features:`` list or a bare list of
    mappings; CSV: one row per feature, header = the field names). Not yet validated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: unreadable metadata file: {err}") from None
    if path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        return [{k: v for k, v in r.items() if k is not None} for r in rows]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "invalid YAML"
        raise InputError(f"{path}: unreadable YAML: {first}") from None
    if isinstance(doc, Mapping):
        doc = doc.get("features")
    if not isinstance(doc, list) or not all(isinstance(r, Mapping) for r in doc):
        raise InputError(f"{path}: expected a 'features:' list with one mapping per column")
    return [dict(r) for r in doc]


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def _bool(v: Any, where: str, key: str) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise InputError(f"{where}: {key} must be true or false; got '{v}'")


def _number(v: Any, where: str, key: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(v, bool) or not math.isfinite(x):
        raise InputError(f"{where}: {key} must be a finite number; got '{v}'")
    return x


def _one_meta(row: Mapping[str, Any], where: str) -> FeatureMeta:
    unknown = sorted(str(k) for k in row if k not in METADATA_COLUMNS)
    if unknown:
        raise InputError(
            f"{where}: unknown field '{unknown[0]}'; expected some of {list(METADATA_COLUMNS)}"
        )
    name = row.get("feature")
    if _blank(name):
        raise InputError(f"{where}: missing feature (the column name)")
    name = str(name)
    where = f"{where} (feature '{name}')"
    if name in (*ROW_KEY, LABEL):
        raise InputError(f"{where}: '{name}' is the key or the label, not a feature")
    protected = (
        False if _blank(row.get("protected")) else _bool(row["protected"], where, "protected")
    )
    description = "" if _blank(row.get("description")) else str(row["description"]).strip()
    if protected:
        return FeatureMeta(name=name, description=description, protected=True)
    if name in PROTECTED_NAMES:
        raise InputError(
            f"{where}: '{name}' is a protected attribute: fairness measurement only, never a "
            "model input; declare it with protected: true"
        )
    for key in _REQUIRED_FOR_FEATURES:
        if _blank(row.get(key)):
            raise InputError(f"{where}: missing {key}")
    dimension = str(row["dimension"]).strip()
    if dimension not in DIMENSIONS:
        raise InputError(
            f"{where}: unknown dimension '{dimension}'; expected one of {list(DIMENSIONS)}"
        )
    direction = _number(row["risk_direction"], where, "risk_direction")
    if direction not in (-1, 0, 1):
        raise InputError(
            f"{where}: risk_direction must be 1 (higher = riskier), -1 (higher = safer) or 0 "
            f"(unknown); got '{row['risk_direction']}'"
        )
    unit = "" if _blank(row.get("unit")) else str(row["unit"]).strip()
    if unit not in UNITS:
        raise InputError(
            f"{where}: unknown unit '{unit}'; expected one of {list(UNITS[1:])} or empty"
        )
    levels_raw = row.get("levels")
    if _blank(levels_raw):
        levels: tuple[str, ...] = ()
    elif isinstance(levels_raw, list | tuple):
        levels = tuple(str(v) for v in levels_raw)
    else:
        levels = tuple(s.strip() for s in str(levels_raw).split("|"))
    if any(not lv for lv in levels):
        raise InputError(f"{where}: levels must be non-empty words")
    if unit == "level" and not levels:
        raise InputError(f"{where}: unit 'level' needs levels (words for the codes 0, 1, ...)")
    integer = False if _blank(row.get("integer")) else _bool(row["integer"], where, "integer")
    low = -math.inf if _blank(row.get("min")) else _number(row["min"], where, "min")
    high = math.inf if _blank(row.get("max")) else _number(row["max"], where, "max")
    if levels:
        unit, integer = "level", True
        low = 0.0 if _blank(row.get("min")) else low
        high = float(len(levels) - 1) if _blank(row.get("max")) else high
        if (low, high) != (0.0, float(len(levels) - 1)):
            raise InputError(f"{where}: {len(levels)} levels are the codes 0 to {len(levels) - 1}")
    if low > high:
        raise InputError(f"{where}: min must be <= max; got {low:g} > {high:g}")
    return FeatureMeta(
        name=name,
        dimension=dimension,
        description=description,
        risk_direction=int(direction),
        actionable=_bool(row["actionable"], where, "actionable"),
        unit=unit,
        low=low,
        high=high,
        integer=integer,
        levels=levels,
    )


def validate_metadata(rows: Sequence[Mapping[str, Any]], source: str) -> list[FeatureMeta]:
    """Check every metadata row; the first problem is fatal (:class:`InputError`, one line
    naming ``source``, the 1-based row and the field).

    Checks: known fields only, a feature name, no key or label, unique names, a dimension
    among the five, a risk direction of -1/0/1, true/false flags, a known unit, numeric
    bounds with min <= max, levels that match their codes, protected attributes (gender,
    age, birth year, ...) declared ``protected: true`` only, at least one model feature.
    """
    out: list[FeatureMeta] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        meta = _one_meta(row, f"{source}: row {i}")
        if meta.name in seen:
            raise InputError(
                f"{source}: row {i} (feature '{meta.name}'): duplicate of row {seen[meta.name]}"
            )
        seen[meta.name] = i
        out.append(meta)
    if not any(not m.protected for m in out):
        raise InputError(f"{source}: no model feature declared (only protected attributes)")
    return out


# --------------------------------------------------------------------------- the table


def features_table(metadata: Sequence[FeatureMeta]) -> schemas.Table:
    """The contract of a features table with these columns (checked like an input table)."""
    columns = [
        schemas.Column("person_id", "str", "Stable pseudonymous identifier of the person."),
        schemas.Column(DATE, "date", "Point in time the features describe."),
        schemas.Column(
            LABEL,
            "int",
            "1 if the person defaulted, 0 if not, empty when not yet known.",
            nullable=True,
            min=0,
            max=1,
        ),
    ]
    for m in metadata:
        if m.protected:
            kind = _NUMERIC_PROTECTED.get(m.name, "str")
        else:
            kind = "int" if m.integer else "float"
        columns.append(
            schemas.Column(
                m.name,
                kind,
                m.description,
                required=True,
                nullable=True,
                min=None if m.protected or math.isinf(m.low) else m.low,
                max=None if m.protected or math.isinf(m.high) else m.high,
                protected=m.protected,
            )
        )
    return schemas.Table(
        name=FEATURES_TABLE,
        description="Bring your own features: one row per person and observation date.",
        columns=tuple(columns),
        key=ROW_KEY,
    )


def _protected_frame(accepted: pd.DataFrame, metadata: Sequence[FeatureMeta]) -> pd.DataFrame:
    """Key + ``gender`` + ``age_band`` (from ``age_band``, ``age`` or ``birth_year``) +
    any other protected attribute, as text; missing where not provided."""
    names = [m.name for m in metadata if m.protected]
    out = accepted[list(ROW_KEY)].reset_index(drop=True)
    n = len(out)
    na = pd.array([pd.NA] * n, dtype="string")
    out["gender"] = accepted["gender"].astype("string").to_numpy() if "gender" in names else na
    if "age_band" in names:
        band = accepted["age_band"].astype("string").to_numpy()
    elif "age" in names:
        band = schemas.age_band(accepted["age"].astype("float64").reset_index(drop=True)).to_numpy()
    elif "birth_year" in names:
        age = accepted[DATE].dt.year.to_numpy("float64") - accepted["birth_year"].to_numpy(
            "float64", na_value=np.nan
        )
        band = schemas.age_band(pd.Series(age)).to_numpy()
    else:
        band = na
    out["age_band"] = band
    for name in names:
        if name not in ("gender", "age_band"):
            out[name] = accepted[name].astype("string").to_numpy()
    return out.astype({c: "string" for c in out.columns if c not in ROW_KEY})


def validate_features(
    raw: pd.DataFrame,
    metadata_rows: Sequence[Mapping[str, Any]],
    sources: Mapping[str, str] | None = None,
) -> ByofResult:
    """Check a raw features table against its metadata: accepted rows, rejects, report.

    Pure. ``raw`` is the table as read (CSV cells as text, or typed Parquet columns);
    ``metadata_rows`` the metadata file's rows (:func:`read_metadata`); ``sources`` the
    file names for messages (keys ``features`` and ``metadata``).

    Fatal (:class:`InputError`, one line): a metadata problem (:func:`validate_metadata`),
    a declared column missing from the table, a table column without metadata, a missing
    key or label column, no data rows. Rows are rejected with the first reason that
    applies, as for the event tables: unparseable value, missing key, value outside the
    declared ``min``/``max`` (or a label other than 0/1), a repeated
    (person_id, observation_date).
    """
    sources = dict(sources or {})
    source = sources.get("features", "features.csv")
    meta_source = sources.get("metadata", "feature_metadata.yaml")
    metadata = validate_metadata(metadata_rows, meta_source)
    raw = raw.reset_index(drop=True)
    dupes = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
    if dupes:
        raise InputError(f"{source}: duplicate column '{dupes[0]}'")
    declared = {m.name for m in metadata}
    for m in metadata:
        if m.name not in raw.columns:
            raise InputError(f"{meta_source}: feature '{m.name}' is not a column of {source}")
    undeclared = [str(c) for c in raw.columns if c not in declared and c not in (*ROW_KEY, LABEL)]
    if undeclared:
        raise InputError(
            f"{source}: column '{undeclared[0]}' has no row in {meta_source}; declare it "
            "(a feature, or protected: true) or remove the column"
        )
    table = features_table(metadata)
    if len(raw) == 0:
        raise InputError(f"{source}: no data rows (the features table must not be empty)")
    checked = _ingest._check_table(table, raw, source, None)
    rejects = _ingest._rejects_frame(checked)
    checked.raw = None
    accepted = _ingest._accepted_frame(checked)
    model = [m.name for m in metadata if not m.protected]
    features = accepted[[*ROW_KEY, LABEL]].reset_index(drop=True)
    matrix = {n: accepted[n].to_numpy("float64", na_value=np.nan) for n in model}
    features = pd.concat([features, pd.DataFrame(matrix)], axis=1)
    protected = _protected_frame(accepted, metadata)
    table_report = _ingest._table_report(checked, accepted)
    dims = {
        d: [m.name for m in metadata if not m.protected and m.dimension == d] for d in DIMENSIONS
    }
    report = {
        "mode": "features",
        "tables": {FEATURES_TABLE: table_report},
        "total": {k: table_report[k] for k in ("input_rows", "accepted", "rejected")},
        "metadata": {
            "source_file": meta_source,
            "model_features": len(model),
            "protected_attributes": [m.name for m in metadata if m.protected],
            "features_by_dimension": {d: names for d, names in dims.items()},
            "unconstrained_features": [
                m.name for m in metadata if not m.protected and m.risk_direction == 0
            ],
        },
        "outcomes": _ingest._outcomes_summary(accepted[[*ROW_KEY, LABEL]]),
        "warnings": checked.warnings,
    }
    return ByofResult(features, protected, metadata, rejects, report)


def ingest_features(folder: str | Path) -> ByofResult:
    """Read ``features.csv|parquet`` and ``feature_metadata.yaml|csv`` from ``folder`` and
    validate them (:func:`validate_features`)."""
    input_mode(folder, "features")  # the one-line errors for a missing file
    meta_path = metadata_file(folder)
    rows = read_metadata(meta_path)
    raw, path = _ingest.read_table(folder, schemas.Table(FEATURES_TABLE, "", (), ROW_KEY))
    return validate_features(raw, rows, {"features": str(path), "metadata": str(meta_path)})


# --------------------------------------------------------------------------- files


def write_byof_result(
    result: ByofResult,
    validated_dir: str | Path,
    rejects_dir: str | Path,
    report_path: str | Path,
) -> None:
    """Write ``features.parquet``, ``protected.parquet`` and ``feature_metadata.json``
    into ``validated_dir``, the rejects into ``rejects_dir/features.parquet`` (always,
    empty when none) and the report. Files of the events mode left in either folder by an
    earlier run are removed, so the folder describes one input only."""
    validated_dir, rejects_dir = Path(validated_dir), Path(rejects_dir)
    for name in schemas.TABLES:
        (validated_dir / f"{name}.parquet").unlink(missing_ok=True)
        (rejects_dir / f"{name}.parquet").unlink(missing_ok=True)
    write_passthrough(result.features, result.protected, result.metadata, validated_dir)
    io.write_parquet(result.rejects, rejects_dir / f"{FEATURES_TABLE}.parquet")
    io.write_json(result.report, report_path)


def clear_byof(validated_dir: str | Path, rejects_dir: str | Path) -> None:
    """Remove the files of the features mode (before an events-mode ingest writes)."""
    for folder, names in (
        (
            Path(validated_dir),
            (f"{FEATURES_TABLE}.parquet", f"{PROTECTED_TABLE}.parquet", METADATA_FILE),
        ),
        (Path(rejects_dir), (f"{FEATURES_TABLE}.parquet",)),
    ):
        for name in names:
            (folder / name).unlink(missing_ok=True)
