"""Manipulation resistance and stability audit: scenarios touch only what they claim,
gains are plain re-scoring, bounds fail loudly, and the month-earlier score is point in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.audit import robustness as rb
from credit_scoring.features.compute import compute_features, person_data
from credit_scoring.features.registry import MIN_LINK_AGE_DAYS
from credit_scoring.schemas import BehaviourData

KEYS = ["person_id", "observation_date"]


@pytest.fixture(scope="module")
def cohort(small_world):
    """Targets, bystanders and a good-contact pool from the newest cohort, and their data."""
    data, _, _ = small_world
    newest = data.outcomes[
        data.outcomes["observation_date"] == data.outcomes["observation_date"].max()
    ]
    rows = newest[KEYS].reset_index(drop=True)
    targets, others, pool = rows.iloc[:25], rows.iloc[25:50], rows.iloc[50:90]
    ids = list(rows["person_id"].iloc[:90])
    sliced = person_data(data, ids)
    both = pd.concat([targets, others], ignore_index=True)
    sliced = BehaviourData(
        sliced.profiles,
        both.merge(sliced.outcomes, on=KEYS, how="left"),
        sliced.events,
        sliced.contacts,
    )
    ctx = rb.GamingContext(30, tuple(pool["person_id"]), 5)
    return sliced, targets.reset_index(drop=True), others.reset_index(drop=True), ctx


@pytest.mark.parametrize("name", list(rb.SCENARIOS))
def test_scenario_adds_only_events_before_the_date_for_targets_only(cohort, name):
    """Every added event belongs to a target and lies in [T - 30 days, T); every added
    contact link is old enough to count (MIN_LINK_AGE_DAYS to MIN_LINK_AGE_DAYS + 30 days
    before T); profile edits touch only targets; bystanders' features are identical."""
    data, targets, others, ctx = cohort
    gamed = rb.SCENARIOS[name](data, targets, np.random.default_rng(0), ctx)
    obs = targets.set_index("person_id")["observation_date"]

    new_ev = gamed.events[~gamed.events["event_id"].isin(data.events["event_id"])]
    new_ct = gamed.contacts.iloc[len(data.contacts) :]
    changed_profiles = ~(
        (gamed.profiles == data.profiles) | (gamed.profiles.isna() & data.profiles.isna())
    ).all(axis=1)
    assert len(new_ev) + len(new_ct) + changed_profiles.sum() > 0, f"{name} added nothing"
    assert new_ev["person_id"].isin(targets["person_id"]).all(), "events added to non-targets"
    t = obs.reindex(new_ev["person_id"]).to_numpy()
    when = new_ev["event_time"].to_numpy()
    assert (when < t).all(), "an added event is not strictly before the observation date"
    assert (when >= t - np.timedelta64(30, "D")).all(), "an added event is outside the window"
    assert new_ct["person_id"].isin(targets["person_id"]).all(), "contacts added to non-targets"
    link_age = obs.reindex(new_ct["person_id"]).to_numpy() - new_ct["since_date"].to_numpy()
    assert (link_age >= np.timedelta64(MIN_LINK_AGE_DAYS, "D")).all(), "a link too new to count"
    assert (link_age <= np.timedelta64(MIN_LINK_AGE_DAYS + 30, "D")).all()
    pd.testing.assert_frame_equal(
        gamed.contacts.iloc[: len(data.contacts)].reset_index(drop=True),
        data.contacts.reset_index(drop=True),
    )

    a, b = gamed.profiles, data.profiles
    same = (a == b).fillna(False) | (a.isna() & b.isna())
    changed = ~same.all(axis=1)
    assert gamed.profiles.loc[changed, "person_id"].isin(targets["person_id"]).all()
    assert gamed.profiles[["verified_income", "identity_verified"]].equals(
        data.profiles[["verified_income", "identity_verified"]]
    ), "verified facts cannot be self-declared"

    before = compute_features(data).iloc[len(targets) :].reset_index(drop=True)
    after = compute_features(gamed).iloc[len(targets) :].reset_index(drop=True)
    assert list(before["person_id"]) == list(others["person_id"])
    pd.testing.assert_frame_equal(after, before)


