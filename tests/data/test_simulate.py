"""The synthetic world: seeded, on target, point in time, schema-valid and not a toy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from credit_scoring import schemas
from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.data.simulate import (
    TRUTH_COLUMNS,
    cohort_dates,
    iter_world_chunks,
    simulate_world,
    write_world,
)

TABLE_NAMES = ("profiles", "outcomes", "events", "contacts")
LARGE = SimulateParams(n_users=20_000)  # enough people to measure rates and correlations
LARGE_BASE = BaseParams(seed=11)


@pytest.fixture(scope="module")
def world():
    """A small world in two chunks (so cross-chunk ids are exercised too)."""
    return simulate_world(SimulateParams(n_users=4000, chunk_size=2000), BaseParams(seed=7))


@pytest.fixture(scope="module")
def large_world():
    """20,000 people at the default 5% target and no drift."""
    return simulate_world(LARGE, LARGE_BASE)


def _schema_violations(df: pd.DataFrame, table: schemas.Table) -> list[str]:
    """Every way ``df`` breaks ``table``'s contract, in words (empty when it conforms)."""
    problems = []
    if tuple(df.columns) != table.column_names:
        problems.append(f"columns {list(df.columns)} != {list(table.column_names)}")
    for name, dtype in schemas.canonical_dtypes(table).items():
        if name in df.columns and str(df[name].dtype) != dtype:
            problems.append(f"{name}: dtype {df[name].dtype} != {dtype}")
    for col in table.columns:
        if col.name not in df.columns:
            continue
        values = df[col.name]
        if not col.nullable and values.isna().any():
            problems.append(f"{col.name}: {int(values.isna().sum())} missing values")
        present = values.dropna()
        if col.allowed is not None and not present.isin(col.allowed).all():
            problems.append(
                f"{col.name}: values outside {col.allowed}: {set(present) - set(col.allowed)}"
            )
        if col.min is not None and (present < col.min).any():
            problems.append(f"{col.name}: below {col.min}: {present.min()}")
        if col.max is not None and (present > col.max).any():
            problems.append(f"{col.name}: above {col.max}: {present.max()}")
    if df.duplicated(list(table.key)).any():
        problems.append(f"key {table.key} not unique: {int(df.duplicated(list(table.key)).sum())}")
    return problems


def test_cohort_dates_end_at_the_observation_date_spaced_by_whole_months():
    sim = SimulateParams(n_cohorts=4, cohort_spacing_months=2)
    dates = cohort_dates(sim, BaseParams(observation_date=dt.date(2025, 1, 1)))
    assert dates == [
        dt.date(2024, 7, 1),
        dt.date(2024, 9, 1),
        dt.date(2024, 11, 1),
        dt.date(2025, 1, 1),
    ]
    month_end = cohort_dates(
        SimulateParams(n_cohorts=2, cohort_spacing_months=1),
        BaseParams(observation_date=dt.date(2025, 3, 31)),
    )
    assert month_end == [dt.date(2025, 2, 28), dt.date(2025, 3, 31)], "day of month is clipped"


def test_same_seed_gives_identical_tables_and_another_seed_differs():
    sim = SimulateParams(n_users=1500, chunk_size=1000)
    (a, truth_a), (b, truth_b) = (
        simulate_world(sim, BaseParams(seed=3)),
        simulate_world(sim, BaseParams(seed=3)),
    )
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    pd.testing.assert_frame_equal(truth_a, truth_b, obj="truth")
    c, truth_c = simulate_world(sim, BaseParams(seed=4))
    assert not truth_c["true_pd"].equals(truth_a["true_pd"]), "another seed must give another world"
    assert not c.events["amount"].equals(a.events["amount"]), "another seed must give other events"


@pytest.mark.parametrize("target", [0.05, 0.10])
def test_default_rate_hits_the_target(target, large_world):
    if target == LARGE.default_rate:
        data, truth = large_world
    else:
        data, truth = simulate_world(LARGE.model_copy(update={"default_rate": target}), LARGE_BASE)
    rate = data.outcomes["default_12m"].astype(float).mean()
    assert abs(rate - target) < 0.01, f"default rate {rate:.4f} vs target {target}"
    assert abs(truth["true_pd"].mean() - target) < 0.005, "mean true PD must sit on the target"


