"""The optional input tables (transactions, applications, profile_history), the label taken
from any column, credit balances on statements, and the real-data shapes under examples/:
validated like the four required tables (rejects with a reason, input = accepted +
rejected, one-line fatal errors)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from credit_scoring import schemas
from credit_scoring.data.ingest import InputError, ingest, validate_tables, write_ingest_result
from credit_scoring.data.validated import read_table, read_validated

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = EXAMPLES / "tiny"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHAPES = _load("make_real_shapes")


def _tiny_raw() -> dict[str, pd.DataFrame]:
    return {
        n: pd.read_csv(TINY / f"{n}.csv", dtype=str, keep_default_na=False) for n in schemas.TABLES
    }


def _tx(**fields) -> dict:
    row = {
        "transaction_id": "T1",
        "person_id": "P001",
        "account_id": "C1",
        "transaction_time": "2024-05-01 09:00:00",
        "amount": "-20",
        "balance": "-150.5",
        "kind": "card_payment",
        "counterparty_id": "SHOP1",
    }
    row.update(fields)
    return row


def _validate(**extra: pd.DataFrame):
    raw = {**_tiny_raw(), **extra}
    return validate_tables(raw, {n: f"{n}.csv" for n in raw})


def _reasons(result, table: str) -> list[str]:
    return result.rejects[table]["reject_reason"].tolist()


# --------------------------------------------------------------------------- examples


def test_committed_real_shape_examples_match_their_generator(tmp_path):
    """examples/card_panel and examples/bank_ledger are what make_real_shapes.py writes."""
    SHAPES.main(tmp_path)
    for sub in ("card_panel", "bank_ledger"):
        for path in sorted((EXAMPLES / sub).glob("*.csv")):
            fresh = (tmp_path / sub / path.name).read_text()
            assert fresh == path.read_text(), f"examples/{sub}/{path.name} is stale"


def test_card_panel_with_one_date_ingests_with_zero_rejects_under_its_label():
    """Case 1 of issue #12: one observation date, statements (some in credit) and payments,
    the label column 'default_1m' mapped to the internal label, its horizon recorded."""
    result = ingest(EXAMPLES / "card_panel", label_column="default_1m", horizon_months=1)
    assert result.report["total"]["rejected"] == 0, result.report["tables"]
    assert list(result.report["outcomes"]["observation_dates"]) == ["2025-01-01"]
    assert result.report["label"] == {
        "column": "default_1m",
        "horizon_months": 1,
        "internal_column": schemas.LABEL,
    }
    assert result.data.outcomes[schemas.LABEL].notna().all(), "every row labelled"
    statements = result.data.events[result.data.events["event_type"] == "statement"]
    assert (statements["balance"] < 0).any(), "credit balances kept, not rejected"


def test_bank_ledger_on_hundreds_of_dates_ingests_with_zero_rejects():
    """Case 3: loans on ~300 distinct dates, transactions with negative balances, the
    application and dated facts per person, no events at all, label 'bad_loan'."""
    result = ingest(EXAMPLES / "bank_ledger", label_column="bad_loan", horizon_months=24)
    report = result.report
    assert report["total"]["rejected"] == 0, report["tables"]
    assert len(report["outcomes"]["observation_dates"]) >= 250
    assert len(result.data.events) == 0 and len(result.data.transactions) > 10_000
    assert len(result.data.applications) == len(result.data.outcomes) == 400
    assert result.data.profile_history.groupby("person_id").size().min() == 2
    assert report["transactions"]["negative_balance_share"] > 0
    assert report["transactions"]["by_kind"]["fee"] > 0
    for name in schemas.OPTIONAL_TABLES:
        t = report["tables"][name]
        assert t["present"] and t["input_rows"] == t["accepted"] + t["rejected"], name


# --------------------------------------------------------------------------- optional tables


def test_absent_optional_tables_are_empty_and_reported_absent(tmp_path):
    """The four-table folder of before still ingests; the optional tables are written empty
    and read back empty, also from a validated folder that predates them."""
    result = ingest(TINY)
    for name in schemas.OPTIONAL_TABLES:
        assert len(getattr(result.data, name)) == 0
        assert result.report["tables"][name]["present"] is False
    write_ingest_result(result, tmp_path / "v", tmp_path / "r", tmp_path / "q.json")
    assert all((tmp_path / "v" / f"{n}.parquet").is_file() for n in schemas.ALL_TABLES)
    (tmp_path / "v" / "transactions.parquet").unlink()  # as an older ingest left it
    assert len(read_table(tmp_path / "v", "transactions")) == 0
    assert len(read_validated(tmp_path / "v").applications) == 0


def test_transaction_rows_get_the_first_reason_that_applies():
    rows = [
        _tx(transaction_id="T1"),  # accepted: overdrawn balances are fine
        _tx(transaction_id="T2", kind="salary", amount="-10"),
        _tx(transaction_id="T3", kind="fee", amount="5"),
        _tx(transaction_id="T4", amount="abc"),
        _tx(transaction_id="T5", amount=""),
        _tx(transaction_id="T6", kind="bonus"),
        _tx(transaction_id="T7", person_id="P999"),
        _tx(transaction_id="T1", amount="-1"),
        _tx(transaction_id="T8", transaction_time="2024-05-01T09:00:00+08:00"),
        _tx(transaction_id="T9", balance="-200000000"),
    ]
    result = _validate(transactions=pd.DataFrame(rows))
    assert _reasons(result, "transactions") == [
        "debit amount -10.0 not allowed for salary",
        "credit amount 5.0 not allowed for fee",
        "unparseable amount 'abc'",
        "missing amount",
        "kind 'bonus' not in vocabulary",
        "unknown person_id 'P999'",
        "duplicate transaction_id 'T1'",
        "unparseable transaction_time '2024-05-01T09:00:00+08:00'",
        "balance -200000000.0 below min -100000000",
    ]
    table = result.report["tables"]["transactions"]
    assert (table["input_rows"], table["accepted"], table["rejected"]) == (10, 1, 9)
    assert result.data.transactions["balance"].tolist() == [-150.5]
    assert result.rejects["transactions"]["source_row"].tolist() == list(range(2, 11))


def test_transactions_without_ids_get_row_ids_and_exact_duplicates_are_rejected():
    rows = [_tx(), _tx(amount="-5"), _tx()]
    frame = pd.DataFrame(rows).drop(columns="transaction_id")
    result = _validate(transactions=frame)
    assert result.data.transactions["transaction_id"].tolist() == ["row-1", "row-2"]
    assert _reasons(result, "transactions") == ["duplicate of row 1"]
    assert any("no transaction_id column" in w for w in result.report["warnings"])


def test_applications_need_an_outcome_row_and_valid_terms():
    base = {"person_id": "P001", "observation_date": "2024-07-01", "amount": "20000"}
    rows = [
        {**base, "term_months": "24", "instalment": "900", "product": "cash_loan"},
        {**base, "observation_date": "2024-08-01"},
        {**base, "person_id": "P002", "term_months": "0"},
        {**base, "person_id": "P003", "product": "pawn"},
        {**base, "person_id": "P004", "channel": "fax"},
        {**base, "person_id": "P005", "amount": ""},
        base,
    ]
    result = _validate(applications=pd.DataFrame(rows))
    assert _reasons(result, "applications") == [
        "no outcome row for (person_id, observation_date) ('P001', '2024-08-01')",
        "term_months 0 below min 1",
        "product 'pawn' not in vocabulary",
        "channel 'fax' not in vocabulary",
        "missing amount",
        "duplicate (person_id, observation_date) ('P001', '2024-07-01')",
    ]
    assert result.data.applications["instalment"].tolist() == [900.0]


def test_profile_history_rows_are_keyed_by_person_and_date():
    rows = [
        {"person_id": "P001", "as_of_date": "2023-01-01", "verified_income": "9000"},
        {"person_id": "P001", "as_of_date": "2024-01-01", "occupation": "retired"},
        {"person_id": "P001", "as_of_date": "2024-01-01"},
        {"person_id": "P001", "as_of_date": ""},
        {"person_id": "P001", "as_of_date": "2024-02-01", "education": "phd"},
        {"person_id": "P777", "as_of_date": "2024-02-01"},
    ]
    result = _validate(profile_history=pd.DataFrame(rows))
    assert _reasons(result, "profile_history") == [
        "duplicate (person_id, as_of_date) ('P001', '2024-01-01')",
        "missing as_of_date",
        "education 'phd' not in vocabulary",
        "unknown person_id 'P777'",
    ]
    assert len(result.data.profile_history) == 2


def test_events_may_be_empty_only_when_transactions_has_rows():
    raw = _tiny_raw()
    raw["events"] = raw["events"].iloc[:0]
    with pytest.raises(InputError, match=r"^events.csv: no data rows .*unless transactions"):
        validate_tables(raw, {n: f"{n}.csv" for n in raw})
    result = validate_tables({**raw, "transactions": pd.DataFrame([_tx()])}, {})
    assert len(result.data.events) == 0 and len(result.data.transactions) == 1


# --------------------------------------------------------------------------- label, balances


def test_label_is_read_from_the_named_column_and_messages_name_it(tmp_path):
    """data.label.column = bad_loan: the user's column becomes the internal label, a stray
    default_12m column is ignored, and a bad label value is rejected under its own name."""
    folder = tmp_path / "in"
    shutil.copytree(TINY, folder)
    outcomes = pd.read_csv(folder / "outcomes.csv", dtype=str, keep_default_na=False)
    outcomes["bad_loan"] = outcomes["default_12m"]
    outcomes["default_12m"] = "1"
    outcomes.loc[0, "bad_loan"] = "7"
    outcomes.to_csv(folder / "outcomes.csv", index=False)
    result = ingest(folder, label_column="bad_loan", horizon_months=24)
    assert _reasons(result, "outcomes") == ["bad_loan 7 above max 1"]
    assert "bad_loan" in result.rejects["outcomes"].columns
    assert list(result.data.outcomes.columns) == list(schemas.OUTCOMES.column_names)
    expected = outcomes["bad_loan"].iloc[1:].replace("", "<NA>").tolist()
    got = result.data.outcomes[schemas.LABEL].astype("string").fillna("<NA>").tolist()
    assert got == expected, "labels come from bad_loan, not from the stray default_12m"
    assert result.report["tables"]["outcomes"]["ignored_columns"] == ["default_12m"]
    assert result.report["label"]["horizon_months"] == 24
    write_ingest_result(result, tmp_path / "v", tmp_path / "r", tmp_path / "dq.json")
    assert json.loads((tmp_path / "dq.json").read_text())["label"]["column"] == "bad_loan"


def test_a_missing_label_column_is_a_warning_not_a_silent_loss():
    raw = _tiny_raw()
    result = validate_tables(raw, {}, label_column="default_24m")
    assert result.data.outcomes[schemas.LABEL].isna().all()
    assert any("no label column 'default_24m'" in w for w in result.report["warnings"])


def test_label_column_cannot_be_another_outcomes_column():
    with pytest.raises(ValueError, match="another column"):
        validate_tables(_tiny_raw(), {}, label_column="observation_date")


def test_a_negative_statement_balance_is_kept():
    raw = _tiny_raw()
    stmt = raw["events"][raw["events"]["event_type"] == "statement"].iloc[[0]].copy()
    stmt["event_id"], stmt["balance"] = "CR1", "-35.20"
    raw["events"] = pd.concat([raw["events"], stmt], ignore_index=True)
    result = validate_tables(raw, {})
    assert result.report["tables"]["events"]["rejected"] == 0
    kept = result.data.events.set_index("event_id").loc["CR1", "balance"]
    assert kept == -35.2


def test_ingest_and_features_stages_run_the_ledger_with_the_label_from_params(tmp_path):
    """Through the stages as dvc runs them: params name the label column and horizon, the
    report records them, and the feature table carries the ledger's features and labels."""
    from credit_scoring.config import Params
    from credit_scoring.stages import features as features_stage
    from credit_scoring.stages import ingest as ingest_stage

    params = Params.model_validate(
        {
            "data": {
                "input_dir": str(EXAMPLES / "bank_ledger"),
                "validated_dir": str(tmp_path / "v"),
                "rejects_dir": str(tmp_path / "r"),
                "quality_report": str(tmp_path / "dq.json"),
                "label": {"column": "bad_loan", "horizon_months": 24},
            },
            "features": {"output_dir": str(tmp_path / "f")},
        }
    )
    ingest_stage.run(params)
    report = json.loads((tmp_path / "dq.json").read_text())
    assert report["label"] == {
        "column": "bad_loan",
        "horizon_months": 24,
        "internal_column": schemas.LABEL,
    }
    assert report["total"]["rejected"] == 0
    summary = features_stage.run(params)
    table = pd.read_parquet(tmp_path / "f" / "features.parquet")
    assert summary["rows"] == len(table) == 400
    assert table[schemas.LABEL].notna().all() and 0 < table[schemas.LABEL].mean() < 0.5
    assert table["overdraft_days_365d"].notna().all()
    assert table["instalment_to_income"].notna().mean() > 0.95