def test_gains_equal_rescoring_the_gamed_data_by_hand(cohort, small_model):
    """gain = score of the gamed data minus score of the data as it is, same model; the
    credit-limit gain likewise."""
    data, targets, _, ctx = cohort
    base = BehaviourData(
        data.profiles, targets.merge(data.outcomes, on=KEYS), data.events, data.contacts
    )
    gains = rb.gaming_gains(small_model, data, targets, ctx, seed=7)
    assert set(gains["scenario"]) == set(rb.SCENARIOS)
    assert len(gains) == len(rb.SCENARIOS) * len(targets)
    d0 = small_model.decide(compute_features(base), with_reasons=False)
    before, limit0 = d0["score"].to_numpy(), d0["credit_limit"].to_numpy()
    for i, (name, fn) in enumerate(rb.SCENARIOS.items()):
        gamed = fn(base, targets, np.random.default_rng([7, i]), ctx)
        d1 = small_model.decide(compute_features(gamed), with_reasons=False)
        got = gains[gains["scenario"] == name]
        np.testing.assert_array_equal(got["score_before"].to_numpy(), before)
        np.testing.assert_array_equal(got["gain"].to_numpy(), d1["score"].to_numpy() - before)
        np.testing.assert_array_equal(
            got["limit_gain"].to_numpy(), d1["credit_limit"].to_numpy() - limit0
        )
    summary = rb.gains_summary(gains, max_gain=10, quantile=0.99)
    assert all("limit_gain" in s for s in summary.values())
    assert gains.loc[gains["scenario"] == "tiny_topups", "applied"].all()


def _gains(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame({"scenario": k, "gain": v}) for k, v in values.items()], ignore_index=True
    )


def test_summary_reports_the_distribution_and_share_above_the_bound():
    """Quantiles, max and the share above the bound, per scenario, from known gains."""
    gains = _gains({"a": list(range(101)), "b": [0.0] * 100})
    s = rb.gains_summary(gains, max_gain=10, quantile=0.9)
    assert s["a"]["p50"] == 50 and s["a"]["p90"] == 90 and s["a"]["max"] == 100
    assert s["a"]["share_above_bound"] == pytest.approx(90 / 101)
    assert s["a"]["bounded_gain"] == 90 and s["a"]["within_bound"] is False
    assert s["b"]["within_bound"] is True and s["b"]["mean"] == 0


def test_bound_check_fails_loudly_naming_the_scenario_and_its_gain():
    """A scenario whose bounded quantile pays more than the bound stops the audit."""
    summary = rb.gains_summary(_gains({"cheap": [0, 1, 30], "fine": [0, 0, 0]}), 10, 0.99)
    with pytest.raises(
        rb.RobustnessError, match=r"cheap buys \+29 points at p99 \(max \+30"
    ) as err:
        rb.check_gains(summary, 10)
    assert "fine" not in str(err.value) and "\n" not in str(err.value)
    rb.check_gains(rb.gains_summary(_gains({"cheap": [0, 1, 30]}), 50, 0.99), 50)


def test_real_scenarios_break_a_tiny_bound_on_the_small_model(cohort, small_model):
    """With a bound of 0 points some scenario pays: the check is live on real scores."""
    data, targets, _, ctx = cohort
    gains = rb.gaming_gains(small_model, data, targets, ctx)
    summary = rb.gains_summary(gains, max_gain=1e-9, quantile=1.0)
    if all(s["max"] <= 0 for s in summary.values()):
        pytest.skip("no scenario moved any score on this small model")
    with pytest.raises(rb.RobustnessError, match="gaming pays more than"):
        rb.check_gains(summary, 1e-9)


def test_stability_report_fields_and_bound(cohort, small_model):
    """Score at T and T - 30 per target, |change| distribution for stable people and
    everyone; the p90 bound fails with a one-line message."""
    data, targets, _, _ = cohort
    changes = rb.score_changes(small_model, data, targets, lag_days=30)
    assert list(changes.columns) == [*KEYS, "score", "score_lagged", "change", "stable"]
    np.testing.assert_array_equal(changes["change"], changes["score"] - changes["score_lagged"])
    s = rb.stability_summary(changes)
    for group in ("stable", "everyone"):
        assert {"n", "mean", "p50", "p90", "p99", "max", "mean_signed_change"} <= set(s[group])
    assert s["everyone"]["n"] == len(targets) and 0 <= s["stable"]["share_of_people"] <= 1
    rb.check_stability(s, 1e9)
    if s["stable"]["n"] and s["stable"]["p90"] > 0:
        with pytest.raises(rb.RobustnessError, match="unstable score: p90"):
            rb.check_stability(s, 1e-9)


