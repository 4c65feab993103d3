"""The validation boundary: files in a folder -> accepted rows, rejects with reasons, a report."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pandera.errors
import pyarrow as pa
import pytest

from credit_scoring import schemas
from credit_scoring.data.ingest import (
    REJECT_COLUMNS,
    InputError,
    check_contract,
    ingest,
    read_table,
    validate_tables,
    write_ingest_result,
)
from credit_scoring.data.validated import read_validated

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = EXAMPLES / "tiny"
BAD = EXAMPLES / "bad"


def _load_make_examples():
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_EXAMPLES = _load_make_examples()
BAD_CASES = [
    (table, reason) for table, cases in MAKE_EXAMPLES.BAD_ROWS.items() for _, reason in cases
]


@pytest.fixture(scope="module")
def tiny_result():
    return ingest(TINY)


@pytest.fixture(scope="module")
def bad_result():
    return ingest(BAD)


@pytest.fixture
def tiny_copy(tmp_path):
    """A writable copy of the tiny example."""
    folder = tmp_path / "in"
    shutil.copytree(TINY, folder)
    return folder


def _raw_csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def _write_csv(df: pd.DataFrame, folder: Path, name: str) -> None:
    df.to_csv(folder / f"{name}.csv", index=False)


# --------------------------------------------------------------------------- examples


def test_committed_examples_match_their_generator(tmp_path):
    MAKE_EXAMPLES.main(tmp_path)
    for sub in ("tiny", "bad"):
        for name in schemas.TABLES:
            fresh = (tmp_path / sub / f"{name}.csv").read_text()
            committed = (EXAMPLES / sub / f"{name}.csv").read_text()
            assert fresh == committed, f"examples/{sub}/{name}.csv is stale: run make_examples.py"


def test_tiny_example_ingests_with_zero_rejects_and_canonical_dtypes(tiny_result):
    for name, table in schemas.TABLES.items():
        df = getattr(tiny_result.data, name)
        assert len(tiny_result.rejects[name]) == 0, (
            f"{name}: unexpected rejects {tiny_result.rejects[name]['reject_reason'].tolist()}"
        )
        dtypes = {c: str(t) for c, t in df.dtypes.items()}
        assert dtypes == schemas.canonical_dtypes(table), f"{name}: dtypes not canonical"
        assert len(df) > 0, f"{name}: the tiny example must have rows"
    assert set(tiny_result.data.events["event_type"]) == set(schemas.EVENT_TYPES), (
        "the tiny example should contain every event type"
    )
    assert tiny_result.data.outcomes["observation_date"].nunique() == 2, "two observation dates"


def test_tiny_example_values_are_parsed_not_just_typed(tiny_result):
    profiles = tiny_result.data.profiles.set_index("person_id")
    assert profiles.loc["P006", "identity_verified"], "'yes' must parse as True"
    assert profiles.loc["P007", "identity_verified"], "'1' must parse as True"
    assert not profiles.loc["P008", "identity_verified"], "'no' must parse as False"
    assert pd.isna(profiles.loc["P006", "gender"]), "an empty cell must be missing"
    assert profiles.loc["P003", "profile_completeness"] == 1.0, "'1' parses as the float 1.0"
    events = tiny_result.data.events.set_index("event_id")
    assert events.loc["E014", "event_time"] == pd.Timestamp("2024-01-20 10:15:00"), (
        "a timestamp keeps its time of day"
    )


# --------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(("table", "reason"), BAD_CASES, ids=[r for _, r in BAD_CASES])
def test_each_bad_row_is_rejected_with_its_reason(bad_result, table, reason):
    tiny_rows = len(_raw_csv(TINY, table))
    reasons = [r for _, r in MAKE_EXAMPLES.BAD_ROWS[table]]
    expected_row = tiny_rows + reasons.index(reason) + 1
    rejects = bad_result.rejects[table].set_index("source_row")
    assert expected_row in rejects.index, f"{table}: data row {expected_row} was not rejected"
    assert rejects.loc[expected_row, "reject_reason"] == reason, f"{table} row {expected_row}"


def test_only_the_bad_rows_are_rejected(bad_result):
    for table, cases in MAKE_EXAMPLES.BAD_ROWS.items():
        tiny_rows = len(_raw_csv(TINY, table))
        rows = sorted(bad_result.rejects[table]["source_row"].tolist())
        assert rows == list(range(tiny_rows + 1, tiny_rows + len(cases) + 1)), (
            f"{table}: a valid row was rejected, or a bad row accepted"
        )


@pytest.mark.parametrize("folder", [TINY, BAD], ids=["tiny", "bad"])
def test_every_table_input_rows_equal_accepted_plus_rejected(folder):
    result = ingest(folder)
    for name in schemas.TABLES:
        n_input = len(_raw_csv(folder, name))
        n_accepted = len(getattr(result.data, name))
        n_rejected = len(result.rejects[name])
        assert n_input == n_accepted + n_rejected, f"{name}: rows lost or double counted"
        rep = result.report["tables"][name]
        assert (rep["input_rows"], rep["accepted"], rep["rejected"]) == (
            n_input,
            n_accepted,
            n_rejected,
        ), f"{name}: report counts disagree with the data"
        assert sum(rep["rejected_by_reason"].values()) == n_rejected, f"{name}: reason counts"


def test_rejects_keep_original_values_and_where_they_came_from(bad_result):
    events = bad_result.rejects["events"]
    assert list(events.columns[-3:]) == list(REJECT_COLUMNS), "reject columns come last"
    row = events[events["reject_reason"] == "unparseable amount 'abc'"].iloc[0]
    assert row["amount"] == "abc", "the original text of the bad cell is kept"
    assert row["event_id"] == "B13", "the other cells are kept too"
    assert row["source_file"].endswith("events.csv"), "source_file names the file"


def test_report_counts_reasons_by_category_not_by_value(tiny_copy):
    events = _raw_csv(tiny_copy, "events")
    events.loc[0, "event_type"] = "loan_taken"
    events.loc[1, "event_type"] = "bnpl"
    _write_csv(events, tiny_copy, "events")
    result = ingest(tiny_copy)
    counts = result.report["tables"]["events"]["rejected_by_reason"]
    assert counts == {"unknown event_type": 2}, f"one category for both values, got {counts}"
    json.dumps(result.report)  # serialisable without a default= hook


def test_report_has_event_counts_by_type_and_date_range(tiny_result):
    summary = tiny_result.report["events"]
    assert sum(summary["by_type"].values()) == len(tiny_result.data.events), "by_type counts all"
    assert summary["first_event_time"] == "2024-01-01 08:00:00", "first event time"
    assert summary["first_event_time"] < summary["last_event_time"], "a real date range"


def test_extra_column_is_ignored_with_a_warning(tiny_copy):
    contacts = _raw_csv(tiny_copy, "contacts").assign(strength="high")
    _write_csv(contacts, tiny_copy, "contacts")
    result = ingest(tiny_copy)
    assert result.report["tables"]["contacts"]["ignored_columns"] == ["strength"], "named"
    assert any("strength" in w for w in result.report["warnings"]), "a warning names it"
    assert "strength" not in result.data.contacts.columns, "not passed on"
    assert len(result.rejects["contacts"]) == 0, "an extra column rejects nothing"


def test_absent_optional_columns_are_added_as_missing(tiny_copy):
    profiles = _raw_csv(tiny_copy, "profiles")[["person_id"]]
    _write_csv(profiles, tiny_copy, "profiles")
    result = ingest(tiny_copy)
    assert list(result.data.profiles.columns) == list(schemas.PROFILES.column_names), "all columns"
    assert result.data.profiles["education"].isna().all(), "absent column is all missing"
    assert "education" in result.report["tables"]["profiles"]["absent_optional_columns"]


def test_events_without_event_id_get_derived_ids_and_exact_duplicates_rejected(tiny_copy):
    events = _raw_csv(tiny_copy, "events").drop(columns="event_id")
    events = pd.concat([events, events.iloc[[4]]], ignore_index=True)  # row 5 repeated at the end
    _write_csv(events, tiny_copy, "events")
    result = ingest(tiny_copy)
    rejects = result.rejects["events"]
    assert rejects["reject_reason"].tolist() == ["duplicate of row 5"], "the repeat is rejected"
    assert rejects["source_row"].tolist() == [len(events)], "the later copy is the one rejected"
    ids = result.data.events["event_id"]
    assert ids.iloc[0] == "row-1" and ids.is_unique, "ids derived from the data row number"


def test_bool_tokens_are_case_insensitive(tiny_copy):
    profiles = _raw_csv(tiny_copy, "profiles")
    profiles["identity_verified"] = ["TRUE", "False", "YES", "No", "1", "0", "true", ""]
    _write_csv(profiles, tiny_copy, "profiles")
    got = ingest(tiny_copy).data.profiles["identity_verified"].tolist()
    assert got == [True, False, True, False, True, False, True, pd.NA], "bool spellings"


def test_timestamps_with_a_zone_offset_are_rejected(tiny_copy):
    events = _raw_csv(tiny_copy, "events")
    events.loc[0, "event_time"] = "2024-01-01T08:00:00+08:00"
    _write_csv(events, tiny_copy, "events")
    reasons = ingest(tiny_copy).rejects["events"]["reject_reason"].tolist()
    assert reasons == ["unparseable event_time '2024-01-01T08:00:00+08:00'"], "offsets rejected"


def test_a_column_of_only_unparseable_values_rejects_its_rows_with_a_warning(tiny_copy):
    outcomes = _raw_csv(tiny_copy, "outcomes")
    outcomes["observation_date"] = "01/07/2024"
    _write_csv(outcomes, tiny_copy, "outcomes")
    result = ingest(tiny_copy)
    assert len(result.data.outcomes) == 0, "no row can be accepted"
    assert result.report["tables"]["outcomes"]["rejected_by_reason"] == {
        "unparseable observation_date": len(outcomes)
    }, "every row rejected for the one reason"
    assert any("every value of column 'observation_date'" in w for w in result.report["warnings"])


def test_rows_of_a_rejected_profile_are_rejected_as_unknown_person(tiny_copy):
    profiles = _raw_csv(tiny_copy, "profiles")
    profiles.loc[profiles["person_id"] == "P004", "birth_year"] = "1800"
    _write_csv(profiles, tiny_copy, "profiles")
    result = ingest(tiny_copy)
    outcome_reasons = set(result.rejects["outcomes"]["reject_reason"])
    assert outcome_reasons == {"unknown person_id 'P004'"}, "references point at accepted rows"


def test_empty_contacts_file_with_a_header_is_allowed(tiny_copy):
    (tiny_copy / "contacts.csv").write_text("person_id,contact_id,since_date\n")
    result = ingest(tiny_copy)
    assert len(result.data.contacts) == 0, "no contacts"
    assert list(result.data.contacts.columns) == list(schemas.CONTACTS.column_names), "columns"


def test_duplicate_detection_does_not_depend_on_the_comparison_block_size(monkeypatch, bad_result):
    import credit_scoring.data.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "_SORT_BLOCK", 3)
    small_blocks = ingest(BAD)
    for name in schemas.TABLES:
        pd.testing.assert_frame_equal(
            small_blocks.rejects[name], bad_result.rejects[name], obj=f"{name} rejects"
        )


def test_a_bad_value_in_one_chunk_leaves_other_chunks_parsed_exactly(tiny_result):
    raw = {n: _raw_csv(TINY, n) for n in schemas.TABLES}
    amounts = [v or None for v in raw["events"]["amount"]]  # empty cell -> missing
    half = len(amounts) // 2
    first = pa.array(amounts[:half], pa.string())
    second = amounts[half:]
    second[0] = "12,50"  # a decimal comma in the second chunk only
    raw["events"]["amount"] = pd.Series(
        pd.arrays.ArrowExtensionArray(pa.chunked_array([first, pa.array(second, pa.string())]))
    )
    result = validate_tables(raw, {n: f"{n}.csv" for n in raw})
    assert result.rejects["events"]["reject_reason"].tolist() == ["unparseable amount '12,50'"]
    expected = tiny_result.data.events.drop(index=half).reset_index(drop=True)
    pd.testing.assert_frame_equal(result.data.events, expected, obj="events")


# --------------------------------------------------------------------------- fatal errors


def _drop_column(folder: Path, name: str, column: str) -> None:
    _write_csv(_raw_csv(folder, name).drop(columns=column), folder, name)


def _header_only(folder: Path, name: str) -> None:
    header = (folder / f"{name}.csv").read_text().splitlines()[0]
    (folder / f"{name}.csv").write_text(header + "\n")


FATAL_CASES = {
    "missing folder": (lambda f: shutil.rmtree(f), ["in", "folder not found"]),
    "missing file": (
        lambda f: (f / "outcomes.csv").unlink(),
        ["outcomes.parquet", "outcomes.csv"],
    ),
    "missing contacts file": (
        lambda f: (f / "contacts.csv").unlink(),
        ["contacts.parquet", "contacts.csv"],
    ),
    "missing required column": (
        lambda f: _drop_column(f, "events", "event_type"),
        ["events.csv", "missing required column 'event_type'"],
    ),
    "no data rows": (lambda f: _header_only(f, "events"), ["events.csv", "no data rows"]),
    "zero-byte file": (
        lambda f: (f / "profiles.csv").write_text(""),
        ["profiles.csv", "empty file"],
    ),
    "unreadable parquet": (
        lambda f: (f / "profiles.parquet").write_bytes(b"not parquet at all"),
        ["profiles.parquet", "unreadable"],
    ),
    "ragged csv": (
        lambda f: (f / "contacts.csv").write_text("person_id,contact_id,since_date\nP001,P002\n"),
        ["contacts.csv", "unreadable"],
    ),
}


@pytest.mark.parametrize("case", list(FATAL_CASES))
def test_fatal_problem_raises_one_line_input_error_naming_file_and_column(tiny_copy, case):
    breaker, fragments = FATAL_CASES[case]
    breaker(tiny_copy)
    with pytest.raises(InputError) as err:
        ingest(tiny_copy)
    message = str(err.value)
    assert "\n" not in message, f"one line: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_validate_tables_raises_on_a_missing_required_column():
    raw = {name: _raw_csv(TINY, name) for name in schemas.TABLES}
    raw["contacts"] = raw["contacts"].drop(columns="since_date")
    with pytest.raises(InputError, match=r"^contacts\.csv: missing required column 'since_date'$"):
        validate_tables(raw, {name: f"{name}.csv" for name in raw})


# --------------------------------------------------------------------------- formats


def _to_parquet_as_strings(src: Path, dst: Path) -> None:
    dst.mkdir()
    for name in schemas.TABLES:
        raw, _ = read_table(src, schemas.TABLES[name])
        raw.to_parquet(dst / f"{name}.parquet", index=False)


def _to_parquet_typed(src: Path, dst: Path) -> None:
    dst.mkdir()
    data = ingest(src).data
    for name in schemas.TABLES:
        getattr(data, name).to_parquet(dst / f"{name}.parquet", index=False)


@pytest.mark.parametrize("writer", [_to_parquet_as_strings, _to_parquet_typed])
def test_csv_and_parquet_inputs_give_identical_accepted_tables(tmp_path, tiny_result, writer):
    writer(TINY, tmp_path / "pq")
    from_parquet = ingest(tmp_path / "pq")
    for name in schemas.TABLES:
        pd.testing.assert_frame_equal(
            getattr(from_parquet.data, name), getattr(tiny_result.data, name), obj=name
        )
        assert len(from_parquet.rejects[name]) == 0, f"{name}: rejects from Parquet"


def test_parquet_with_other_physical_types_gives_identical_accepted_tables(tmp_path, tiny_result):
    base = tiny_result.data
    events = base.events.assign(
        event_time=base.events["event_time"].dt.tz_localize("Asia/Shanghai"),  # zone dropped
        event_type=base.events["event_type"].astype("category"),  # dictionary-encoded
        days_past_due=base.events["days_past_due"].astype("float64"),  # whole floats
    )
    outcomes = base.outcomes.assign(observation_date=base.outcomes["observation_date"].dt.date)
    tmp_path.joinpath("in").mkdir()
    events.to_parquet(tmp_path / "in" / "events.parquet")
    outcomes.to_parquet(tmp_path / "in" / "outcomes.parquet")
    base.profiles.to_parquet(tmp_path / "in" / "profiles.parquet")
    base.contacts.to_parquet(tmp_path / "in" / "contacts.parquet")
    again = ingest(tmp_path / "in")
    for name in schemas.TABLES:
        pd.testing.assert_frame_equal(getattr(again.data, name), getattr(base, name), obj=name)


def test_parquet_bad_rows_are_rejected_like_csv(tmp_path, bad_result):
    _to_parquet_as_strings(BAD, tmp_path / "pq")
    from_parquet = ingest(tmp_path / "pq")
    for name in schemas.TABLES:
        got = from_parquet.rejects[name][["source_row", "reject_reason"]]
        want = bad_result.rejects[name][["source_row", "reject_reason"]]
        pd.testing.assert_frame_equal(got, want, obj=f"{name} rejects")


def test_already_typed_frames_validate_without_rejects(tiny_result):
    raw = {n: schemas.conform(getattr(tiny_result.data, n), t) for n, t in schemas.TABLES.items()}
    again = validate_tables(raw, {n: n for n in raw})
    for name in schemas.TABLES:
        pd.testing.assert_frame_equal(getattr(again.data, name), raw[name], obj=name)


# --------------------------------------------------------------------------- contract


def test_contract_catches_a_value_ingest_should_have_rejected(tiny_result):
    events = tiny_result.data.events.copy()
    events.loc[0, "amount"] = -1.0
    broken = schemas.BehaviourData(
        profiles=tiny_result.data.profiles,
        outcomes=tiny_result.data.outcomes,
        events=events,
        contacts=tiny_result.data.contacts,
    )
    with pytest.raises(pandera.errors.SchemaError):
        check_contract(broken)


def test_contract_catches_a_non_canonical_dtype(tiny_result):
    broken = schemas.BehaviourData(
        profiles=tiny_result.data.profiles.astype({"person_id": object}),
        outcomes=tiny_result.data.outcomes,
        events=tiny_result.data.events,
        contacts=tiny_result.data.contacts,
    )
    with pytest.raises(AssertionError, match="person_id"):
        check_contract(broken)


# --------------------------------------------------------------------------- writing


def _in_person_order(df: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """Rows stably ordered by their person's row in profiles (how ingest writes them)."""
    row = pd.Series(range(len(profiles)), index=profiles["person_id"].to_numpy())
    key = row.reindex(df["person_id"].to_numpy()).to_numpy()
    return df.iloc[key.argsort(kind="stable")].reset_index(drop=True)