def test_every_table_conforms_to_its_schema(world):
    data, _ = world
    for name in TABLE_NAMES:
        problems = _schema_violations(getattr(data, name), schemas.TABLES[name])
        assert problems == [], f"{name}: {problems}"


def test_people_and_ids_are_consistent_across_tables(world):
    data, _ = world
    people = set(data.profiles["person_id"])
    assert len(people) == 4000 and set(data.outcomes["person_id"]) == people, (
        "one outcome per person"
    )
    assert set(data.events["person_id"]) <= people, "events of unknown people"
    assert set(data.contacts["person_id"]) <= people, "contacts of unknown people"
    contacts = data.contacts
    assert not (contacts["person_id"] == contacts["contact_id"]).any(), "self-loops in contacts"
    assert data.events["event_id"].is_unique, "event ids must be unique across chunks"
    credit = data.events["event_type"].isin(["statement", "repayment"])
    assert data.events.loc[credit, "account_id"].notna().all(), "credit events need an account"
    assert data.events.loc[~credit, "account_id"].isna().all(), "only credit events have accounts"
    owner = data.events.loc[credit, "account_id"].str.split("-").str[0].str.slice(1)
    assert (owner == data.events.loc[credit, "person_id"].str.slice(1)).all(), (
        "account of another person"
    )


def test_events_carry_the_fields_their_type_requires(world):
    events = world[0].events
    assert set(events["event_type"]) == set(schemas.EVENT_TYPES), "every event type occurs"
    for etype, fields in schemas.EVENT_REQUIRED_FIELDS.items():
        rows = events[events["event_type"] == etype]
        for field in fields:
            assert rows[field].notna().all(), f"{etype} events without {field}"
    for etype, vocab in schemas.EVENT_CATEGORIES.items():
        cats = events.loc[events["event_type"] == etype, "category"]
        assert cats.notna().all() and cats.isin(vocab).all(), f"{etype} categories outside {vocab}"
    repay = events[events["event_type"] == "repayment"]
    days_late = (repay["event_time"].dt.normalize() - repay["due_date"]).dt.days
    assert (days_late == repay["days_past_due"].astype(int)).all(), "dpd = payment date - due date"
    assert (repay["amount"] <= repay["amount_due"] + 1e-9).all(), "never pays more than is due"


def test_everything_happens_strictly_before_the_observation_date(world):
    data, _ = world
    obs = data.outcomes.set_index("person_id")["observation_date"]
    events = data.events
    assert (events["event_time"] < events["person_id"].map(obs)).all(), "event at/after observation"
    repay = events[events["event_type"] == "repayment"]
    assert (repay["due_date"] < repay["person_id"].map(obs)).all(), "due date at/after observation"
    assert (data.contacts["since_date"] < data.contacts["person_id"].map(obs)).all(), (
        "future contact"
    )
    profiles = data.profiles.set_index("person_id")
    for col in ("registered_date", "employment_start_date"):
        known = profiles[col].dropna()
        assert (known < obs.loc[known.index]).all(), f"{col} at/after observation"


def test_history_is_long_for_most_and_short_for_thin_file_people(world):
    data, _ = world
    obs = data.outcomes.set_index("person_id")["observation_date"]
    first = data.events.groupby("person_id")["event_time"].min()
    obs = obs.loc[first.index]
    assert (first >= obs - pd.DateOffset(months=24)).all(), "no event older than history_months"
    thin = (first >= obs - pd.DateOffset(months=6)).mean()
    assert 0.10 < thin < 0.30, f"share with at most 6 months of history {thin:.2f} (thin files 15%)"


def test_profile_facts_are_missing_at_about_the_missing_rate(world):
    profiles = world[0].profiles
    for col in ("gender", "birth_year", "education", "declared_income", "identity_verified"):
        share = profiles[col].isna().mean()
        assert 0.02 < share < 0.09, f"{col}: {share:.3f} missing, expected about 5%"