def test_month_earlier_features_use_no_event_or_contact_from_that_date_on(cohort):
    """Features at T - 30 are unchanged when every event and contact at or after T - 30
    is removed: the lagged score is point in time."""
    data, targets, _, _ = cohort
    earlier = rb.lagged(targets, 30)
    assert (
        targets["observation_date"] - earlier["observation_date"] == pd.Timedelta(days=30)
    ).all()
    cut = earlier.set_index("person_id")["observation_date"]
    ev_cut = cut.reindex(data.events["person_id"]).to_numpy()
    keep_ev = ~(data.events["event_time"].to_numpy() >= ev_cut)  # NaT (not a target) kept
    ct_cut = cut.reindex(data.contacts["person_id"]).to_numpy()
    keep_ct = ~(data.contacts["since_date"].to_numpy() >= ct_cut)
    full = compute_features(BehaviourData(data.profiles, earlier, data.events, data.contacts))
    pruned = compute_features(
        BehaviourData(data.profiles, earlier, data.events[keep_ev], data.contacts[keep_ct])
    )
    assert (~keep_ev).sum() > 0, "the test needs events in the last 30 days"
    pd.testing.assert_frame_equal(full, pruned)


def test_material_change_flags_a_late_repayment_in_the_window_only(cohort):
    """A late repayment 10 days before T is a material change; one 40 days before is not."""
    data, targets, _, _ = cohort
    base = rb.material_change(data, targets, 30)
    calm = targets[~base].head(2).reset_index(drop=True)
    assert len(calm) == 2, "the test needs two people without a material change"
    t = calm["observation_date"]
    late = pd.DataFrame(
        {
            "event_id": ["late-in", "late-out"],
            "person_id": calm["person_id"],
            "event_time": [t[0] - pd.Timedelta(days=10), t[1] - pd.Timedelta(days=40)],
            "event_type": "repayment",
            "amount": 100.0,
            "days_past_due": 5,
        }
    )
    from credit_scoring.schemas import EVENTS, conform

    events = pd.concat([data.events, conform(late, EVENTS)], ignore_index=True)
    flagged = rb.material_change(
        BehaviourData(data.profiles, data.outcomes, events, data.contacts), calm, 30
    )
    assert flagged.tolist() == [True, False]


def test_the_trained_model_never_splits_on_unscored_features(small_model):
    """Features flagged ``scored=False`` (cheap to game) stay model inputs, so the limit
    policy can read declared income, but LightGBM gets split-gain weight 0 for them."""
    from credit_scoring.features.registry import FEATURES, split_gain_weights

    unscored = [s.name for s in FEATURES if not s.scored]
    assert "declared_income" in unscored and "n_profile_updates_365d" in unscored
    names = small_model.feature_names
    weights = dict(zip(names, split_gain_weights(names), strict=True))
    assert all(weights[n] == 0.0 for n in unscored)
    assert split_gain_weights(["not_a_registry_feature"]) == [1.0]
    splits = small_model.booster.feature_importance("split")
    used = {n for n, k in zip(small_model.feature_names, splits, strict=True) if k > 0}
    assert used, "the small model should split on something"
    assert not used & set(unscored), f"splits on unscored features: {used & set(unscored)}"


def test_score_people_keeps_every_feature_as_computed(cohort, small_model):
    """The decision columns are added beside the features, never over one: the feature
    ``credit_limit`` (current accounts' limits) must not be replaced by the granted limit."""
    data, targets, _, _ = cohort
    base = BehaviourData(
        data.profiles, targets.merge(data.outcomes, on=KEYS), data.events, data.contacts
    )
    scored = rb.score_people(small_model, base)
    feats = compute_features(base)
    pd.testing.assert_frame_equal(scored[feats.columns], feats)
    assert {"score", "granted_limit"} <= set(scored.columns)


def test_the_issue_scenarios_are_all_tried():
    """Issue #13: one top-up for people with none, a few large top-ups and lowering declared
    income to the verified one are scenarios, beside the original ones."""
    assert {"one_topup", "large_topups", "declared_to_verified", "good_contacts"} <= set(
        rb.SCENARIOS
    )