def test_write_ingest_result_writes_every_output(tmp_path, bad_result):
    """Every accepted row is written (profiles as accepted; the tables that refer to a
    person stably in person order, so features can stream them), plus rejects and report."""
    validated, rejects, report = tmp_path / "v", tmp_path / "r", tmp_path / "rep" / "dq.json"
    write_ingest_result(bad_result, validated, rejects, report)
    back = read_validated(validated)
    profiles = bad_result.data.profiles
    for name in schemas.TABLES:
        expected = getattr(bad_result.data, name)
        if name != "profiles":
            expected = _in_person_order(expected, profiles)
        pd.testing.assert_frame_equal(getattr(back, name), expected, obj=name)
        written = pd.read_parquet(rejects / f"{name}.parquet")
        assert len(written) == len(bad_result.rejects[name]), f"{name}: rejects written"
    assert json.loads(report.read_text())["total"] == bad_result.report["total"], "report written"


def test_rejects_files_are_written_even_when_empty(tmp_path, tiny_result):
    write_ingest_result(tiny_result, tmp_path / "v", tmp_path / "r", tmp_path / "dq.json")
    for name in schemas.TABLES:
        written = pd.read_parquet(tmp_path / "r" / f"{name}.parquet")
        assert len(written) == 0, f"{name}: empty rejects"
        assert set(REJECT_COLUMNS) <= set(written.columns), f"{name}: reject columns present"