def test_truth_is_separate_one_row_per_outcome_and_not_a_toy(large_world):
    data, truth = large_world
    assert tuple(truth.columns) == TRUTH_COLUMNS
    for name in TABLE_NAMES:
        assert "true_pd" not in getattr(data, name).columns, f"truth leaked into {name}"
    keys = ["person_id", "observation_date"]
    pd.testing.assert_frame_equal(truth[keys], data.outcomes[keys], obj="truth keys vs outcomes")
    assert truth["true_pd"].between(0, 1).all(), "true PD outside [0, 1]"
    auc = roc_auc_score(data.outcomes["default_12m"].astype(int), truth["true_pd"])
    assert 0.80 < auc < 0.92, f"oracle AUC {auc:.3f}: the world is a toy or pure noise"


def test_risky_people_behave_worse(large_world):
    """Directional: lateness, utilisation and declared-income inflation rise with true PD."""
    data, truth = large_world
    pd_of = truth.set_index("person_id")["true_pd"]
    events = data.events
    repay = events[events["event_type"] == "repayment"]
    late = (repay["days_past_due"] > 0).groupby(repay["person_id"]).mean()
    risky = pd_of.loc[late.index] > pd_of.quantile(0.8)
    assert late[risky].mean() > 2 * late[~risky].mean(), "the riskiest fifth must pay late far more"
    stmt = events[events["event_type"] == "statement"]
    util = (stmt["balance"] / stmt["credit_limit"]).groupby(stmt["person_id"]).mean()
    rho = np.corrcoef(util, pd_of.loc[util.index])[0, 1]
    assert rho > 0.1, f"utilisation must rise with risk (corr {rho:.2f})"
    prof = data.profiles.set_index("person_id").dropna(
        subset=["verified_income", "declared_income"]
    )
    inflation = np.log(prof["declared_income"] / prof["verified_income"])
    assert np.corrcoef(inflation, pd_of.loc[prof.index])[0, 1] > 0.05, "risky people inflate income"


def _mean_pd(pd_of: pd.Series, mask: pd.Series) -> float:
    return float(pd_of.loc[mask[mask].index].mean())


def test_risk_concentrates_in_pockets_an_additive_score_cannot_draw(large_world):
    """Interactions, read from the tables alone: high utilisation is dangerous with a low
    income, a new job without a verified income, and a recent late repayment weighs far
    more on a thin file than on a full one."""
    data, truth = large_world
    pd_of = truth.set_index("person_id")["true_pd"]
    obs = data.outcomes.set_index("person_id")["observation_date"]
    events = data.events
    age = (events["person_id"].map(obs) - events["event_time"]).dt.days
    stmt = events[(events["event_type"] == "statement") & (age < 90)]
    util = (stmt["balance"] / stmt["credit_limit"]).groupby(stmt["person_id"]).mean()
    util = util.reindex(obs.index)
    prof = data.profiles.set_index("person_id").reindex(obs.index)
    income = prof["verified_income"].fillna(prof["declared_income"])

    over = _mean_pd(pd_of, (util > 0.6) & (income < 4000))
    high_use_only = _mean_pd(pd_of, (util > 0.6) & (income > 8000))
    low_income_only = _mean_pd(pd_of, (util < 0.3) & (income < 4000))
    assert over > 4 * max(high_use_only, low_income_only), (
        f"high use & low income {over:.3f} vs {high_use_only:.3f} / {low_income_only:.3f}"
    )

    tenure = (obs - prof["employment_start_date"]).dt.days / 365
    verified = prof["verified_income"].notna()
    ratio = {
        name: _mean_pd(pd_of, job & ~verified) / _mean_pd(pd_of, job & verified)
        for name, job in (("new", tenure < 0.5), ("old", tenure > 3))
    }
    assert ratio["new"] > 3 and ratio["new"] > 2 * ratio["old"], (
        f"unverified / verified PD by tenure: {ratio}"
    )

    repay = events[(events["event_type"] == "repayment") & (age < 90)]
    late = (repay["days_past_due"] > 0).groupby(repay["person_id"]).any()
    late = late.reindex(obs.index, fill_value=False)
    repaid = repay.groupby("person_id").size().reindex(obs.index, fill_value=0) > 0
    on_platform = (obs - prof["registered_date"]).dt.days
    late_ratio = {
        name: _mean_pd(pd_of, file & late) / _mean_pd(pd_of, file & repaid & ~late)
        for name, file in (("thin", on_platform < 200), ("full", on_platform > 700))
    }
    assert late_ratio["thin"] > 1.5 * late_ratio["full"] > 1.5, (
        f"PD with / without a recent late repayment: {late_ratio}"
    )