def _features_of(data, targets):
    base = BehaviourData(
        data.profiles, targets.merge(data.outcomes, on=KEYS), data.events, data.contacts
    )
    return base, compute_features(base)


def test_good_contacts_links_are_read_by_the_features(cohort):
    """The old scenario dated links inside the last 30 days, which the features ignore
    until they are 90 days old, so it could not fail: now every target gains contacts."""
    data, targets, _, ctx = cohort
    base, before = _features_of(data, targets)
    after = compute_features(rb.good_contacts(base, targets, np.random.default_rng(1), ctx))
    gained = after["n_contacts"].fillna(0) - before["n_contacts"].fillna(0)
    assert (gained > 0).all(), "some target's new links are not counted by the features"


def test_one_topup_goes_only_to_people_without_topups(cohort):
    """One 100 CNY top-up, only for the targets with no top-up in the last 365 days; they
    then have exactly one, and the others are untouched."""
    data, targets, _, ctx = cohort
    base, before = _features_of(data, targets)
    gamed = rb.one_topup(base, targets, np.random.default_rng(2), ctx)
    after = compute_features(gamed)
    none = (before["n_phone_topups_365d"].fillna(0) == 0).to_numpy()
    applied = rb.touched(base, gamed, targets)
    np.testing.assert_array_equal(applied, none)
    assert (after.loc[none, "n_phone_topups_365d"] == 1).all()
    assert (after.loc[none, "topup_mean_amount_365d"] == 100).all()
    pd.testing.assert_frame_equal(after[~none], before[~none])


def test_declared_income_is_lowered_to_the_verified_one(cohort):
    """People who declared more than was verified declare the verified amount: their
    verified/declared ratio becomes 1; nobody else's profile changes."""
    data, targets, _, ctx = cohort
    base, before = _features_of(data, targets)
    gamed = rb.declared_to_verified(base, targets, np.random.default_rng(3), ctx)
    after = compute_features(gamed)
    lower = (before["verified_income"] < before["declared_income"]).to_numpy()
    np.testing.assert_array_equal(rb.touched(base, gamed, targets), lower)
    assert (after.loc[lower, "income_verified_ratio"] == 1).all()
    assert (after.loc[lower, "declared_income"] == before.loc[lower, "verified_income"]).all()


def test_a_scenario_that_moves_nobody_is_not_exercised_not_passed(cohort, small_model):
    """A scenario applied to nobody, or moving no score, is reported 'not exercised' and
    fails the exercised check; the old summary called it within bound (a silent pass)."""
    data, targets, _, ctx = cohort

    def nothing(d, t, rng, c):
        return d

    def harmless(d, t, rng, c):  # touches everyone, moves no score: an event after the
        # observation date, which point-in-time features never read
        return rb._add_events(
            d,
            {
                "person_id": t["person_id"].to_numpy(dtype=object),
                "event_time": t["observation_date"] + pd.Timedelta(days=3),
                "event_type": rb.EventType.ADDRESS_CHANGE.value,
            },
            "old",
            rng,
        )

    gains = rb.gaming_gains(
        small_model, data, targets, ctx, scenarios={"nothing": nothing, "harmless": harmless}
    )
    summary = rb.gains_summary(gains, max_gain=10, quantile=0.99)
    assert summary["nothing"]["n"] == 0 and summary["nothing"]["status"] == rb.NOT_EXERCISED
    assert summary["harmless"]["n"] == len(targets)
    assert summary["harmless"]["status"] == rb.NOT_EXERCISED, summary["harmless"]
    with pytest.raises(rb.RobustnessError, match=r"not exercised: nothing .*; harmless"):
        rb.check_exercised(summary)


def test_limit_gain_is_bounded_per_person_by_what_the_score_bound_would_give():
    """A limit gain beyond each person's allowance (the limit max_gain points more would
    give them) breaches at the quantile; within it, a large CNY gain passes (the old fixed
    500 CNY bound failed a high-income person whose 10 points were worth 2,000)."""
    gains = _gains({"income": [0.0, 1.0, 2.0]}).assign(
        limit_gain=[0.0, 2000.0, 3000.0], allowed_limit_gain=[0.0, 2000.0, 2500.0]
    )
    s = rb.gains_summary(gains, max_gain=10, quantile=1.0)
    assert s["income"]["within_bound"] is True and s["income"]["status"] == rb.BREACH
    assert s["income"]["limit_gain"]["bounded_gain"] == 3000
    assert s["income"]["limit_gain"]["bounded_excess"] == 500
    with pytest.raises(rb.RobustnessError, match=r"income buys \+500 CNY of limit beyond"):
        rb.check_gains(s, 10)
    fine = rb.gains_summary(gains.assign(allowed_limit_gain=[0.0, 2000.0, 3000.0]), 10, 1.0)
    assert fine["income"]["status"] == rb.PASS
    rb.check_gains(fine, 10)


