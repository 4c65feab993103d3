"""Point-in-time features: exact values on hand-built people, no leakage from the future,
one implementation for the whole table, a chunk and a single person, a sound registry,
and risk directions that agree with the simulated world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit_scoring import schemas
from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.features.compute import (
    compute_features,
    compute_features_chunked,
    person_data,
    protected_attributes,
)
from credit_scoring.features.registry import (
    DEFAULT_WINDOWS,
    FEATURES,
    PROTECTED_ATTRIBUTES,
    feature_names,
    feature_spec,
    feature_specs,
    monotone_constraints,
)
from credit_scoring.schemas import BehaviourData, Dimension

OBS = pd.Timestamp("2025-01-01")
OBS_B_EARLY = pd.Timestamp("2024-07-01")


def ago(days: float) -> pd.Timestamp:
    """The time ``days`` days before the main observation date."""
    return OBS - pd.Timedelta(days=days)


def _table(rows: list[dict], table: schemas.Table) -> pd.DataFrame:
    """Rows as a canonical table; absent columns become all-missing columns."""
    frame = pd.DataFrame(rows).reindex(columns=list(table.column_names))
    return schemas.conform(frame, table)


def _data(profiles, outcomes, events, contacts) -> BehaviourData:
    return BehaviourData(
        profiles=_table(profiles, schemas.PROFILES),
        outcomes=_table(outcomes, schemas.OUTCOMES),
        events=_table(events, schemas.EVENTS),
        contacts=_table(contacts, schemas.CONTACTS),
    )


def _ev(person, days, etype, **fields) -> dict:
    return {"person_id": person, "event_time": ago(days), "event_type": etype, **fields}


def _rep(person, days, dpd, amount=100.0, due=100.0) -> dict:
    return _ev(person, days, "repayment", amount=amount, amount_due=due, days_past_due=dpd)


def _stmt(person, days, account, balance, limit, dpd=0) -> dict:
    return _ev(
        person,
        days,
        "statement",
        account_id=account,
        balance=balance,
        credit_limit=limit,
        days_past_due=dpd,
    )


def _buy(person, days, amount, category, receipt, returned, review) -> dict:
    return _ev(
        person,
        days,
        "purchase",
        amount=amount,
        category=category,
        receipt_confirmed=receipt,
        returned=returned,
        review_left=review,
    )


def _hand_world() -> BehaviourData:
    """A: a full file with known answers. B: contact of A, scored at two dates, sparse
    profile. C: a contact known to the platform only by a profile (never scored)."""
    profiles = [
        {
            "person_id": "A",
            "gender": "F",
            "birth_year": 1990,
            "education": "bachelor",
            "occupation": "salaried",
            "employment_start_date": ago(730),
            "declared_income": 10_000.0,
            "verified_income": 8_000.0,
            "identity_verified": True,
            "profile_completeness": 0.8,
            "registered_date": ago(400),
        },
        {"person_id": "B", "gender": "M", "birth_year": 2001, "identity_verified": True},
        {"person_id": "C", "identity_verified": False},
    ]
    outcomes = [
        {"person_id": "A", "observation_date": OBS, "default_12m": 0},
        {"person_id": "B", "observation_date": OBS, "default_12m": 1},
        {"person_id": "B", "observation_date": OBS_B_EARLY, "default_12m": 0},
    ]
    events = [
        # A's repayments: window edges are inclusive (age 30 is in the 30-day window).
        _rep("A", 30, 0),
        _rep("A", 90, 5),
        _rep("A", 100, 35, amount=50.0),
        _rep("A", 200, 0),
        _rep("A", 400, 60),  # older than 365 days: only in "days since" and history
        _rep("A", 0, 90),  # ON the observation date: must be ignored
        # A's statements: A1 twice (latest counts), A2 once, A3 not current (> 90 days).
        _stmt("A", 45, "A1", 500.0, 1000.0),
        _stmt("A", 15, "A1", 300.0, 1000.0),
        _stmt("A", 20, "A2", 900.0, 3000.0, dpd=10),
        _stmt("A", 200, "A3", 100.0, 100.0),
        # A's purchases; the first one an hour before the observation date (age 1 day).
        _buy("A", 1 / 24, 100.0, "gaming", True, False, True),
        _buy("A", 50, 300.0, "groceries", False, True, False),
        _buy("A", 60, 100.0, "luxury", True, False, None),
        _ev("A", 100, "address_change"),
        _ev("A", 10, "profile_update"),
        _ev("A", 20, "utility_payment", amount=120.0, category="electricity"),
        _ev("A", 50, "utility_payment", amount=110.0, category="electricity"),
        # B: seriously late 100 days before OBS (after B's early date), and 400 days before.
        _rep("B", 100, 40),
        _rep("B", 400, 45),
        _rep("B", -5, 50),  # after everyone's observation date: must be ignored
    ]
    contacts = [
        {"person_id": "A", "contact_id": "B", "since_date": ago(300)},
        {"person_id": "A", "contact_id": "C", "since_date": ago(120)},
        {"person_id": "A", "contact_id": "OUTSIDER", "since_date": ago(150)},
        {"person_id": "A", "contact_id": "D", "since_date": OBS},  # made on the date: ignored
        # Linked 89 days ago: younger than MIN_LINK_AGE_DAYS, ignored (cheap to game).
        {"person_id": "A", "contact_id": "C2", "since_date": ago(89)},
        {"person_id": "B", "contact_id": "A", "since_date": ago(100)},
    ]
    return _data(profiles, outcomes, events, contacts)


@pytest.fixture(scope="module")
def hand() -> BehaviourData:
    return _hand_world()


@pytest.fixture(scope="module")
def hand_features(hand) -> pd.DataFrame:
    return compute_features(hand)


def _row(features: pd.DataFrame, person: str, date: pd.Timestamp = OBS) -> pd.Series:
    sel = (features["person_id"] == person) & (features["observation_date"] == date)
    assert sel.sum() == 1, f"expected one row for {person} at {date.date()}, got {sel.sum()}"
    return features[sel].iloc[0]


def _check(row: pd.Series, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        got = row[name]
        if np.isnan(value):
            assert np.isnan(got), f"{name}: expected NaN, got {got}"
        else:
            assert got == pytest.approx(value, rel=1e-12), f"{name}: expected {value}, got {got}"


# --------------------------------------------------------------------------- exact values


def test_repayment_counts_rates_and_worst_dpd_follow_the_windows(hand_features):
    """Late counts per window (edges inclusive), on-time rate, worst dpd and days since the
    last late repayment, with the repayment on the observation date left out."""
    _check(
        _row(hand_features, "A"),
        {
            "n_repayments_30d": 1,
            "n_repayments_90d": 2,
            "n_repayments_180d": 3,
            "n_repayments_365d": 4,
            "n_late_30d": 0,
            "n_late_90d": 1,
            "n_late_180d": 2,
            "n_late_365d": 2,
            "n_late_30p_90d": 0,
            "n_late_30p_180d": 1,
            "n_late_30p_365d": 1,
            "ontime_rate_365d": 0.5,
            "late_rate_trend": 0.5 - 0.5,
            "worst_dpd_90d": 5,
            "worst_dpd_365d": 35,
            "days_since_last_late": 90,
            "repaid_to_due_365d": 350 / 400,
            "credit_history_months": np.floor(400 * 12 / 365),
        },
    )


def test_statement_features_use_the_latest_statement_of_each_current_account(hand_features):
    """Utilisation, limit and delinquency from the latest statement per account with a
    statement in the last 90 days; means and max over all statements in the window."""
    _check(
        _row(hand_features, "A"),
        {
            "n_current_accounts": 2,
            "utilisation_latest": (300 + 900) / (1000 + 3000),
            "credit_limit": 4000,
            "current_dpd": 10,
            "utilisation_mean_90d": (0.5 + 0.3 + 0.3) / 3,
            "utilisation_mean_365d": (0.5 + 0.3 + 0.3 + 1.0) / 4,
            "utilisation_max_365d": 1.0,
            "n_delinquent_statements_365d": 1,
            "balance_to_income": 1200 / 8000,  # verified income wins over declared
        },
    )


def test_purchase_rates_shares_and_profile_facts(hand_features):
    """Receipt/return/review rates ignore unknown flags; gaming+luxury share of spend;
    profile facts at the observation date."""
    _check(
        _row(hand_features, "A"),
        {
            "n_purchases_30d": 1,
            "spend_90d": 500,
            # shares of spending: 100 + 300 + 100 CNY, review known on the first two only
            "receipt_confirm_rate_365d": 200 / 500,
            "return_rate_365d": 300 / 500,
            "review_rate_365d": 100 / 400,
            "gaming_luxury_share_365d": 200 / 500,
            "category_diversity_365d": 3,
            "days_since_last_purchase": 1,
            "spend_to_income_90d": (500 / 3) / 8000,
            "income_verified": 1,
            "income_verified_ratio": 0.8,
            "employment_years": 730 / 365.25,
            "education_level": 3,
            "occupation_stability": 3,
            "platform_months": np.floor(400 * 12 / 365),
            "n_address_changes_365d": 1,
            "days_since_address_change": 100,
            "n_profile_updates_365d": 1,
            "n_utility_payments_365d": 2,
            "utility_months_12m": 2,
        },
    )


def test_network_features_use_known_contacts_linked_90_days_before_the_date(hand_features):
    """A has B (late 100 days ago), C (no lates) and an outsider, all linked 90+ days ago;
    D was added on the date and C2 89 days before it: both ignored."""
    _check(
        _row(hand_features, "A"),
        {
            "n_contacts": 3,
            "n_contacts_known": 2,
            "contacts_late30_share_365d": 1 / 2,
            "contacts_late30_mean_365d": 1 / 2,
            "contacts_verified_share": 1 / 2,
        },
    )


def test_a_person_scored_twice_gets_features_per_observation_date(hand_features):
    """B's late repayment 100 days before OBS lies after B's early date: only the later row
    sees it; rows come back in outcomes order; missing profile facts stay NaN."""
    assert list(hand_features["person_id"]) == ["A", "B", "B"], "rows must keep outcomes order"
    late, early = _row(hand_features, "B", OBS), _row(hand_features, "B", OBS_B_EARLY)
    _check(late, {"n_late_30p_365d": 1, "days_since_last_late": 100, "n_contacts": 1})
    _check(
        early,
        {
            "n_late_30p_365d": 1,  # the one 400 days before OBS is 216 days before OBS_B_EARLY
            "days_since_last_late": (OBS_B_EARLY - ago(400)).days,
            "n_contacts": 0,  # the contact with A was made after this date
            "contacts_late30_share_365d": np.nan,
        },
    )
    _check(late, {"declared_income": np.nan, "employment_years": np.nan, "income_verified": 0})


def test_people_without_events_get_zero_counts_and_nan_rates():
    """Empty events and contacts tables still give a full row: counts 0, rates NaN."""
    data = _data(
        [{"person_id": "Z"}],
        [{"person_id": "Z", "observation_date": OBS}],
        [],
        [],
    )
    row = _row(compute_features(data), "Z")
    _check(
        row,
        {
            "n_late_365d": 0,
            "n_contacts": 0,
            "ontime_rate_365d": np.nan,
            "days_since_last_late": np.nan,
            "credit_history_months": 0,
            "identity_verified": np.nan,
        },
    )


def test_order_rates_weigh_orders_by_amount_so_tiny_orders_barely_count():
    """One unconfirmed, unreviewed order of 300 CNY, then a burst of 10 orders of 5 CNY
    confirmed and reviewed: the rates are shares of spending (50 / 350), not of orders
    (10 / 11), so a burst of tiny orders cannot buy a clean record."""
    burst = [_buy("Z", 5 - i / 1000, 5.0, "groceries", True, False, True) for i in range(10)]
    data = _data(
        [{"person_id": "Z"}],
        [{"person_id": "Z", "observation_date": OBS}],
        [_buy("Z", 50, 300.0, "groceries", False, False, False), *burst],
        [],
    )
    _check(
        _row(compute_features(data), "Z"),
        {
            "n_purchases_365d": 11,
            "receipt_confirm_rate_365d": 50 / 350,
            "review_rate_365d": 50 / 350,
            "return_rate_365d": 0,
        },
    )


# --------------------------------------------------------------------------- no leakage


_FUTURE_EVENTS = st.sampled_from(
    [
        lambda p, d: _rep(p, d, 120),
        lambda p, d: _stmt(p, d, "A1", 5000.0, 1000.0, dpd=60),
        lambda p, d: _buy(p, d, 9999.0, "luxury", False, True, False),
        lambda p, d: _ev(p, d, "utility_payment", amount=1.0),
        lambda p, d: _ev(p, d, "phone_topup", amount=1.0),
        lambda p, d: _ev(p, d, "address_change"),
        lambda p, d: _ev(p, d, "profile_update"),
    ]
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    make=_FUTURE_EVENTS,
    person=st.sampled_from(["A", "B", "C"]),
    days_after=st.floats(min_value=0.0, max_value=400.0),
)
def test_events_on_or_after_the_observation_date_change_nothing(
    hand, hand_features, make, person, days_after
):
    """Property: any event at or after the date (own events, or a contact's) is invisible,
    and so is a contact made on the date.

    B is also scored at an early date, so B's events are placed after B's *latest* date.
    """
    extra = _table([make(person, -days_after)], schemas.EVENTS)
    contact = _table([{"person_id": "A", "contact_id": "B", "since_date": OBS}], schemas.CONTACTS)
    after = compute_features(
        BehaviourData(
            hand.profiles,
            hand.outcomes,
            pd.concat([hand.events, extra], ignore_index=True),
            pd.concat([hand.contacts, contact], ignore_index=True),
        )
    )
    pd.testing.assert_frame_equal(hand_features, after, check_exact=True, obj="features")


def _with_future(data: BehaviourData, seed: int) -> BehaviourData:
    """Add copies of a random 30% of the events moved on or after their *horizon*, contacts
    made on or after the person's date, and contacts' seriously late repayments on or
    after the horizon. A person's horizon is the latest observation date at which anyone
    looks at their events: their own, or that of someone who has them as a contact.
    """
    rng = np.random.default_rng(seed)
    last_obs = data.outcomes.groupby("person_id")["observation_date"].max()
    links = data.contacts[data.contacts["contact_id"].isin(last_obs.index)]
    seen_by = pd.Series(last_obs.reindex(links["person_id"]).to_numpy(), index=links["contact_id"])
    horizon = pd.concat([last_obs, seen_by]).groupby(level=0).max()

    ev = data.events.sample(frac=0.3, random_state=seed).reset_index(drop=True)
    offset = pd.to_timedelta(rng.choice([0, 0, 3_600, 86_400 * 40], len(ev)), unit="s")
    ev["event_time"] = horizon.reindex(ev["person_id"]).to_numpy() + offset

    ct = data.contacts.sample(frac=0.3, random_state=seed).reset_index(drop=True)
    ct["since_date"] = last_obs.reindex(ct["person_id"]).to_numpy() + pd.to_timedelta(
        rng.integers(0, 30, len(ct)), unit="D"
    )
    late = pd.DataFrame(
        {
            "person_id": links["contact_id"].to_numpy(),
            "event_time": horizon.reindex(links["contact_id"]).to_numpy(),
            "event_type": "repayment",
            "amount": 1.0,
            "amount_due": 100.0,
            "days_past_due": 90,
        }
    )
    return BehaviourData(
        profiles=data.profiles,
        outcomes=data.outcomes,
        events=pd.concat(
            [data.events, ev, _table(late.to_dict("records"), schemas.EVENTS)], ignore_index=True
        ),
        contacts=pd.concat([data.contacts, ct], ignore_index=True),
    )


# --------------------------------------------------------------------------- simulated world


@pytest.fixture(scope="module")
def world() -> tuple[BehaviourData, pd.DataFrame]:
    from credit_scoring.data.simulate import simulate_world

    return simulate_world(SimulateParams(n_users=4_000, chunk_size=2_000), BaseParams())


@pytest.fixture(scope="module")
def world_features(world) -> pd.DataFrame:
    return compute_features(world[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_future_events_contacts_and_contacts_lates_change_nothing_on_simulated_data(
    world, world_features, seed
):
    """Randomised: a copy of the world with extra future rows gives identical features."""
    after = compute_features(_with_future(world[0], seed))
    pd.testing.assert_frame_equal(world_features, after, check_exact=True, obj="features")


def _slice(data: BehaviourData, person: str) -> BehaviourData:
    """What the service would pass: the person's rows and their contacts' rows."""
    contacts = data.contacts[data.contacts["person_id"] == person]
    linked = {person, *contacts["contact_id"]}
    return BehaviourData(
        profiles=data.profiles[data.profiles["person_id"].isin(linked)],
        outcomes=data.outcomes[data.outcomes["person_id"] == person],
        events=data.events[data.events["person_id"].isin(linked)],
        contacts=contacts,
    )


def _same_rows(full: pd.DataFrame, person: str, single: pd.DataFrame) -> None:
    expected = full[full["person_id"] == person].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        single.reset_index(drop=True), expected, check_exact=True, obj=f"features of {person}"
    )


def test_single_person_features_equal_whole_table_features(world, world_features):
    """The service path (one person's data plus their contacts') gives exactly the rows of
    the batch path, NaN positions included, for people with and without contacts."""
    data = world[0]
    n_contacts = world_features.set_index("person_id")["n_contacts"]
    people = [
        *n_contacts[n_contacts == 0].index[:2],
        *n_contacts[n_contacts >= 4].index[:3],
        *world_features.loc[world_features["n_late_30p_365d"] > 0, "person_id"].iloc[:2],
        *world_features.loc[world_features["declared_income"].isna(), "person_id"].iloc[:1],
        *world_features.loc[world_features["contacts_late30_share_365d"] > 0, "person_id"].iloc[:2],
    ]
    assert len(people) >= 6, "the simulated world should offer every kind of person"
    for person in people:
        _same_rows(world_features, person, compute_features(_slice(data, person)))
        _same_rows(world_features, person, compute_features(person_data(data, [person])))


def test_single_person_with_several_dates_equals_whole_table(hand, hand_features):
    """A person scored at two dates: the single-person path gives both rows exactly."""
    for person in ("A", "B"):
        _same_rows(hand_features, person, compute_features(_slice(hand, person)))


def test_chunked_equals_unchunked_and_reports_progress(world, world_features):
    """Chunks of people (contacts in other chunks included) give the identical table."""
    calls = []
    chunked = compute_features_chunked(
        world[0], DEFAULT_WINDOWS, chunk_people=1_500, progress=calls.append
    )
    pd.testing.assert_frame_equal(chunked, world_features, check_exact=True, obj="chunked")
    assert calls == [1_500, 3_000, 4_000], f"progress must report rows done; got {calls}"


def test_chunked_handles_people_scored_at_several_dates(hand, hand_features):
    """One person per chunk, B with two rows and A's contact B in another chunk."""
    chunked = compute_features_chunked(hand, chunk_people=1)
    pd.testing.assert_frame_equal(chunked, hand_features, check_exact=True, obj="chunked")


def test_protected_attributes_never_change_features(world, world_features):
    """Invariance: shuffling gender and birth year across people changes no feature."""
    data = world[0]
    profiles = data.profiles.copy()
    rng = np.random.default_rng(3)
    for col in ("gender", "birth_year"):
        profiles[col] = profiles[col].to_numpy()[rng.permutation(len(profiles))]
    shuffled = compute_features(BehaviourData(profiles, data.outcomes, data.events, data.contacts))
    pd.testing.assert_frame_equal(shuffled, world_features, check_exact=True, obj="features")


def test_protected_attributes_table_gives_gender_and_age_band_per_row(hand):
    """person_id, observation_date, gender and the age band at the observation date."""
    prot = protected_attributes(hand)
    assert list(prot.columns) == ["person_id", "observation_date", "gender", "age_band"]
    assert list(prot["gender"]) == ["F", "M", "M"], "gender per outcome row"
    # A born 1990 -> 35 in 2025; B born 2001 -> 24 in 2025 and 23 in 2024.
    assert list(prot["age_band"]) == ["35-44", "18-24", "18-24"], "age band at the date"


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank().to_numpy()


def test_declared_risk_directions_agree_with_the_simulated_truth(world, world_features):
    """For constrained features, Spearman correlation with the true PD has the declared
    sign for nearly all; none is clearly the wrong way round."""
    true_pd = world[1]["true_pd"].to_numpy()
    wrong, clearly_wrong, checked = [], [], 0
    for spec in FEATURES:
        if spec.risk_direction == 0:
            continue
        x = world_features[spec.name].to_numpy()
        ok = ~np.isnan(x)
        if ok.sum() < 100 or np.nanstd(x) == 0:
            continue
        rho = np.corrcoef(_ranks(x[ok]), _ranks(true_pd[ok]))[0, 1]
        checked += 1
        if np.sign(rho) != spec.risk_direction:
            wrong.append(f"{spec.name} (rho={rho:+.3f})")
        if rho * spec.risk_direction < -0.05:
            clearly_wrong.append(spec.name)
    assert checked >= 30, f"only {checked} constrained features could be checked"
    assert not clearly_wrong, f"risk direction clearly wrong for {clearly_wrong}"
    assert len(wrong) <= 0.15 * checked, f"sign disagrees for {wrong}"


# --------------------------------------------------------------------------- registry


def test_registry_is_complete_unique_and_documented():
    """>= 40 features over all five dimensions, unique names, a description each and a
    risk direction in {-1, 0, 1}."""
    names = feature_names()
    assert len(FEATURES) >= 40, f"only {len(FEATURES)} features"
    assert len(set(names)) == len(names), "feature names must be unique"
    assert {s.dimension for s in FEATURES} == set(Dimension), "every dimension needs features"
    per_dim = pd.Series([s.dimension for s in FEATURES]).value_counts()
    assert per_dim.min() >= 4, f"too few features in a dimension: {per_dim.to_dict()}"
    for s in FEATURES:
        assert s.description.strip(), f"{s.name} has no description"
        assert "{" not in s.description, f"{s.name} has an unfilled template"
        assert s.risk_direction in (-1, 0, 1), f"{s.name}: bad risk_direction"
        assert s.unit, f"{s.name} has no unit"


def test_no_protected_attribute_is_a_feature():
    """gender, birth_year and age never appear among the feature names."""
    for name in feature_names():
        for attr in PROTECTED_ATTRIBUTES:
            assert attr not in name.split("_") and not name.startswith(attr), (
                f"{name} looks like protected attribute {attr}"
            )


def test_output_columns_follow_the_registry(hand_features):
    """Output = person_id, observation_date, then feature_names() in order, all float64."""
    assert list(hand_features.columns) == ["person_id", "observation_date", *feature_names()]
    dtypes = hand_features[feature_names()].dtypes
    assert (dtypes == np.float64).all(), f"non-float features: {dtypes[dtypes != np.float64]}"


def test_other_windows_rename_windowed_features_and_keep_metadata(hand):
    """windows=(30, 60, 90, 365) gives n_late_60d etc.; its spec resolves by name."""
    windows = (30, 60, 90, 365)
    out = compute_features(hand, windows)
    assert list(out.columns[2:]) == feature_names(windows), "columns follow the windows"
    assert "n_late_60d" in out.columns and "n_late_180d" not in out.columns
    assert _row(out, "A")["n_late_60d"] == 0, "no late repayment within 60 days"
    assert feature_spec("n_late_60d").description == "Repayments made late in the last 60 days"
    assert [s.name for s in feature_specs((365, 30, 90))] == feature_names((30, 90, 365))


def test_bad_windows_unknown_names_and_bad_chunks_are_rejected(hand):
    """Invalid arguments fail with a message naming the problem."""
    with pytest.raises(ValueError, match="distinct"):
        compute_features(hand, (30, 30, 90))
    with pytest.raises(ValueError, match="positive"):
        compute_features(hand, (0, 90))
    with pytest.raises(KeyError, match="unknown feature 'shoe_size'"):
        feature_spec("shoe_size")
    with pytest.raises(ValueError, match="chunk_people must be >= 1"):
        compute_features_chunked(hand, chunk_people=0)


def test_monotone_constraints_are_the_risk_directions():
    """LightGBM constraints are the declared directions, in the order asked for."""
    names = ["n_late_90d", "ontime_rate_365d", "n_purchases_30d"]
    assert monotone_constraints(names) == [1, -1, 0]
