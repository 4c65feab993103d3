"""The catalogue of features a lender brings: what each column means (one validated row
of ``feature_metadata``), as :mod:`credit_scoring.data.byof` writes it and the deployable
bundle carries it.

Also the files of a features-mode folder (validated data, or the feature table: the
features stage passes one through to the other). Kept apart from the validator so that
the bundle (and everything that loads it: the service, MLflow) and the later stages read
them without importing the ingest machinery.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from credit_scoring import io

#: The validated catalogue, written next to the validated table and the feature table.
METADATA_FILE = "feature_metadata.json"
FEATURES_TABLE = "features"
PROTECTED_TABLE = "protected"


@dataclass(frozen=True)
class FeatureMeta:
    """One column of the features table and what it means (a validated metadata row).

    ``risk_direction``: +1 a higher value means more risk, -1 less, 0 unknown (no
    monotone constraint). ``low``/``high``: the values it can take (inclusive, infinite
    = unbounded); ``integer``: whole numbers only; ``levels``: words for the codes 0, 1,
    ... of an encoded category (their order is the code order). ``protected``: kept for
    fairness measurement only, never a model input (dimension etc. then unused).
    """

    name: str
    dimension: str = ""
    description: str = ""
    risk_direction: int = 0
    actionable: bool = False
    unit: str = ""
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    levels: tuple[str, ...] = ()
    protected: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (infinite bounds as None)."""
        out = asdict(self)
        out["levels"] = list(self.levels)
        out["low"] = None if math.isinf(self.low) else self.low
        out["high"] = None if math.isinf(self.high) else self.high
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureMeta:
        """The inverse of :meth:`to_dict`."""
        low, high = d.get("low"), d.get("high")
        return cls(
            name=str(d["name"]),
            dimension=str(d.get("dimension", "")),
            description=str(d.get("description", "")),
            risk_direction=int(d.get("risk_direction", 0)),
            actionable=bool(d.get("actionable", False)),
            unit=str(d.get("unit", "")),
            low=-math.inf if low is None else float(low),
            high=math.inf if high is None else float(high),
            integer=bool(d.get("integer", False)),
            levels=tuple(str(v) for v in d.get("levels", ())),
            protected=bool(d.get("protected", False)),
        )


def is_byof(folder: str | Path) -> bool:
    """Whether ``folder`` (validated data or the feature table) holds features mode."""
    return (Path(folder) / METADATA_FILE).is_file()


def read_catalogue(folder: str | Path) -> list[FeatureMeta]:
    """The validated catalogue written by :func:`write_passthrough`."""
    path = Path(folder) / METADATA_FILE
    return [FeatureMeta.from_dict(d) for d in json.loads(path.read_text())]


def write_passthrough(
    features: pd.DataFrame,
    protected: pd.DataFrame,
    metadata: Sequence[FeatureMeta],
    folder: str | Path,
) -> dict[str, Path]:
    """The three files of a features-mode folder (validated data, or the feature table)."""
    folder = Path(folder)
    paths = {
        "features": io.write_parquet(features, folder / f"{FEATURES_TABLE}.parquet"),
        "protected": io.write_parquet(protected, folder / f"{PROTECTED_TABLE}.parquet"),
        "metadata": folder / METADATA_FILE,
    }
    io.write_json([m.to_dict() for m in metadata], paths["metadata"])
    return paths


def read_byof(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, list[FeatureMeta]]:
    """Features, protected attributes and catalogue of a features-mode folder."""
    folder = Path(folder)
    return (
        pd.read_parquet(folder / f"{FEATURES_TABLE}.parquet"),
        pd.read_parquet(folder / f"{PROTECTED_TABLE}.parquet"),
        read_catalogue(folder),
    )