def test_the_allowance_is_the_policy_limit_at_score_plus_the_bound(cohort, small_model):
    """Per person: credit_limit(score + points, the PD those points mean, same incomes)
    minus the limit now; an edited declared income is allowed up to the policy's cap on
    unverified income, so a verified income (which replaces it) gets no more than the
    points give."""
    from credit_scoring.decision.limits import credit_limit

    data, targets, _, _ = cohort
    base = BehaviourData(
        data.profiles, targets.merge(data.outcomes, on=KEYS), data.events, data.contacts
    )
    before = rb.score_people(small_model, base)
    policy, scale = small_model.decision_params.limit, small_model.scale
    got = rb.allowed_limit_gain(small_model, before, before, 10.0)
    pd_up = scale.pd_from_score(scale.raw_score(before["pd"].to_numpy()) + 10.0)
    want = (
        credit_limit(
            before["score"].to_numpy() + 10.0,
            pd_up,
            before["declared_income"].to_numpy(dtype=float),
            before["verified_income"].to_numpy(dtype=float),
            policy,
        )
        - before["granted_limit"].to_numpy()
    )
    np.testing.assert_array_equal(got, want)
    assert (got >= 0).all(), "10 more points never lower a limit"
    claimed = before.assign(declared_income=before["declared_income"].fillna(0) + 1_000.0)
    lie = rb.allowed_limit_gain(small_model, before, claimed, 10.0)
    assert (lie >= got).all() and (lie > got).any(), "an income claim is allowed up to the cap"
    verified = before["verified_income"].notna().to_numpy()
    np.testing.assert_array_equal(lie[verified], got[verified])
    capped = (
        credit_limit(
            before["score"].to_numpy() + 10.0,
            pd_up,
            policy.max_unverified_capacity / policy.declared_income_weight,
            before["verified_income"].to_numpy(dtype=float),
            policy,
        )
        - before["granted_limit"].to_numpy()
    )
    np.testing.assert_array_equal(lie, capped)


def test_a_closed_channel_passes_and_inputs_nobody_reads_are_not_exercised(cohort, small_model):
    """declared_to_verified changes only unscored inputs now (declared income, the ratio):
    it reaches the model's inputs, so it is exercised, and moves neither score nor a limit
    beyond the allowance: a pass, not 'not exercised'."""
    data, targets, _, ctx = cohort
    gains = rb.gaming_gains(
        small_model,
        data,
        targets,
        ctx,
        scenarios={"declared_to_verified": rb.declared_to_verified},
    )
    applied = gains["applied"].to_numpy(dtype=bool)
    if not applied.any():
        pytest.skip("nobody here declared more than was verified")
    assert gains.loc[applied, "inputs_changed"].all()
    s = rb.gains_summary(gains, max_gain=10, quantile=0.99)["declared_to_verified"]
    assert s["share_inputs_changed"] == 1.0 and s["status"] == rb.PASS, s
    assert s["max"] == 0, "income_verified_ratio is no longer scored"


def test_the_gameable_features_are_not_scored():
    """Issue 13 finding 4: what cheap activity bought on the default world is carried but
    never split on: contacts (others' data, network size), top-up amount and months, and
    the verified/declared income ratio; and they give no reason code."""
    from credit_scoring.decision.reason_codes import code_for
    from credit_scoring.features.registry import feature_spec

    for name in (
        "contacts_late30_share_365d",
        "contacts_late30_mean_365d",
        "contacts_verified_share",
        "n_contacts",
        "n_contacts_known",
        "topup_mean_amount_365d",
        "topup_months_12m",
        "income_verified_ratio",
    ):
        assert not feature_spec(name).scored, name
    for name in ("topup_mean_amount_365d", "income_verified_ratio"):
        assert code_for(name, missing=False) is None and code_for(name, missing=True) is None