def test_protected_attributes_are_at_most_weakly_related_to_risk(large_world):
    data, truth = large_world
    prof = data.profiles.assign(true_pd=truth["true_pd"].to_numpy())
    known = prof.dropna(subset=["birth_year"])
    rho = np.corrcoef(known["birth_year"].astype(float), known["true_pd"])[0, 1]
    assert abs(rho) < 0.15, f"birth year too strongly related to risk: corr {rho:.2f}"
    by_gender = prof.groupby("gender")["true_pd"].mean()
    assert by_gender["F"] / by_gender["M"] == pytest.approx(1, abs=0.2), f"gender gap {by_gender}"


def test_contacts_risk_is_correlated(large_world):
    data, truth = large_world
    pd_of = truth.set_index("person_id")["true_pd"]
    contacts = data.contacts[data.contacts["contact_id"].isin(pd_of.index)]
    mean_contact = contacts["contact_id"].map(pd_of).groupby(contacts["person_id"]).mean()
    rho = np.corrcoef(pd_of.loc[mean_contact.index], mean_contact)[0, 1]
    assert rho > 0.2, f"homophily: corr(own PD, contacts' PD) = {rho:.2f}"
    per_person = data.contacts.groupby("person_id").size().reindex(pd_of.index, fill_value=0)
    assert 3.0 < per_person.mean() < 5.0, f"mean contacts {per_person.mean():.2f}, expected ~4"
    assert (per_person == 0).mean() > 0.03, "some people have no contacts"


def test_negative_drift_makes_only_the_newest_cohort_riskier(large_world):
    _, plain = large_world
    drifted_data, drifted = simulate_world(LARGE.model_copy(update={"drift": -1.0}), LARGE_BASE)
    newest = pd.Timestamp(LARGE_BASE.observation_date)
    is_new = drifted["observation_date"] == newest
    new_pd, plain_pd = drifted.loc[is_new, "true_pd"].mean(), plain.loc[is_new, "true_pd"].mean()
    assert new_pd > 1.5 * plain_pd, f"drift -1 SD: newest cohort PD {new_pd:.3f} vs {plain_pd:.3f}"
    rate_new = drifted_data.outcomes.loc[is_new, "default_12m"].astype(float).mean()
    rate_old = drifted_data.outcomes.loc[~is_new, "default_12m"].astype(float).mean()
    assert rate_new > rate_old + 0.03, f"newest cohort {rate_new:.3f} vs older {rate_old:.3f}"
    np.testing.assert_array_equal(
        drifted.loc[~is_new, "true_pd"], plain.loc[~is_new, "true_pd"], "older cohorts unchanged"
    )


