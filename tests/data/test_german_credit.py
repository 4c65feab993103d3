"""The German credit example: the shipped CSV, its converter to the bring-your-own-features
format, and what the converted folder holds (examples/german_credit)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import yaml

from credit_scoring.data.byof import ingest_features

GERMAN = Path(__file__).resolve().parents[2] / "examples" / "german_credit"
SHA256 = "2c0bae00275c028fc853a1ea72cc7a68002c3f6876c41300c5c948711540c8c6"


@pytest.fixture(scope="module")
def convert():
    spec = importlib.util.spec_from_file_location("german_convert", GERMAN / "convert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_is_in_the_repo_with_its_source_and_licence():
    raw = GERMAN / "german_credit.csv"
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == SHA256, "the file is the source's"
    table = pd.read_csv(raw)
    assert table.shape == (1000, 21)
    assert table["creditability"].value_counts().to_dict() == {"good": 700, "bad": 300}
    note = (GERMAN / "SOURCE.md").read_text()
    assert "CC BY 4.0" in note and "10.24432/C5NC77" in note


def test_the_committed_conversion_is_what_the_converter_writes(convert, tmp_path):
    convert.write(tmp_path)
    for name in ("features.csv", "feature_metadata.yaml"):
        assert (tmp_path / name).read_text() == (GERMAN / "byof" / name).read_text(), name


def test_the_converted_folder_ingests_whole_with_protected_attributes_kept_apart():
    result = ingest_features(GERMAN / "byof")
    assert result.report["total"] == {"input_rows": 1000, "accepted": 1000, "rejected": 0}
    assert result.features["default_12m"].sum() == 300, "1 = bad credit risk"
    assert set(result.features["observation_date"].astype(str)) == {"1994-01-01"}
    protected = [m.name for m in result.metadata if m.protected]
    assert protected == ["gender", "personal_status", "age", "foreign_worker"]
    assert not set(protected) & set(result.features.columns)
    assert result.protected["gender"].value_counts().to_dict() == {"M": 690, "F": 310}
    assert result.protected["age_band"].notna().all()
    dims = result.report["metadata"]["features_by_dimension"]
    assert all(dims[d] for d in dims), "every dimension has a feature"


def test_encodings_keep_the_meaning(convert):
    raw = pd.read_csv(GERMAN / "german_credit.csv")
    table, meta = convert.convert(raw)
    by_name = {m["feature"]: m for m in meta}
    none = raw["status_of_existing_checking_account"] == "no checking account"
    assert table.loc[none, "checking_balance_band"].isna().all(), "no account: no band"
    assert (table.loc[none, "no_checking_account"] == 1).all()
    assert by_name["checking_balance_band"]["levels"][0] == "below 0 DM"
    purpose = [c for c in table.columns if c.startswith("purpose_")]
    assert (table[purpose].sum(axis=1) == 1).all(), "one-hot: exactly one purpose"
    assert by_name["credit_history"]["risk_direction"] == 0, "non-monotone in this data"
    assert by_name["duration_months"]["risk_direction"] == 1
    with pytest.raises(ValueError, match="unexpected categories"):
        convert.convert(raw.assign(housing="boat"))
    doc = yaml.safe_load((GERMAN / "byof" / "feature_metadata.yaml").read_text())
    assert doc["features"] == meta
