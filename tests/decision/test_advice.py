"""Advice: actions stay within a person's power and within plausible values, move related
features together over time, and the gains claimed are exactly what the model gives."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import AdviceParams, DecisionParams, ScoreParams, TierParams
from credit_scoring.decision.advice import (
    ACTION_BY_ID,
    ACTIONS,
    Action,
    Outcome,
    advise,
    apply_action,
    apply_actions,
    check_actions,
    complete_frame,
    sentence,
)
from credit_scoring.features.registry import (
    DEFAULT_WINDOWS,
    PROTECTED_ATTRIBUTES,
    feature_names,
    feature_spec,
)

WINDOWS = DEFAULT_WINDOWS


@pytest.fixture(scope="module")
def frame(small_world, small_model):
    """Every row of the small world, completed to the features actions read."""
    return complete_frame(small_world[2], small_model)


@pytest.fixture(scope="module")
def changed(frame):
    """Each action applied to every row of the small world."""
    return {a.id: apply_action(a, frame) for a in ACTIONS}


@pytest.fixture(scope="module")
def advice_sample(small_world, small_model):
    rows = small_world[2].sample(300, random_state=3).reset_index(drop=True)
    return rows, advise(small_model, rows)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return (x == y) | (np.isnan(x) & np.isnan(y))


# --------------------------------------------------------------------------- catalogue


def test_actions_change_only_actionable_features_never_protected_or_declared_income():
    for a in ACTIONS:
        for name in a.features(WINDOWS):
            assert feature_spec(name).actionable, f"{a.id} changes non-actionable {name}"
            assert name not in PROTECTED_ATTRIBUTES and name != "declared_income", (a.id, name)


def test_applying_an_action_leaves_every_other_feature_unchanged(frame, changed):
    """Property over every person of the small world: undeclared columns are identical."""
    for a in ACTIONS:
        declared = set(a.features(WINDOWS))
        for col in frame.columns:
            if col not in declared:
                assert _same(frame[col], changed[a.id][col]).all(), f"{a.id} changed {col}"


def test_a_catalogue_changing_what_a_person_cannot_change_is_refused():
    def noop(X, windows):
        return {}

    with pytest.raises(ValueError, match=r"education_level.*not actionable"):
        check_actions([Action("study", "Get a degree", 1000, ("education_level",), noop)])
    with pytest.raises(ValueError, match=r"declared_income.*never"):
        check_actions([Action("lie", "Declare more", 1, ("declared_income",), noop)])


def test_a_transform_returning_an_undeclared_feature_is_an_error(frame):
    def sneaky(X, windows):
        return {"profile_completeness": np.ones(len(X)), "identity_verified": np.ones(len(X))}

    action = Action("sneaky", "Fill in your profile", 1, ("profile_completeness",), sneaky)
    with pytest.raises(RuntimeError, match=r"undeclared features \['identity_verified'\]"):
        apply_action(action, frame.head(3))


# --------------------------------------------------------------------------- plausibility


#: Shares that can exceed 1: a balance above its limit, paying ahead of what is due,
#: verified income above the declared one (1.14 in the small world).
SHARES_ABOVE_ONE = ("utilisation_", "repaid_to_due_365d", "income_verified_ratio")


def test_bounds_hold_for_every_action_on_every_person(frame, changed):
    """Counts whole and >= 0, shares in [0, 1] (utilisation, repaid-to-due and the verified
    income ratio >= 0), trends in [-1, 1], months of a year in [0, 12], flags 0/1, every
    value in its registry range, missing stays missing unless created and known stays
    known."""
    for a in ACTIONS:
        after = changed[a.id]
        for name in a.features(WINDOWS):
            v = after[name].to_numpy(dtype=float)
            ok = v[~np.isnan(v)]
            spec = feature_spec(name)
            unit = spec.unit
            where = f"{a.id}: {name}"
            assert (ok >= (-1 if name.endswith("_trend") else 0)).all(), where
            assert all(x in spec.value_range for x in ok), f"{where} outside its registry range"
            if unit == "count":
                assert (ok == np.round(ok)).all(), f"{where} not whole"
            if unit == "share" and not name.startswith(SHARES_ABOVE_ONE):
                assert (ok <= 1).all(), where
            if name.endswith("_trend"):
                assert (ok <= 1).all(), where
            if unit == "months" and name.endswith("_12m"):
                assert ((ok <= 12) & (ok == np.round(ok))).all(), where
            if unit == "flag":
                assert np.isin(ok, [0, 1]).all(), where
            was_missing = frame[name].isna().to_numpy()
            if name not in a.creates:
                assert np.isnan(v[was_missing]).all(), f"{where}: a missing value was invented"
            assert not np.isnan(v[~was_missing]).any(), f"{where}: a known value was lost"


def test_verifying_income_leaves_an_already_verified_income_as_it_is(frame, changed):
    """Verified income above the declared one stays as it is (it was cut to 100%)."""
    after = changed["verify_income"]
    verified = frame["income_verified"] == 1
    for name in ("income_verified", "verified_income", "income_verified_ratio"):
        assert _same(after.loc[verified, name], frame.loc[verified, name]).all(), name
    assert (frame.loc[verified, "income_verified_ratio"] > 1).any(), "the world should hold some"


def test_windowed_counts_stay_nested_after_every_action(changed):
    """30d <= 90d <= 180d <= 365d, severe lates <= lates <= repayments, for every person."""
    for a in ACTIONS:
        after = changed[a.id]
        for stem in ("n_late", "n_late_30p", "n_repayments", "n_purchases"):
            cols = after[[f"{stem}_{w}d" for w in WINDOWS]].to_numpy()
            assert (np.diff(cols, axis=1) >= 0).all(), f"{a.id}: {stem} not nested"
        for w in WINDOWS:
            assert (after[f"n_late_30p_{w}d"] <= after[f"n_late_{w}d"]).all(), (a.id, w)
            assert (after[f"n_late_{w}d"] <= after[f"n_repayments_{w}d"]).all(), (a.id, w)


def test_ninety_clean_days_move_the_repayment_features_together_in_time(frame, changed):
    """After 90 days without a late repayment: the 30- and 90-day counts are 0, the 180-day
    count is exactly the old 90-day count, the 365-day count lies between the old 180- and
    365-day counts, the last late repayment is 90 days further away, the on-time share
    never falls, and nothing is worse than before."""
    after = changed["repay_on_time"]
    for stem in ("n_late", "n_late_30p"):
        assert (after[f"{stem}_30d"] == 0).all() and (after[f"{stem}_90d"] == 0).all()
        assert (after[f"{stem}_180d"] == frame[f"{stem}_90d"]).all()
        assert after[f"{stem}_365d"].between(frame[f"{stem}_180d"], frame[f"{stem}_365d"]).all()
    days = frame["days_since_last_late"]
    assert _same(after["days_since_last_late"], days + 90).all()
    known = frame["ontime_rate_365d"].notna()
    assert (after.loc[known, "ontime_rate_365d"] >= frame.loc[known, "ontime_rate_365d"]).all()
    for name in ("worst_dpd_90d", "current_dpd"):
        has = frame[name].notna()
        assert (after.loc[has, name] == 0).all(), name
    assert (after["worst_dpd_365d"].fillna(0) <= frame["worst_dpd_365d"].fillna(0)).all()
    assert (after["n_delinquent_statements_365d"] <= frame["n_delinquent_statements_365d"]).all()


def test_clean_repayments_worked_example():
    """Late counts 2/3/4/6 over 30/90/180/365 days, on-time share 0.75 (24 known
    repayments): after 90 clean days 0/0/3/5 (one of the two lates of days 181-365 is in
    the 95 days that stay), on-time share 1 - 5/24."""
    row = {name: np.nan for name in feature_names()}
    row.update(
        {f"n_late_{w}d": v for w, v in zip(WINDOWS, (2, 3, 4, 6), strict=True)}
        | {f"n_late_30p_{w}d": 0 for w in WINDOWS}
        | {f"n_repayments_{w}d": v for w, v in zip(WINDOWS, (2, 6, 12, 24), strict=True)}
        | {"ontime_rate_365d": 0.75, "late_rate_trend": 0.25, "days_since_last_late": 3}
        | {"worst_dpd_90d": 12, "worst_dpd_365d": 40, "n_delinquent_statements_365d": 0}
    )
    after = apply_action(ACTION_BY_ID["repay_on_time"], pd.DataFrame([row])).iloc[0]
    assert [after[f"n_late_{w}d"] for w in WINDOWS] == [0, 0, 3, 5]
    assert after["ontime_rate_365d"] == pytest.approx(1 - 5 / 24)
    assert after["late_rate_trend"] == pytest.approx(-5 / 24)
    assert after["days_since_last_late"] == 93 and after["worst_dpd_90d"] == 0
    assert after["worst_dpd_365d"] == 40, "a late repayment is still inside the year"


def test_lowering_utilisation_scales_the_balance_and_caps_recent_use(frame, changed):
    after = changed["lower_utilisation"]
    high = frame["utilisation_latest"] > 0.3
    assert np.allclose(after.loc[high, "utilisation_latest"], 0.3)
    assert (after["utilisation_mean_90d"].dropna() <= 0.3 + 1e-12).all()
    ratio = after.loc[high, "balance_to_income"] / frame.loc[high, "balance_to_income"]
    expected = 0.3 / frame.loc[high, "utilisation_latest"]
    ok = frame.loc[high, "balance_to_income"] > 0
    assert np.allclose(ratio[ok], expected[ok])
    low = frame["utilisation_latest"] <= 0.3
    assert _same(after.loc[low, "utilisation_latest"], frame.loc[low, "utilisation_latest"]).all()


# --------------------------------------------------------------------------- ranking


def test_claimed_gain_is_what_the_model_gives_for_the_changed_features(small_model, advice_sample):
    """Rebuild each advised person's features from the reported changes alone, re-score
    them with CreditModel.decide and compare score, gain, band, limit and tiers; the same
    for all advised actions together."""
    rows, results = advice_sample
    base = small_model.decide(rows, with_reasons=False)
    checked = 0
    for i, res in enumerate(results):
        assert res.current["score"] == base["score"][i]
        for item in [*res.items, None]:
            items = res.items if item is None else [item]
            want = res.combined if item is None else item.outcome
            if want is None:
                continue
            row = rows.iloc[[i]].copy()
            for it in items:
                for c in it.changes:
                    row[c.feature] = np.nan if c.new is None else c.new
            got = small_model.decide(row, with_reasons=False).iloc[0]
            assert want.score == got["score"] and want.gain == got["score"] - base["score"][i]
            assert (want.band or base["band"][i]) == got["band"]
            limit = base["credit_limit"][i] if want.credit_limit is None else want.credit_limit
            assert limit == got["credit_limit"]
            assert set(base["tiers"][i]) | set(want.new_tiers) == set(got["tiers"])
            checked += 1
    assert checked > 300, "too few advised actions to test the claim"


def test_advice_is_positive_sorted_by_gain_and_at_most_max_actions(small_model, advice_sample):
    rows, results = advice_sample
    assert sum(bool(r.items) for r in results) > len(results) // 2, "most people get advice"
    for res in results:
        gains = [it.outcome.gain for it in res.items]
        assert len(gains) <= 3 and all(g >= 1 for g in gains)
        assert gains == sorted(gains, reverse=True)
        assert len({it.action for it in res.items}) == len(res.items)
    strict = advise(small_model, rows, AdviceParams(max_actions=1, min_gain_points=10))
    for res, loose in zip(strict, results, strict=True):
        assert len(res.items) <= 1 and all(it.outcome.gain >= 10 for it in res.items)
        if res.items:  # the single best action is the loose advice's first one
            assert res.items[0].outcome.gain == loose.items[0].outcome.gain


def test_the_best_action_is_the_best_of_every_candidate(small_model, frame):
    """No action left out of the advice gains more than the ones advised."""
    rows = frame.sample(200, random_state=5).reset_index(drop=True)
    results = advise(small_model, rows)
    base = small_model.decide(rows, with_reasons=False)["score"].to_numpy()
    best = np.max(
        [
            small_model.decide(apply_action(a, rows), with_reasons=False)["score"].to_numpy()
            for a in ACTIONS
        ],
        axis=0,
    )
    for i, res in enumerate(results):
        top = res.items[0].outcome.gain if res.items else 0
        assert top == max(best[i] - base[i], 0) or (not res.items and best[i] - base[i] < 1)


def test_a_person_already_at_the_top_gets_no_advice(small_model, small_world):
    """With the scale capped at 650, everyone at 650 can gain nothing: no advice."""
    capped = small_model.with_policy(ScoreParams(max_score=650), DecisionParams())
    rows = small_world[2].sample(300, random_state=11).reset_index(drop=True)
    results = advise(capped, rows)
    top = [r for r in results if r.current["score"] == 650]
    assert len(top) > 20, "the sample should hold people at the cap"
    assert all(not r.items and r.combined is None for r in top)


def test_doing_all_advised_actions_together_is_scored_as_one_change(small_model, advice_sample):
    rows, results = advice_sample
    some = [(i, r) for i, r in enumerate(results) if len(r.items) >= 2]
    assert some
    for i, res in some[:30]:
        together = apply_actions([ACTION_BY_ID[it.action] for it in res.items], rows.iloc[[i]])
        score = small_model.decide(together, with_reasons=False)["score"].iloc[0]
        assert res.combined.score == score and res.combined_sentence.startswith("All ")


# --------------------------------------------------------------------------- words


def test_sentence_names_gain_new_band_limit_and_tiers():
    tiers = [TierParams(name="deposit_free_car_rental", min_score=650, description="Car rental.")]
    out = Outcome(score=662, gain=35, band="very good", credit_limit=8000.0, new_tiers=[])
    text = sentence("No late repayments for the next 90 days", out, tiers)
    assert text == (
        "No late repayments for the next 90 days: about +35 points (to 662), "
        "reaching very good and a credit limit of CNY 8,000"
    )
    out = Outcome(662, 35, None, None, ["deposit_free_car_rental"])
    assert sentence("Act", out, tiers) == "Act: about +35 points (to 662); unlocks car rental"


def test_changes_are_reported_old_to_new_in_words(small_model, advice_sample):
    _, results = advice_sample
    items = [it for r in results for it in r.items]
    for it in items:
        assert it.changes, f"{it.action}: advised without any feature change"
        for c in it.changes:
            assert " -> " in c.text and c.feature in ACTION_BY_ID[it.action].features(WINDOWS)
            assert not (c.old is not None and c.new is not None and math.isclose(c.old, c.new))
    json.dumps([r.to_dict() for r in results])  # plain JSON all the way down


# --------------------------------------------------------------------------- CLI


def test_cli_advice_prints_the_library_advice_and_refuses_an_unknown_person(
    tmp_path, small_world, small_model
):
    from typer.testing import CliRunner

    from credit_scoring.artefacts import Paths
    from credit_scoring.cli import app
    from credit_scoring.config import Params
    from credit_scoring.io import write_parquet

    table = small_world[2]
    write_parquet(table, tmp_path / "data/features/features.parquet")
    small_model.save(tmp_path / Paths.from_params(Params()).bundle)
    (tmp_path / "params.yaml").write_text("advice:\n  max_actions: 2\n")
    person = table.sample(1, random_state=2).iloc[0]
    runner = CliRunner()
    result = runner.invoke(app, ["advice", "--person-id", person["person_id"], "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    rows = table[table["person_id"] == person["person_id"]]
    latest = rows[rows["observation_date"] == rows["observation_date"].max()]
    want = advise(small_model, latest, AdviceParams(max_actions=2))[0].to_dict()
    assert got["items"] == want["items"] and got["current"] == want["current"]
    pretty = runner.invoke(app, ["advice", "--person-id", person["person_id"]])
    assert pretty.exit_code == 0 and "score" in pretty.stdout
    missing = runner.invoke(app, ["advice", "--person-id", "nobody"])
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        "error: advice: data/features/features.parquet: no person 'nobody'"
    ]


def test_issue13_income_verification_is_advised_on_the_condition_the_policy_needs(
    small_model, advice_sample
):
    """Issue 13 finding 2: the advice says 'at the declared amount' (a condition), and what it
    shows is what the policy then gives: a limit never below today's."""
    _, results = advice_sample
    items = [(res, it) for res in results for it in res.items if it.action == "verify_income"]
    assert items, "the sample must contain income-verification advice"
    for res, it in items:
        assert "if it is confirmed at the declared amount" in it.sentence, it.sentence
        limit = it.outcome.credit_limit
        assert limit is None or limit >= res.current["credit_limit"], "a lower limit promised"
        new = {c.feature: c.new for c in it.changes}
        assert new.get("income_verified_ratio", 1.0) == 1.0, "verified at the declared amount"
