"""Manipulation resistance and score stability, measured on real people.

**Gaming.** A score people can see will be gamed. Each :data:`SCENARIOS` entry is a kind
of cheap behaviour (tiny phone top-ups, one 100 CNY top-up for people with none, a few
large top-ups, a burst of small purchases confirmed at once, profile edits, lowering
declared income to the verified one, linking to people with top scores, all of it
together), added to real test-cohort people in the ``window_days`` before their
observation date T (events strictly before T, so the point-in-time features see them;
contact links are dated just older than ``MIN_LINK_AGE_DAYS`` so they count). Their
features are recomputed by the same
:func:`credit_scoring.features.compute.compute_features`, scored by the deployed model, and
the gain is ``score(gamed) - score(as they are)`` (and the same for the granted limit).

A scenario *applies* to the targets whose data it touched (one top-up only to people
without top-ups, lowering declared income only to people who declared more than was
verified); its numbers are over those people. The rule (:func:`check_gains`): in every
scenario, the ``gain_quantile`` quantile of the score gains must be at most
``max_gain_points``. A quantile rather than the maximum, because a tree model moves a few
people who sit right on a split by a whole step, and a credit-risk team accepts "99% of
people cannot buy more than 10 points"; the maximum is reported too.

The limit gain is bounded per person, consistently with the score bound
(:func:`allowed_limit_gain`): cheap activity may raise a person's limit by at most what
``max_gain_points`` more points would give that same person under the policy (the limit
at score + points and the PD those points mean, same incomes, minus the limit now). Limits
scale with income and score, so a fixed CNY bound would be too loose for some and
impossible for others. A scenario that changed the person's *declared income* is an
income claim, which the policy itself caps (an unverified income counts for at most
``decision.limit.max_unverified_capacity``): its allowance is the limit at score + points
with the largest declared income the policy can count. The rule: the ``gain_quantile``
quantile of ``limit_gain - allowed`` is at most 0.

A scenario that applies to nobody, or changes no model input of the people it applies to,
tested nothing: it is ``not exercised``, never a pass. One that changes inputs the model
does not score (a closed channel) moves nothing and passes.

**Stability.** The same people scored at T and at T - ``lag_days`` (events strictly
before each date). People with no material change of behaviour in [T - lag, T) (see
:func:`material_change`) should move little; the 90th percentile of their absolute
change is bounded (:func:`check_stability`).

Pure functions only; the ``robustness`` CLI command reads and writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from credit_scoring.decision.limits import credit_limit
from credit_scoring.features.compute import compute_features
from credit_scoring.features.registry import DEFAULT_WINDOWS, MIN_LINK_AGE_DAYS
from credit_scoring.schemas import (
    CONTACTS,
    EVENTS,
    ROW_KEY,
    BehaviourData,
    EventType,
    conform,
)

DAY = pd.Timedelta(days=1)
KEYS = list(ROW_KEY)
# Utilisation moving by more than this (10 points of the limit) between the two dates
# is borrowing more or paying down: a material change, not score noise.
MATERIAL_UTILISATION_CHANGE = 0.10


class RobustnessError(RuntimeError):
    """A gaming or stability bound is broken: one line naming the scenario and the numbers."""


@dataclass(frozen=True)
class GamingContext:
    """What the scenarios may use besides the targets' own data.

    ``good_contacts``: ids of good-standing people (top scores) a gamer could link to;
    their profiles and events must be in the data the scenario gets.
    """

    window_days: int = 30
    good_contacts: tuple[str, ...] = ()
    n_contacts: int = 5


# --------------------------------------------------------------------------- scenarios


def _times(targets: pd.DataFrame, k: int, rng: np.random.Generator, days: int) -> pd.Series:
    """``k`` random times per target in [T - days, T), at least a second before T."""
    obs = np.repeat(targets["observation_date"].to_numpy(dtype="datetime64[ns]"), k)
    seconds = rng.integers(1, days * 86_400, len(obs))
    return pd.Series(obs - seconds.astype("timedelta64[s]"), dtype="datetime64[ns]")


def _add_events(
    data: BehaviourData, rows: dict[str, object], tag: str, rng: np.random.Generator
) -> BehaviourData:
    """Append events (columns as in ``EVENTS``) with fresh unique ids."""
    new = pd.DataFrame(rows)
    start = int(rng.integers(0, 1 << 40))
    new["event_id"] = [f"gaming-{tag}-{start}-{i}" for i in range(len(new))]
    new = conform(new, EVENTS)
    events = pd.concat([data.events, new[list(data.events.columns)]], ignore_index=True)
    return dataclasses.replace(data, events=events)


def tiny_topups(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """20 phone top-ups of 1-5 CNY each (100 CNY at most, spent on one's own phone)."""
    k = 20
    return _add_events(
        data,
        {
            "person_id": np.repeat(targets["person_id"].to_numpy(dtype=object), k),
            "event_time": _times(targets, k, rng, ctx.window_days),
            "event_type": EventType.PHONE_TOPUP.value,
            "amount": rng.integers(1, 6, len(targets) * k).astype(float),
        },
        "topup",
        rng,
    )


def _topups(
    data: BehaviourData,
    people: pd.DataFrame,
    amounts: np.ndarray,
    k: int,
    tag: str,
    rng: np.random.Generator,
    ctx: GamingContext,
) -> BehaviourData:
    """``k`` phone top-ups per person of ``people`` (``amounts``: one per event)."""
    if people.empty:
        return data
    return _add_events(
        data,
        {
            "person_id": np.repeat(people["person_id"].to_numpy(dtype=object), k),
            "event_time": _times(people, k, rng, ctx.window_days),
            "event_type": EventType.PHONE_TOPUP.value,
            "amount": amounts,
        },
        tag,
        rng,
    )


def one_topup(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """One phone top-up of 100 CNY, for the targets with no top-up in the 365 days before
    T (a missing top-up history turned into a known one for the price of one top-up)."""
    top = data.events[data.events["event_type"] == EventType.PHONE_TOPUP.value]
    top = top.merge(targets[KEYS], on="person_id")
    recent = top["event_time"] < top["observation_date"]
    recent &= top["event_time"] >= top["observation_date"] - 365 * DAY
    has = set(top.loc[recent, "person_id"])
    none = targets[~targets["person_id"].isin(has)]
    return _topups(data, none, np.full(len(none), 100.0), 1, "one-topup", rng, ctx)


def large_topups(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """Three phone top-ups of 200-300 CNY each (a few large ones, about 750 CNY in all,
    still spent on one's own phone)."""
    k = 3
    amounts = np.round(rng.uniform(200, 300, len(targets) * k), -1)
    return _topups(data, targets, amounts, k, "large-topups", rng, ctx)


def declared_to_verified(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """Declared income lowered to the verified one (for targets who declared more than was
    verified), with the profile update that does it: the verified/declared ratio becomes 1
    at no cost and with no new fact."""
    prof = data.profiles.copy()
    declared = prof["declared_income"].to_numpy(dtype=float, na_value=np.nan)
    verified = prof["verified_income"].to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        lower = prof["person_id"].isin(targets["person_id"]).to_numpy(dtype=bool) & (
            verified < declared
        )
    prof.loc[lower, "declared_income"] = verified[lower]
    edited = dataclasses.replace(data, profiles=prof)
    who = targets[targets["person_id"].isin(prof.loc[lower, "person_id"])]
    if who.empty:
        return edited
    return _add_events(
        edited,
        {
            "person_id": who["person_id"].to_numpy(dtype=object),
            "event_time": _times(who, 1, rng, ctx.window_days),
            "event_type": EventType.PROFILE_UPDATE.value,
        },
        "declared",
        rng,
    )


def purchase_burst(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """10-15 purchases of 5-20 CNY within one hour, all confirmed and reviewed, none returned."""
    counts = rng.integers(10, 16, len(targets))
    person = np.repeat(targets["person_id"].to_numpy(dtype=object), counts)
    start = np.repeat(_times(targets, 1, rng, ctx.window_days).to_numpy(), counts)
    minutes = rng.integers(0, 60, len(person)).astype("timedelta64[m]")
    obs = np.repeat(targets["observation_date"].to_numpy(dtype="datetime64[ns]"), counts)
    when = np.minimum(start + minutes, obs - np.timedelta64(1, "s"))
    n = len(person)
    return _add_events(
        data,
        {
            "person_id": person,
            "event_time": pd.Series(when, dtype="datetime64[ns]"),
            "event_type": EventType.PURCHASE.value,
            "amount": np.round(rng.uniform(5, 20, n), 2),
            "category": rng.choice(["groceries", "other"], n),
            "receipt_confirmed": np.ones(n, dtype=bool),
            "returned": np.zeros(n, dtype=bool),
            "review_left": np.ones(n, dtype=bool),
        },
        "purchase",
        rng,
    )


def profile_edits(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """Self-declared facts made to look better, with three profile updates to do it.

    Fills every profile field (completeness 1), declares 50% more income (10,000 CNY
    when none was known), claims a bachelor degree and a salaried job when none was
    given. Verified facts (verified income, identity) cannot be self-declared: untouched.
    """
    prof = data.profiles.copy()
    mine = prof["person_id"].isin(targets["person_id"]).to_numpy(dtype=bool)
    declared = prof.loc[mine, "declared_income"].to_numpy(dtype=float, na_value=np.nan)
    verified = prof.loc[mine, "verified_income"].to_numpy(dtype=float, na_value=np.nan)
    known = np.fmax(declared, verified)
    prof.loc[mine, "declared_income"] = np.where(
        np.isnan(known), 10_000.0, np.round(known * 1.5, -2)
    )
    prof.loc[mine, "profile_completeness"] = 1.0
    for col, value in (("education", "bachelor"), ("occupation", "salaried")):
        missing = mine & prof[col].isna().to_numpy(dtype=bool)
        prof.loc[missing, col] = value
    k = 3
    edited = dataclasses.replace(data, profiles=prof)
    return _add_events(
        edited,
        {
            "person_id": np.repeat(targets["person_id"].to_numpy(dtype=object), k),
            "event_time": _times(targets, k, rng, ctx.window_days),
            "event_type": EventType.PROFILE_UPDATE.value,
        },
        "profile",
        rng,
    )


def good_contacts(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """Link to ``ctx.n_contacts`` people with top scores, just old enough to count.

    A link counts for the features only once it is ``MIN_LINK_AGE_DAYS`` old, so links
    made in the last ``window_days`` could never move a score: these are dated
    ``MIN_LINK_AGE_DAYS`` to ``MIN_LINK_AGE_DAYS + window_days`` days before T (a gamer
    who linked a quarter ahead), the cheapest links the features do read.
    """
    pool = np.asarray(ctx.good_contacts, dtype=object)
    if len(pool) <= ctx.n_contacts:
        raise ValueError(
            f"need more than {ctx.n_contacts} good contacts to draw from; got {len(pool)}"
        )
    ego, other = [], []
    existing = set(zip(data.contacts["person_id"], data.contacts["contact_id"], strict=True))
    for pid in targets["person_id"].to_numpy(dtype=object):
        choice = rng.choice(pool[pool != pid], ctx.n_contacts, replace=False)
        for c in choice:
            if (pid, c) not in existing:
                ego.append(pid)
                other.append(c)
    obs = targets.set_index("person_id")["observation_date"]
    age = MIN_LINK_AGE_DAYS + rng.integers(1, ctx.window_days + 1, len(ego))
    when = obs.reindex(ego).to_numpy(dtype="datetime64[ns]") - age.astype("timedelta64[D]")
    new = conform(
        pd.DataFrame(
            {
                "person_id": ego,
                "contact_id": other,
                "since_date": pd.Series(when, dtype="datetime64[ns]").dt.normalize(),
            }
        ),
        CONTACTS,
    )
    contacts = pd.concat([data.contacts, new[list(data.contacts.columns)]], ignore_index=True)
    return dataclasses.replace(data, contacts=contacts)


def all_of_the_above(
    data: BehaviourData, targets: pd.DataFrame, rng: np.random.Generator, ctx: GamingContext
) -> BehaviourData:
    """Every cheap behaviour at once."""
    for fn in (tiny_topups, purchase_burst, profile_edits, good_contacts):
        data = fn(data, targets, rng, ctx)
    return data


Scenario = Callable[
    [BehaviourData, pd.DataFrame, np.random.Generator, GamingContext], BehaviourData
]

# Declared once: name -> cheap behaviour. The report, the bound check and the tests
# all iterate over this mapping.
SCENARIOS: dict[str, Scenario] = {
    "tiny_topups": tiny_topups,
    "one_topup": one_topup,
    "large_topups": large_topups,
    "purchase_burst": purchase_burst,
    "profile_edits": profile_edits,
    "declared_to_verified": declared_to_verified,
    "good_contacts": good_contacts,
    "all_of_the_above": all_of_the_above,
}

#: A scenario's status in the report.
PASS, BREACH, NOT_EXERCISED = "pass", "breach", "not exercised"


# --------------------------------------------------------------------------- gains


def choose_people(
    scored: pd.DataFrame, sample_people: int, n_contacts: int, seed: int = 0
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Targets (a seeded sample of ``scored`` rows) and the good-contact pool.

    ``scored`` holds test-cohort keys and their ``score``. The pool is the top 2% by
    score (at least ``10 * n_contacts`` people): the contacts a gamer would try to get.
    """
    rng = np.random.default_rng(seed)
    n = min(sample_people, len(scored))
    targets = scored.iloc[np.sort(rng.choice(len(scored), n, replace=False))][KEYS]
    k = min(len(scored), max(10 * n_contacts, int(np.ceil(0.02 * len(scored)))))
    top = scored.sort_values(["score", "person_id"], ascending=[False, True]).head(k)
    return targets.reset_index(drop=True), tuple(top["person_id"].astype(str))


def _only(data: BehaviourData, targets: pd.DataFrame) -> BehaviourData:
    """``data`` with its outcome rows reduced to ``targets`` (in that order)."""
    outcomes = targets[KEYS].merge(data.outcomes, on=KEYS, how="left")
    return dataclasses.replace(data, outcomes=outcomes)


def score_people(
    model, data: BehaviourData, windows: Sequence[int] = DEFAULT_WINDOWS
) -> pd.DataFrame:
    """Features, PD, score and granted limit of every outcome row of ``data``.

    The limit the policy grants is ``granted_limit``: ``credit_limit`` is a feature (the
    limits of the person's current accounts).
    """
    feats = compute_features(data, windows)
    decided = model.decide(feats, with_reasons=False)
    return feats.assign(
        pd=decided["pd"].to_numpy(),
        score=decided["score"].to_numpy(),
        granted_limit=decided["credit_limit"].to_numpy(),
    )


#: A declared income larger than any the policy counts: its capacity is the policy's cap.
_ANY_CLAIM = 1e12


def _income(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def allowed_limit_gain(
    model, before: pd.DataFrame, after: pd.DataFrame, points: float
) -> np.ndarray:
    """Per person, the most granted limit (CNY) a scenario may buy: the limit the policy
    gives the same person ``points`` higher (score + points, and the PD those points mean
    on the score scale: odds of being good doubled every ``pdo``), same incomes, minus
    the limit now. A person whose declared income the scenario changed made an income
    claim: their allowance uses the largest declared income the policy counts (an
    unverified income counts for at most ``max_unverified_capacity``; a verified income
    replaces it, so a claim buys them nothing)."""
    scale, policy = model.scale, model.decision_params.limit
    score0 = before["score"].to_numpy(dtype=np.float64)
    pd0 = before["pd"].to_numpy(dtype=np.float64)
    pd_up = scale.pd_from_score(scale.raw_score(pd0) + points)
    declared = _income(before, "declared_income")
    claimed = _differs(declared, _income(after, "declared_income"))
    declared = np.where(claimed, _ANY_CLAIM, declared)
    up = credit_limit(score0 + points, pd_up, declared, _income(before, "verified_income"), policy)
    return up - before["granted_limit"].to_numpy(dtype=np.float64)


def inputs_changed(model, before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    """Per person, whether any model input (scored or only carried) differs."""
    names = [n for n in model.feature_names if n in before and n in after]
    a = before[names].to_numpy(dtype=np.float64, na_value=np.nan)
    b = after[names].to_numpy(dtype=np.float64, na_value=np.nan)
    return _differs(a, b).any(axis=1)


def touched(before: BehaviourData, after: BehaviourData, targets: pd.DataFrame) -> np.ndarray:
    """Which targets a scenario applied to: it added an event or a contact of theirs, or
    changed their profile. Scenarios only append events and contacts (never drop or
    reorder rows), so what is new lies after the original rows."""
    ids: set = set(after.events["person_id"].iloc[len(before.events) :])
    ids |= set(after.contacts["person_id"].iloc[len(before.contacts) :])
    a, b = after.profiles, before.profiles
    if a is not b:
        same = (a == b).fillna(False) | (a.isna() & b.isna())
        ids |= set(a.loc[~same.all(axis=1).to_numpy(), "person_id"])
    return targets["person_id"].isin(ids).to_numpy(dtype=bool)


def gaming_gains(
    model,
    data: BehaviourData,
    targets: pd.DataFrame,
    ctx: GamingContext,
    seed: int = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    scenarios: dict[str, Scenario] | None = None,
    progress: Callable[[str], None] | None = None,
    points: float = 10.0,
) -> pd.DataFrame:
    """Score gain of each target under each scenario.

    ``data`` holds the targets' data (and the good contacts'; :func:`person_data` cuts
    it); ``targets`` are (person_id, observation_date) rows. Returns one row per
    (scenario, target): ``applied`` (the scenario touched this person, :func:`touched`),
    ``score_before``, ``score_after``, ``gain``, and the same for the credit limit
    (``limit_gain``, CNY: the limit policy also reads declared income, which is cheap to
    inflate), its per-person bound ``allowed_limit_gain`` (:func:`allowed_limit_gain`,
    ``points`` = the score bound) and ``inputs_changed`` (the scenario reached the model's
    inputs). ``progress(name)`` is called after each scenario.
    """
    scenarios = SCENARIOS if scenarios is None else scenarios
    targets = targets[KEYS].drop_duplicates().reset_index(drop=True)
    base = _only(data, targets)
    before = score_people(model, base, windows)
    out = []
    for i, (name, fn) in enumerate(scenarios.items()):
        rng = np.random.default_rng([seed, i])
        gamed = fn(base, targets, rng, ctx)
        after = score_people(model, gamed, windows)
        score0, score1 = before["score"].to_numpy(), after["score"].to_numpy()
        limit0, limit1 = before["granted_limit"].to_numpy(), after["granted_limit"].to_numpy()
        out.append(
            targets.assign(
                scenario=name,
                applied=touched(base, gamed, targets),
                score_before=score0,
                score_after=score1,
                gain=score1 - score0,
                limit_before=limit0,
                limit_after=limit1,
                limit_gain=limit1 - limit0,
                allowed_limit_gain=allowed_limit_gain(model, before, after, points),
                inputs_changed=inputs_changed(model, before, after),
            )
        )
        if progress is not None:
            progress(name)
    return pd.concat(out, ignore_index=True)


def _describe(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.5, 0.9, 0.99]) if len(x) else [np.nan] * 3
    return {
        "n": len(x),
        "mean": float(np.mean(x)) if len(x) else np.nan,
        "p50": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
        "max": float(np.max(x)) if len(x) else np.nan,
    }


def gains_summary(gains: pd.DataFrame, max_gain: float, quantile: float) -> dict[str, dict]:
    """Per scenario, over the people it applied to (``applied``; everyone when absent): n,
    mean, p50, p90, p99, max score gain, share of people above the bound and moved, the
    bounded quantile, the same for the limit gain (``limit_gain``; bounded per person by
    ``allowed_limit_gain`` when present: the quantile of ``limit_gain - allowed`` must be
    <= 0) and the ``status``: ``pass``, ``breach`` or ``not exercised`` (applied to nobody,
    or changed no model input of anyone it applied to, ``inputs_changed``; without that
    column, moved no score: it tested nothing)."""
    out = {}
    for name, grp in gains.groupby("scenario", sort=False):
        n_targets = len(grp)
        if "applied" in grp:
            grp = grp[grp["applied"].to_numpy(dtype=bool)]
        g = grp["gain"].to_numpy(dtype=float)
        q = float(np.quantile(g, quantile)) if len(g) else np.nan
        moved = float(np.mean(g != 0)) if len(g) else 0.0
        within = bool(len(g) == 0 or q <= max_gain)
        s = {
            **_describe(g),
            "n_targets": n_targets,
            "share_applied": len(g) / n_targets if n_targets else 0.0,
            "share_above_bound": float(np.mean(g > max_gain)) if len(g) else 0.0,
            "share_gaining": float(np.mean(g > 0)) if len(g) else 0.0,
            "share_moved": moved,
            "bounded_quantile": quantile,
            "bounded_gain": q if len(g) else 0.0,
            "within_bound": within,
        }
        if "limit_gain" in grp:
            lg = grp["limit_gain"].to_numpy(dtype=float)
            lq = float(np.quantile(lg, quantile)) if len(lg) else 0.0
            s["limit_gain"] = {**_describe(lg), "bounded_gain": lq, "within_bound": True}
            if "allowed_limit_gain" in grp:
                allowed = grp["allowed_limit_gain"].to_numpy(dtype=float)
                excess = lg - allowed
                eq = float(np.quantile(excess, quantile)) if len(lg) else 0.0
                s["limit_gain"].update(
                    bounded_allowed=float(np.quantile(allowed, quantile)) if len(lg) else 0.0,
                    bounded_excess=eq,
                    max_excess=float(excess.max()) if len(lg) else 0.0,
                    share_above_allowed=float(np.mean(excess > 0)) if len(lg) else 0.0,
                    within_bound=bool(eq <= 0),
                )
            within = within and s["limit_gain"]["within_bound"]
        if "inputs_changed" in grp:
            s["share_inputs_changed"] = (
                float(np.mean(grp["inputs_changed"].to_numpy(dtype=bool))) if len(g) else 0.0
            )
            idle = s["share_inputs_changed"] == 0
        else:
            idle = moved == 0
        if len(g) == 0 or idle:
            s["status"] = NOT_EXERCISED
        else:
            s["status"] = PASS if within else BREACH
        out[str(name)] = s
    return out


def check_gains(summary: dict[str, dict], max_gain: float) -> None:
    """Raise :class:`RobustnessError` naming every scenario whose bounded quantile of score
    (or limit) gains pays more than its bound."""
    bad = [
        f"{name} buys {s['bounded_gain']:+.0f} points at p{100 * s['bounded_quantile']:g} "
        f"(max {s['max']:+.0f}, {100 * s['share_above_bound']:.1f}% of people above)"
        for name, s in summary.items()
        if not s["within_bound"]
    ]
    limit = [
        f"{name} buys {s['limit_gain']['bounded_excess']:+,.0f} CNY of limit beyond what "
        f"{max_gain:g} points would give at p{100 * s['bounded_quantile']:g} (gain "
        f"{s['limit_gain']['bounded_gain']:+,.0f}, max excess "
        f"{s['limit_gain']['max_excess']:+,.0f}, "
        f"{100 * s['limit_gain']['share_above_allowed']:.1f}% of people above)"
        for name, s in summary.items()
        if "limit_gain" in s and not s["limit_gain"]["within_bound"]
    ]
    if bad:
        raise RobustnessError(
            f"gaming pays more than {max_gain:g} points: " + "; ".join(bad + limit)
        )
    if limit:
        raise RobustnessError("gaming buys limit: " + "; ".join(limit))


def check_exercised(summary: dict[str, dict]) -> None:
    """Raise :class:`RobustnessError` naming every scenario that tested nothing."""
    idle = [
        f"{name} (applied to {s['n']} of {s['n_targets']} people, changed the inputs of "
        f"{100 * s.get('share_inputs_changed', s['share_moved']):.0f}%)"
        for name, s in summary.items()
        if s["status"] == NOT_EXERCISED
    ]
    if idle:
        raise RobustnessError("gaming scenario not exercised: " + "; ".join(idle))


# --------------------------------------------------------------------------- stability


def material_change(data: BehaviourData, targets: pd.DataFrame, lag_days: int) -> np.ndarray:
    """Whether each target's events show a material change in [T - lag_days, T).

    Material: a late repayment, a statement in arrears, a new credit account (its first
    statement), a credit-limit change on an account, an address change, joining the
    platform or starting a new job in that period. Profile facts (income, verification)
    are a snapshot at T, the same at both dates, so they cannot change here.
    :func:`score_changes` adds the changes only the features show (see
    :func:`credit_change`).
    """
    t = targets[KEYS].reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    ev = data.events.merge(t, on="person_id")
    start = ev["observation_date"] - lag_days * DAY
    before_t = ev["event_time"] < ev["observation_date"]
    inside = before_t & (ev["event_time"] >= start)
    etype = ev["event_type"]
    dpd = ev["days_past_due"].fillna(0)
    flag = inside & (
        ((etype == EventType.REPAYMENT) & (dpd > 0))
        | ((etype == EventType.STATEMENT) & (dpd > 0))
        | (etype == EventType.ADDRESS_CHANGE)
    )
    st = ev[(etype == EventType.STATEMENT) & before_t].sort_values(["_row", "event_time"])
    acct = st["account_id"].fillna("")
    first = ~st.duplicated(["_row", "account_id"])
    prev_limit = st.groupby([st["_row"], acct])["credit_limit"].shift()
    limit_changed = prev_limit.notna() & (st["credit_limit"] != prev_limit)
    st_inside = inside.loc[st.index]
    changed = np.zeros(len(t), dtype=bool)
    changed[ev.loc[flag, "_row"].to_numpy()] = True
    changed[st.loc[st_inside & (first | limit_changed), "_row"].to_numpy()] = True
    prof = t[["person_id"]].merge(
        data.profiles.drop_duplicates("person_id"), on="person_id", how="left"
    )
    start = t["observation_date"] - lag_days * DAY
    for col in ("registered_date", "employment_start_date"):
        if col in prof.columns:
            changed |= (prof[col] >= start).to_numpy(dtype=bool, na_value=False)
    return changed


def credit_change(now: pd.DataFrame, earlier: pd.DataFrame) -> np.ndarray:
    """Whether the credit position moved materially between two feature rows per person.

    Material: utilisation of the latest statements moved by more than
    ``MATERIAL_UTILISATION_CHANGE`` (or became known / unknown), or the number of
    current accounts or their total limit changed (an account opened, closed or re-limited).
    """
    u0, u1 = (f["utilisation_latest"].to_numpy(dtype=float) for f in (earlier, now))
    moved = np.abs(u1 - u0) > MATERIAL_UTILISATION_CHANGE
    moved |= np.isnan(u0) != np.isnan(u1)
    for col in ("n_current_accounts", "credit_limit"):
        a, b = (f[col].to_numpy(dtype=float) for f in (earlier, now))
        moved |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return moved


def lagged(targets: pd.DataFrame, lag_days: int) -> pd.DataFrame:
    """The same people at T - lag_days."""
    return targets[KEYS].assign(observation_date=targets["observation_date"] - lag_days * DAY)


def score_changes(
    model,
    data: BehaviourData,
    targets: pd.DataFrame,
    lag_days: int,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> pd.DataFrame:
    """Score at T and at T - lag_days of each target, the change and whether it is stable.

    Both are computed by the same point-in-time features: at T - lag only events strictly
    before T - lag count.
    """
    targets = targets[KEYS].drop_duplicates().reset_index(drop=True)
    now = score_people(model, _only(data, targets), windows)
    earlier_rows = lagged(targets, lag_days)
    earlier_data = dataclasses.replace(data, outcomes=earlier_rows)
    earlier = score_people(model, earlier_data, windows)
    material = material_change(data, targets, lag_days) | credit_change(now, earlier)
    s_now, s_earlier = now["score"].to_numpy(), earlier["score"].to_numpy()
    return targets.assign(
        score=s_now, score_lagged=s_earlier, change=s_now - s_earlier, stable=~material
    )


def stability_summary(changes: pd.DataFrame) -> dict[str, dict]:
    """Distribution of |score change| for the stable group and for everyone."""
    out = {}
    for name, grp in (("stable", changes[changes["stable"]]), ("everyone", changes)):
        out[name] = {
            **_describe(np.abs(grp["change"].to_numpy(dtype=float))),
            "mean_signed_change": float(grp["change"].mean()) if len(grp) else np.nan,
        }
    out["stable"]["share_of_people"] = float(changes["stable"].mean()) if len(changes) else 0.0
    return out


def check_stability(summary: dict[str, dict], max_p90: float) -> None:
    """Raise :class:`RobustnessError` when the stable group's p90 |change| is above ``max_p90``."""
    p90 = summary["stable"]["p90"]
    if not p90 <= max_p90:
        raise RobustnessError(
            f"unstable score: p90 |month-over-month change| of people whose behaviour did not "
            f"change is {p90:.0f} points > {max_p90:g} (n={summary['stable']['n']})"
        )


# --------------------------------------------------------------------------- plots


def plot_gains(gains: pd.DataFrame, max_gain: float) -> Figure:
    """Histogram of the score gain per scenario (people it applied to), with the bound."""
    if "applied" in gains:
        gains = gains[gains["applied"].to_numpy(dtype=bool)]
    names = list(dict.fromkeys(gains["scenario"]))
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    g_all = gains["gain"].to_numpy(dtype=float)
    lo = min(-max_gain, float(g_all.min()) if len(g_all) else 0.0) - 2
    hi = max(2 * max_gain, float(g_all.max()) if len(g_all) else 0.0) + 2
    edges = np.arange(np.floor(lo), np.ceil(hi) + 2, 2) - 0.5
    for ax, name in zip(axes, names, strict=False):
        g = gains.loc[gains["scenario"] == name, "gain"]
        ax.hist(g, bins=edges, color="#4c72b0")
        ax.axvline(max_gain, color="#c44e52", ls="--", lw=1)
        ax.set(title=f"{name} (n={len(g)})", xlabel="score gain (points)")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("people")
    fig.suptitle(f"Score bought by cheap activity (bound {max_gain:g} points, dashed)")
    fig.tight_layout()
    return fig


def plot_stability(changes: pd.DataFrame, lag_days: int, max_p90: float) -> Figure:
    """Histogram of score(T) - score(T - lag) for the stable group and everyone."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    c = changes["change"].to_numpy(dtype=float)
    span = max(10.0, float(np.quantile(np.abs(c), 0.995))) if len(c) else 10.0
    edges = np.arange(-np.ceil(span), np.ceil(span) + 2, 2) - 0.5
    ax.hist(c, bins=edges, alpha=0.5, density=True, label="everyone", color="#dd8452")
    ax.hist(
        c[changes["stable"].to_numpy(dtype=bool)],
        bins=edges,
        alpha=0.6,
        density=True,
        label="no material change",
        color="#4c72b0",
    )
    for x in (-max_p90, max_p90):
        ax.axvline(x, color="#c44e52", ls="--", lw=1)
    ax.set(
        xlabel=f"score(T) - score(T - {lag_days} days) (points)",
        ylabel="density",
        title=f"Month-over-month score change (p90 bound +-{max_p90:g}, dashed)",
    )
    ax.legend()
    fig.tight_layout()
    return fig
