"""Bring your own features: the features table + metadata validator and the ingest and
features stages in features mode (data/byof.py, data/catalogue.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from credit_scoring.config import DataParams, Params
from credit_scoring.data import byof
from credit_scoring.data.byof import InputError, validate_features, validate_metadata

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "byof"

META = [
    {
        "feature": "late",
        "dimension": "credit_history",
        "description": "Late payments",
        "risk_direction": 1,
        "actionable": True,
        "integer": True,
        "min": 0,
    },
    {
        "feature": "util",
        "dimension": "fulfilment_capacity",
        "description": "Share of limits in use",
        "risk_direction": "1",
        "actionable": "false",
        "unit": "share",
        "min": 0,
        "max": 1,
    },
    {"feature": "gender", "protected": True},
    {"feature": "age", "protected": "true"},
]


def _raw(**overrides) -> pd.DataFrame:
    """Three good rows (as CSV text), columns overridable."""
    cols = {
        "person_id": ["a", "b", "c"],
        "observation_date": ["2024-01-01", "2024-01-01", "2024-01-01"],
        "default_12m": ["0", "1", ""],
        "late": ["1", "0", "3"],
        "util": ["0.5", "0.2", ""],
        "gender": ["F", "M", ""],
        "age": ["30", "61", ""],
    }
    cols.update(overrides)
    return pd.DataFrame(cols)


def test_good_rows_come_out_in_the_event_engines_shape():
    result = validate_features(_raw(), META)
    f = result.features
    assert list(f.columns) == ["person_id", "observation_date", "default_12m", "late", "util"]
    assert str(f["late"].dtype) == "float64" and math.isnan(f.loc[2, "util"])
    assert f["default_12m"].isna().tolist() == [False, False, True], "empty label = to score"
    p = result.protected
    assert list(p.columns) == ["person_id", "observation_date", "gender", "age_band", "age"]
    assert p["age_band"].tolist()[:2] == ["25-34", "55+"] and p["age_band"].isna()[2]
    assert "gender" not in f.columns and "age" not in f.columns, "protected never a model input"
    assert result.model_features == ["late", "util"]
    assert result.report["total"] == {"input_rows": 3, "accepted": 3, "rejected": 0}


def test_bad_rows_are_rejected_with_one_reason_each_and_none_disappear():
    raw = _raw(
        person_id=["a", "b", "c", "a", "d", ""],
        observation_date=["2024-01-01"] * 4 + ["01/02/2024", "2024-01-01"],
        default_12m=["0", "2", "0", "0", "0", "0"],
        late=["1", "0", "x", "1", "2", "1"],
        util=["0.5", "0.2", "0.1", "0.1", "0.3", "1.5"],
        gender=["F"] * 6,
        age=["30"] * 6,
    )
    result = validate_features(raw, META, {"features": "f.csv", "metadata": "m.yaml"})
    rej = result.rejects.set_index("source_row")["reject_reason"].to_dict()
    assert rej == {
        2: "default_12m 2 above max 1",
        3: "unparseable late 'x'",
        4: "duplicate (person_id, observation_date) ('a', '2024-01-01')",
        5: "unparseable observation_date '01/02/2024'",
        6: "missing person_id",
    }
    assert len(result.features) + len(result.rejects) == len(raw), "input = accepted + rejected"
    assert set(result.rejects["source_file"]) == {"f.csv"}
    assert result.rejects.loc[0, "late"] == "0", "rejects keep the original values as text"


def test_declared_range_and_integer_rules_reject_values():
    raw = _raw(late=["1.5", "-1", "2"], util=["0.5", "0.2", "0.3"])
    result = validate_features(raw, META)
    assert result.rejects["reject_reason"].tolist() == [
        "unparseable late '1.5'",
        "negative late -1",
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"dimension": "wealth"}, "row 1 (feature 'late'): unknown dimension 'wealth'"),
        ({"risk_direction": 2}, "row 1 (feature 'late'): risk_direction must be 1"),
        ({"risk_direction": "up"}, "risk_direction must be a finite number; got 'up'"),
        ({"actionable": "maybe"}, "actionable must be true or false; got 'maybe'"),
        ({"description": ""}, "row 1 (feature 'late'): missing description"),
        ({"unit": "DM"}, "unknown unit 'DM'"),
        ({"min": 5, "max": 1}, "min must be <= max; got 5 > 1"),
        ({"colour": "red"}, "row 1: unknown field 'colour'"),
        ({"feature": "age"}, "'age' is a protected attribute"),
        ({"feature": "gender"}, "'gender' is a protected attribute"),
        ({"feature": "default_12m"}, "is the key or the label, not a feature"),
        ({"levels": ["a", "b"], "max": 5}, "2 levels are the codes 0 to 1"),
    ],
)
def test_metadata_problems_are_fatal_in_one_line_naming_file_row_and_field(row, message):
    rows = [{**META[0], **row}, *META[1:]]
    with pytest.raises(InputError) as err:
        validate_metadata(rows, "m.yaml")
    text = str(err.value)
    assert text.startswith("m.yaml: row 1"), text
    assert message in text and "\n" not in text, text


def test_duplicate_metadata_rows_and_only_protected_are_fatal():
    with pytest.raises(InputError, match=r"m.yaml: row 2 \(feature 'late'\): duplicate of row 1"):
        validate_metadata([META[0], META[0]], "m.yaml")
    with pytest.raises(InputError, match="no model feature declared"):
        validate_metadata([META[2]], "m.yaml")


def test_a_column_without_metadata_and_metadata_without_a_column_are_fatal():
    with pytest.raises(InputError, match=r"f\.csv: column 'income' has no row in m\.yaml"):
        validate_features(
            _raw(income=["1", "2", "3"]), META, {"features": "f.csv", "metadata": "m.yaml"}
        )
    with pytest.raises(InputError, match=r"m\.yaml: feature 'util' is not a column of f\.csv"):
        validate_features(
            _raw().drop(columns="util"), META, {"features": "f.csv", "metadata": "m.yaml"}
        )
    with pytest.raises(InputError, match="missing required column 'default_12m'"):
        validate_features(_raw().drop(columns="default_12m"), META)


def test_levels_encode_a_category_as_its_codes():
    meta = [
        {
            "feature": "housing",
            "dimension": "identity_traits",
            "description": "Housing",
            "risk_direction": 0,
            "actionable": False,
            "levels": "rent|own|free",
        }
    ]
    m = validate_metadata(meta, "m.csv")[0]
    assert (m.unit, m.levels, m.low, m.high, m.integer) == (
        "level",
        ("rent", "own", "free"),
        0.0,
        2.0,
        True,
    )
    raw = pd.DataFrame(
        {
            "person_id": ["a", "b"],
            "observation_date": ["2024-01-01"] * 2,
            "default_12m": ["0", "1"],
            "housing": ["2", "3"],
        }
    )
    assert validate_features(raw, meta).rejects["reject_reason"].tolist() == [
        "housing 3 above max 2"
    ]


def test_input_mode_auto_picks_features_only_when_both_files_are_there(tmp_path):
    assert byof.input_mode(EXAMPLE, "auto") == "features"
    assert byof.input_mode(REPO / "examples" / "tiny", "auto") == "events"
    assert byof.input_mode(EXAMPLE, "events") == "events"
    (tmp_path / "features.csv").write_text("person_id\n")
    assert byof.input_mode(tmp_path, "auto") == "events"
    with pytest.raises(InputError, match="missing feature metadata: expected feature_metadata"):
        byof.input_mode(tmp_path, "features")


def test_csv_and_yaml_metadata_read_the_same(tmp_path):
    rows = yaml.safe_load((EXAMPLE / "feature_metadata.yaml").read_text())["features"]
    frame = pd.DataFrame(rows)
    frame["levels"] = frame["levels"].map(lambda v: "|".join(v) if isinstance(v, list) else "")
    frame.to_csv(tmp_path / "feature_metadata.csv", index=False)
    from_csv = validate_metadata(byof.read_metadata(tmp_path / "feature_metadata.csv"), "c")
    from_yaml = validate_metadata(byof.read_metadata(EXAMPLE / "feature_metadata.yaml"), "y")
    assert from_csv == from_yaml


def test_ingest_and_features_stages_pass_the_example_through(tmp_path):
    """The ingest stage validates examples/byof (auto mode), the features stage writes the
    same rows to data/features with the catalogue; a later events-mode ingest removes the
    features-mode files."""
    from credit_scoring.stages import StageError, features, ingest

    params = Params(data=DataParams(input_dir=str(EXAMPLE)))
    summary = ingest.run(params)
    assert summary["mode"] == "features"
    assert summary["tables"]["features"]["rejected"] == 0
    out = features.run(params)
    assert out["features"] == 8 and out["observation dates"] == 6
    table = pd.read_parquet("data/features/features.parquet")
    protected = pd.read_parquet("data/features/protected.parquet")
    assert len(table) == len(protected) == 4800
    assert {"gender", "age_band"} <= set(protected.columns)
    assert not {"gender", "age"} & set(table.columns)
    catalogue = byof.read_catalogue("data/features")
    assert [m.name for m in catalogue if not m.protected] == list(table.columns[3:])
    # examples/tiny is too small for any validation: ingest writes its tables, then refuses
    with pytest.raises(StageError, match="allow no validation"):
        ingest.run(params, input_dir=REPO / "examples" / "tiny")
    assert not byof.is_byof("data/validated")
    assert Path("data/validated/events.parquet").is_file()