def test_write_world_streams_the_same_world_to_parquet(tmp_path):
    sim = SimulateParams(n_users=3000, chunk_size=1000)
    base = BaseParams(seed=21)
    done = []
    summary = write_world(sim, base, tmp_path / "sim", tmp_path / "truth.parquet", done.append)
    data, truth = simulate_world(sim, base)

    assert done == [1000, 2000, 3000], "progress after each chunk"
    for name in TABLE_NAMES:
        table = schemas.TABLES[name]
        back = schemas.conform(pd.read_parquet(tmp_path / "sim" / f"{name}.parquet"), table)
        pd.testing.assert_frame_equal(back, getattr(data, name), obj=name)
        assert summary["rows"][name] == len(back)
        row_groups = pq.ParquetFile(tmp_path / "sim" / f"{name}.parquet").num_row_groups
        assert row_groups == 3, f"{name}: one row group per chunk, got {row_groups}"
    back_truth = pd.read_parquet(tmp_path / "truth.parquet")
    assert tuple(back_truth.columns) == TRUTH_COLUMNS
    np.testing.assert_array_equal(back_truth["true_pd"], truth["true_pd"])
    assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == sorted(
        f"{n}.parquet" for n in TABLE_NAMES
    ), "no temporary files left behind"
    rate = data.outcomes["default_12m"].astype(float).mean()
    assert summary["default_rate"] == pytest.approx(rate)
    oracle = roc_auc_score(data.outcomes["default_12m"].astype(int), truth["true_pd"])
    assert summary["oracle_auc"] == pytest.approx(oracle), "summary AUC = sklearn's"
    assert summary["cohorts"][-1] == base.observation_date.isoformat()


def test_chunks_concatenate_to_the_whole_world():
    sim = SimulateParams(n_users=2500, chunk_size=1000)
    chunks = list(iter_world_chunks(sim, BaseParams()))
    assert [len(t) for _, t in chunks] == [1000, 1000, 500]
    whole, _ = simulate_world(sim, BaseParams())
    events = pd.concat([c.events for c, _ in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(events, whole.events)


def test_a_crash_mid_stream_leaves_no_tables_behind(tmp_path):
    """Files appear only when every chunk is written: no half world for a later stage."""

    def crash_after_first_chunk(done: int) -> None:
        raise RuntimeError(f"crash after {done} people")

    sim = SimulateParams(n_users=2000, chunk_size=1000)
    with pytest.raises(RuntimeError, match="crash after 1000 people"):
        write_world(
            sim, BaseParams(), tmp_path / "sim", tmp_path / "truth.parquet", crash_after_first_chunk
        )
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert leftovers == [], f"a crashed run left files: {leftovers}"


@pytest.mark.slow
def test_the_default_world_is_learnable_by_trees_and_not_by_an_additive_scorecard():
    """What the world is for: on the default world, a monotone LightGBM on point-in-time
    features gets within 0.03 AUC of the oracle (the true PDs) on the newest cohort and
    beats the WoE logistic scorecard by at least 0.02."""
    from credit_scoring.config import LightGBMParams, SplitParams, TrainParams
    from credit_scoring.features.compute import compute_features
    from credit_scoring.features.registry import feature_names, monotone_constraints
    from credit_scoring.modelling.baseline import WoEScorecard
    from credit_scoring.modelling.split import out_of_time_split
    from credit_scoring.modelling.train import feature_matrix, predict_margin, train_lightgbm

    data, truth = simulate_world(SimulateParams(), BaseParams())
    table = compute_features(data)
    table["default_12m"] = data.outcomes["default_12m"].astype(float).to_numpy()
    table["true_pd"] = truth["true_pd"].to_numpy()
    names = feature_names()
    split = out_of_time_split(table, SplitParams())
    lgbm = LightGBMParams(learning_rate=0.1, early_stopping_rounds=30)
    model = train_lightgbm(
        split.train,
        split.validation,
        names,
        monotone_constraints(names),
        TrainParams(lightgbm=lgbm),
        seed=42,
        num_threads=1,
    )
    woe = WoEScorecard().fit(split.train[names], split.train["default_12m"].to_numpy())
    y = split.test["default_12m"].to_numpy()
    auc = roc_auc_score(y, predict_margin(model.booster, feature_matrix(split.test, names)))
    auc_woe = roc_auc_score(y, woe.predict_proba(split.test[names])[:, 1])
    oracle = roc_auc_score(y, split.test["true_pd"])
    assert 0.75 < auc < 0.87, f"model AUC {auc:.3f}: not a realistic credit problem"
    assert oracle - auc < 0.03, f"model {auc:.3f} too far below the oracle {oracle:.3f}"
    assert auc - auc_woe > 0.02, f"model {auc:.3f} vs WoE scorecard {auc_woe:.3f}"
