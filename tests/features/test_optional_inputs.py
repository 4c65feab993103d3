"""Features of the optional inputs: exact values on a hand-built ledger, application and dated
profile facts; the point-in-time profile join (no snapshot leak); and one implementation for
the whole table, a chunk, a single person and the streamed stage."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring import io, schemas
from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.data import validated as vt
from credit_scoring.data.ingest import ingest, write_ingest_result
from credit_scoring.features import streaming
from credit_scoring.features.compute import compute_features, compute_features_chunked, person_data
from credit_scoring.features.registry import FEATURES, feature_spec
from credit_scoring.schemas import BehaviourData, Dimension

OBS = pd.Timestamp("2025-01-01")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load_shapes():
    spec = importlib.util.spec_from_file_location("shapes", EXAMPLES / "make_real_shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHAPES = _load_shapes()
NEW = [
    "overdraft_days_365d",
    "overdraft_share_90d",
    "n_fees_365d",
    "income_monthly_90d",
    "income_months_12m",
    "min_balance_90d",
    "loan_amount",
    "loan_term_months",
    "instalment_to_income",
    "loan_to_income",
    "debit_to_credit_90d",
    "application_product",
    "application_channel",
    "bank_account_months",
    "days_since_profile_facts",
    "n_counterparties_365d",
]


def ago(days: float) -> pd.Timestamp:
    return OBS - pd.Timedelta(days=days)


def _table(rows: list[dict], table: schemas.Table) -> pd.DataFrame:
    return schemas.conform(pd.DataFrame(rows).reindex(columns=list(table.column_names)), table)


def _tx(person, days, amount, balance, kind, counterparty=None) -> dict:
    return {
        "transaction_id": f"{person}-{days}-{kind}-{amount}",
        "person_id": person,
        "account_id": f"ACC-{person}",
        "transaction_time": ago(days),
        "amount": amount,
        "balance": balance,
        "kind": kind,
        "counterparty_id": counterparty,
    }


@pytest.fixture(scope="module")
def hand() -> pd.DataFrame:
    """A: a ledger with an overdraft, no verified income, an application. B: verified income,
    no ledger, an application. D: dated facts, scored before, between and after them.
    E: no dated facts (undated profile), a statement in credit."""
    profiles = [
        {"person_id": "A", "verified_income": None},
        {"person_id": "B", "verified_income": 4000.0},
        {
            "person_id": "D",
            "verified_income": 9999.0,
            "occupation": "salaried",
            "education": "doctorate",
        },
        {"person_id": "E", "verified_income": 4000.0, "occupation": "retired"},
    ]
    outcomes = [
        {"person_id": "A", "observation_date": OBS},
        {"person_id": "B", "observation_date": OBS},
        {"person_id": "D", "observation_date": pd.Timestamp("2024-01-01")},
        {"person_id": "D", "observation_date": pd.Timestamp("2024-07-01")},
        {"person_id": "D", "observation_date": OBS},
        {"person_id": "E", "observation_date": OBS},
    ]
    transactions = [
        _tx("A", 100, 1000.0, 1000.0, "salary", "EMP1"),
        _tx("A", 50, -1500.0, -500.0, "card_payment", "SHOP1"),
        _tx("A", 49.5, -15.0, -515.0, "fee"),  # later the same day: the end-of-day balance
        _tx("A", 20, 2000.0, 1485.0, "salary", "EMP1"),
        _tx("A", -5, -9000.0, -9999.0, "cash"),  # after the observation date: never read
    ]
    applications = [
        {"person_id": "A", "observation_date": OBS, "amount": 12000.0, "term_months": 24,
         "product": "car_loan", "channel": "online"},
        {"person_id": "B", "observation_date": OBS, "amount": 6000.0, "term_months": 12,
         "instalment": 600.0},
    ]  # fmt: skip
    history = [
        {"person_id": "D", "as_of_date": pd.Timestamp("2024-03-01"), "verified_income": 3000.0,
         "occupation": "gig_worker", "education": "master",
         "employment_start_date": pd.Timestamp("2020-07-01")},
        {"person_id": "D", "as_of_date": pd.Timestamp("2024-09-01"), "verified_income": 5000.0,
         "occupation": "civil_servant"},
        {"person_id": "D", "as_of_date": OBS, "verified_income": 7000.0},  # not strictly before
    ]  # fmt: skip
    events = [
        {"person_id": "E", "event_time": ago(10), "event_type": "statement", "account_id": "K",
         "balance": -200.0, "credit_limit": 1000.0, "days_past_due": 0},
    ]  # fmt: skip
    data = BehaviourData(
        profiles=_table(profiles, schemas.PROFILES),
        outcomes=_table(outcomes, schemas.OUTCOMES),
        events=_table(events, schemas.EVENTS),
        contacts=schemas.empty_table(schemas.CONTACTS),
        transactions=_table(transactions, schemas.TRANSACTIONS),
        applications=_table(applications, schemas.APPLICATIONS),
        profile_history=_table(history, schemas.PROFILE_HISTORY),
    )
    features = compute_features(data)
    features.index = ["A", "B", "D_jan", "D_jul", "D_obs", "E"]
    return features


def test_ledger_features_follow_the_end_of_day_balance(hand):
    """A's balance: 1000 for 50 days, overdrawn (-515 at the end of that day) for 30, then
    1485 for 20. The future transaction is never read."""
    a = hand.loc["A"]
    assert a["overdraft_days_365d"] == 30
    assert a["overdraft_share_90d"] == pytest.approx(30 / 90)  # 40 + 30 + 20 days covered
    assert a["min_balance_90d"] == -515.0, "the end-of-day balance, not the intraday -500"
    assert a["n_fees_365d"] == 1
    assert a["income_monthly_90d"] == pytest.approx(2000 / 3)
    assert a["income_months_12m"] == 2
    assert a["debit_to_credit_90d"] == pytest.approx(1515 / 2000)
    assert a["bank_account_months"] == 3  # 100 days
    assert a["n_counterparties_365d"] == 2


def test_without_a_ledger_balances_are_unknown_and_counts_zero(hand):
    b = hand.loc["B"]
    for name in (
        "overdraft_days_365d",
        "overdraft_share_90d",
        "min_balance_90d",
        "income_monthly_90d",
        "income_months_12m",
        "debit_to_credit_90d",
        "bank_account_months",
    ):
        assert np.isnan(b[name]), name
    assert b["n_fees_365d"] == 0 and b["n_counterparties_365d"] == 0


def test_application_features_use_verified_income_else_the_account_income(hand):
    a, b, e = hand.loc["A"], hand.loc["B"], hand.loc["E"]
    assert (a["loan_amount"], a["loan_term_months"]) == (12000.0, 24.0)
    assert a["instalment_to_income"] == pytest.approx(500 / (2000 / 3)), "amount / term"
    assert a["loan_to_income"] == pytest.approx(12000 / (2000 / 3))
    assert a["application_product"] == schemas.PRODUCTS.index("car_loan")
    assert a["application_channel"] == schemas.CHANNELS.index("online")
    assert b["instalment_to_income"] == pytest.approx(600 / 4000)
    assert b["loan_to_income"] == pytest.approx(6000 / 4000)
    assert np.isnan(b["application_product"]) and np.isnan(b["application_channel"])
    assert np.isnan(e["loan_amount"]) and np.isnan(e["instalment_to_income"]), "no application"


def test_dated_profile_facts_are_the_latest_strictly_before_the_date(hand):
    """No leak: before D's first dated row every dated fact is unknown (not the undated
    profile, which may be known only at the newest date); a row dated on the observation
    date is not yet known; a person without dated facts keeps the undated profile."""
    jan, jul, obs = hand.loc["D_jan"], hand.loc["D_jul"], hand.loc["D_obs"]
    assert np.isnan(jan["verified_income"]) and np.isnan(jan["occupation_stability"])
    assert np.isnan(jan["days_since_profile_facts"])
    assert jul["verified_income"] == 3000.0
    assert jul["occupation_stability"] == 1  # gig_worker
    assert jul["education_level"] == schemas.EDUCATION_LEVELS.index("master")
    employed = pd.Timestamp("2024-07-01") - pd.Timestamp("2020-07-01")
    assert jul["employment_years"] == pytest.approx(employed.days / 365.25)
    assert jul["days_since_profile_facts"] == 122
    assert obs["verified_income"] == 5000.0, "the 2025-01-01 row is not strictly before"
    assert obs["occupation_stability"] == 4  # civil servant
    assert np.isnan(obs["education_level"]), "an empty cell of the dated row is unknown then"
    assert obs["days_since_profile_facts"] == 122
    e = hand.loc["E"]
    assert e["verified_income"] == 4000.0 and e["occupation_stability"] == 3
    assert np.isnan(e["days_since_profile_facts"])


def test_a_statement_in_credit_counts_as_nothing_owed(hand):
    e = hand.loc["E"]
    assert e["utilisation_latest"] == 0.0 and e["utilisation_mean_90d"] == 0.0
    assert e["balance_to_income"] == 0.0


def test_new_features_cover_all_five_dimensions_with_known_directions():
    specs = [feature_spec(n) for n in NEW]
    assert {s.dimension for s in specs} == set(Dimension)
    assert set(NEW) <= {s.name for s in FEATURES}
    directions = {s.name: s.risk_direction for s in specs}
    for name in ("overdraft_days_365d", "overdraft_share_90d", "n_fees_365d",
                 "instalment_to_income", "loan_to_income", "debit_to_credit_90d"):  # fmt: skip
        assert directions[name] == 1, name
    for name in ("income_monthly_90d", "income_months_12m", "min_balance_90d",
                 "bank_account_months"):  # fmt: skip
        assert directions[name] == -1, name
    assert feature_spec("min_balance_90d").value_range.low == -np.inf, "overdrawn is negative"


# --------------------------------------------------------------------------- engines


def _with_accounts(data: BehaviourData, n_people: int, seed: int) -> BehaviourData:
    """The world plus ledgers, applications and dated facts for some of its scored people."""
    people = data.outcomes["person_id"].drop_duplicates().iloc[:n_people]
    rows = data.outcomes[data.outcomes["person_id"].isin(people)]
    extra = SHAPES.accounts_for(
        rows["person_id"].tolist(),
        rows["observation_date"].to_numpy(),
        seed=seed,
        days_before=120,
        days_after=20,
    )
    return BehaviourData(
        profiles=data.profiles,
        outcomes=data.outcomes,
        events=data.events,
        contacts=data.contacts,
        transactions=schemas.conform(extra["transactions"], schemas.TRANSACTIONS),
        applications=schemas.conform(extra["applications"], schemas.APPLICATIONS),
        profile_history=schemas.conform(extra["profile_history"], schemas.PROFILE_HISTORY),
    )


@pytest.fixture(scope="module")
def world() -> BehaviourData:
    from credit_scoring.data.simulate import simulate_world

    data, _ = simulate_world(SimulateParams(n_users=1_500, chunk_size=1_500), BaseParams())
    return _with_accounts(data, n_people=150, seed=1)


@pytest.fixture(scope="module")
def world_features(world) -> pd.DataFrame:
    return compute_features(world)


def test_optional_inputs_reach_the_features_of_the_people_who_have_them(world, world_features):
    has = world_features["person_id"].isin(world.transactions["person_id"])
    assert 100 <= has.sum() < len(world_features)
    assert world_features.loc[has, "income_monthly_90d"].notna().mean() > 0.9
    assert world_features.loc[~has, "income_monthly_90d"].isna().all()
    assert (world_features.loc[has, "overdraft_days_365d"] > 0).any()
    assert world_features.loc[has, "loan_amount"].notna().all()


def test_chunks_and_single_people_equal_the_whole_table_with_optional_inputs(world, world_features):
    chunked = compute_features_chunked(world, chunk_people=97)
    pd.testing.assert_frame_equal(chunked, world_features, check_exact=True, obj="chunked")
    for person in world.transactions["person_id"].drop_duplicates().iloc[:5]:
        single = compute_features(person_data(world, [person])).reset_index(drop=True)
        expected = world_features[world_features["person_id"] == person].reset_index(drop=True)
        pd.testing.assert_frame_equal(single, expected, check_exact=True, obj=person)


def test_streamed_stage_equals_compute_features_with_optional_inputs(world, tmp_path):
    """Through ingest (person order) and the streamed stage in chunks of 100 people."""
    raw = tmp_path / "raw"
    for name in schemas.ALL_TABLES:
        io.write_parquet(getattr(world, name), raw / f"{name}.parquet")
    write_ingest_result(ingest(raw), tmp_path / "v", tmp_path / "r", tmp_path / "dq.json")
    streaming.write_features(tmp_path / "v", tmp_path / "f", chunk_people=100, batch_rows=5_000)
    got = pd.read_parquet(tmp_path / "f" / "features.parquet")
    data = vt.read_validated(tmp_path / "v")
    labels = data.outcomes[["person_id", "observation_date", schemas.LABEL]]
    expected = compute_features(data).merge(labels, on=["person_id", "observation_date"])
    pd.testing.assert_frame_equal(got, expected, check_exact=True, obj="streamed features")
    assert got["instalment_to_income"].notna().sum() > 100