def test_a_failing_writer_leaves_no_partial_file(tmp_path, tiny_result, monkeypatch):
    def half_write(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_ingest_result(tiny_result, tmp_path / "v", tmp_path / "r", tmp_path / "dq.json")
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], f"partial files left behind: {leftovers}"


# --------------------------------------------------------------------------- documentation

DOC = Path(__file__).resolve().parents[2] / "docs" / "input-format.md"
_KIND_TEXT = {
    "str": "text",
    "date": "date",
    "datetime": "date or timestamp",
    "float": "number",
    "int": "integer",
    "bool": "true/false",
}


def _bound(b: float) -> str:
    return str(int(b)) if float(b).is_integer() else str(b)


def render_column_table(table: schemas.Table) -> str:
    """The markdown column table of docs/input-format.md, rendered from schemas.py."""
    lines = [
        "| column | type | required | may be empty | range / vocabulary | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in table.columns:
        rules = []
        if c.min is not None and c.max is not None:
            rules.append(f"{_bound(c.min)} to {_bound(c.max)}")
        elif c.min is not None or c.max is not None:
            rules.append(f">= {_bound(c.min)}" if c.min is not None else f"<= {_bound(c.max)}")
        if c.allowed is not None:
            rules.append(", ".join(f"`{a}`" for a in c.allowed))
        key = " (key)" if c.name in table.key else ""
        lines.append(
            f"| `{c.name}`{key} | {_KIND_TEXT[c.kind]} | {'yes' if c.required else 'no'} | "
            f"{'yes' if c.nullable else 'no'} | {'; '.join(rules)} | {c.description} |"
        )
    return "\n".join(lines)


def render_event_rules() -> str:
    """The per-event-type table of docs/input-format.md, rendered from schemas.py."""
    lines = ["| event_type | must have | allowed `category` |", "| --- | --- | --- |"]
    for etype in schemas.EVENT_TYPES:
        fields = schemas.EVENT_REQUIRED_FIELDS[etype]
        must = ", ".join(f"`{f}`" for f in fields) or "(nothing more)"
        cats = schemas.EVENT_CATEGORIES.get(etype)
        allowed = ", ".join(f"`{c}`" for c in cats) if cats else "(ignored)"
        lines.append(f"| `{etype}` | {must} | {allowed} |")
    return "\n".join(lines)


def _doc_block(start: str, end: str) -> str:
    text = DOC.read_text()
    return text.split(start, 1)[1].split(end, 1)[0].strip()


@pytest.mark.parametrize("name", list(schemas.ALL_TABLES))
def test_input_format_doc_column_table_matches_schemas(name):
    want = render_column_table(schemas.ALL_TABLES[name])
    got = _doc_block(f"<!-- columns:{name} -->", "<!-- /columns -->")
    assert got == want, f"docs/input-format.md table for {name} is stale; it should read:\n{want}"


def test_input_format_doc_event_rules_match_schemas():
    want = render_event_rules()
    got = _doc_block("<!-- event-rules -->", "<!-- /event-rules -->")
    assert got == want, f"docs/input-format.md event rules are stale; they should read:\n{want}"
