"""Splitting labelled rows into train, validation, calibration and test.

Credit models are used on people scored *after* the data they were trained on, so the
strongest validation is out of time: the oldest calendar periods train the model, the next
ones stop the boosting (validation), the next ones fit the calibration, and the newest are
the untouched test. A random split would leak the future (macro drift, product changes)
into training and flatter the test numbers.

Real data often cannot support that: one snapshot (every person observed at one date) has
no "later". Then the only honest validation is *in time*: people drawn at random,
stratified by label, a person's rows kept together; every report says it is in-time
evidence. ``split.method: auto`` (the default) picks out of time when the data allows it,
else in time, and says which and why (:attr:`Split.why`); when neither is possible the
refusal is one line naming the counts (:class:`SplitError`). :func:`allowed_splits` says
the same from the outcomes table, so the ingest stage refuses first.

The development slice (:data:`DEVELOPMENT`, ``select_slice(..., "development")``) is the
validation and calibration rows together: labelled rows the booster was not fit on and
that are not the final test. Every choice made while building reads them and never the
test cohort: early stopping and tuning (validation), the calibration method (calibration),
the robustness stage's people (development, ``robustness.slice``). The test cohort is read
only to measure the validated model (evaluate, the gate); ``models/train_log.json``'s
``choices`` says which slice each choice used.

Every split is described by a plain mapping (dates per slice plus ``method``,
``group_by_person``, ``seed`` and the in-time shares) recorded in ``models/train_log.json``;
:func:`select_slice` rebuilds any slice from it, so evaluate, robustness and register
select exactly the rows training held out.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.config import SplitParams
from credit_scoring.schemas import DATE, LABEL, ROW_KEY

logger = logging.getLogger(__name__)

SLICES: tuple[str, ...] = ("train", "validation", "calibration", "test")
#: The development slice: the slices choices made while building may read (never "test").
DEVELOPMENT = "development"
DEVELOPMENT_SLICES: tuple[str, ...] = ("validation", "calibration")
PERSON = ROW_KEY[0]
OUT_OF_TIME = "out_of_time"
IN_TIME = "in_time"
#: What each method's test numbers are evidence of, as reports and the gate say it.
EVIDENCE = {OUT_OF_TIME: "out-of-time", IN_TIME: "in-time"}
_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}


class SplitError(ValueError):
    """The data cannot support the split asked for: one line naming the counts."""


@dataclass(frozen=True)
class Split:
    """The four disjoint slices, the observation dates in each and how they were chosen.

    ``n_unlabelled`` counts rows left out because their outcome is not known yet (people to
    be scored, not to learn from); ``n_excluded`` counts labelled rows left out by the gap
    or because their person is in the test slice. ``spec`` is what :func:`select_slice`
    needs besides the dates; ``why`` says why this method was chosen.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame
    cohorts: dict[str, list[dt.date]]
    n_unlabelled: int = field(default=0)
    method: str = field(default=OUT_OF_TIME)
    why: str = field(default="")
    spec: dict[str, Any] = field(default_factory=dict)
    n_excluded: int = field(default=0)

    def sizes(self) -> dict[str, int]:
        """Rows per slice, for logs and reports."""
        return {name: len(getattr(self, name)) for name in SLICES}

    def defaults(self) -> dict[str, int]:
        """Defaults per slice."""
        return {name: int(getattr(self, name)[LABEL].sum()) for name in SLICES}

    @property
    def evidence(self) -> str:
        """``out-of-time`` or ``in-time``: what the test numbers are evidence of."""
        return EVIDENCE[self.method]

    def selector(self) -> dict[str, Any]:
        """The mapping :func:`select_slice` rebuilds every slice from (train_log's
        ``cohorts``): dates per slice as ISO strings plus :attr:`spec`."""
        return {k: [str(d) for d in v] for k, v in self.cohorts.items()} | self.spec

    def describe(self) -> dict[str, Any]:
        """The split as reports record it (train log, metrics.json, the MLflow run)."""
        return {
            "method": self.method,
            "evidence": self.evidence,
            "why": self.why,
            "rows": self.sizes(),
            "defaults": self.defaults(),
            "n_unlabelled": self.n_unlabelled,
            "n_excluded": self.n_excluded,
            **{k: v for k, v in self.spec.items() if k != "method"},
        }


def _labelled(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    missing = [c for c in (DATE, LABEL) if c not in df.columns]
    if missing:
        raise KeyError(f"feature table lacks column(s) {missing} needed for the split")
    mask = df[LABEL].notna().to_numpy()
    return df.loc[mask], int((~mask).sum())


def _ordered(part: pd.DataFrame) -> pd.DataFrame:
    sort_cols = [DATE, PERSON] if PERSON in part.columns else [DATE]
    return part.sort_values(sort_cols, kind="stable").reset_index(drop=True)


def _iso(dates: Sequence[Any]) -> list[str]:
    return [pd.Timestamp(d).date().isoformat() for d in dates]


def period_labels(dates: pd.Series, period: str) -> pd.Series:
    """The calendar period of each date as the date it starts on ('date': the date)."""
    ts = pd.to_datetime(dates)
    if period == "date":
        return ts.dt.normalize()
    return ts.dt.to_period(_FREQ[period]).dt.start_time


def check_slices(slices: Mapping[str, pd.DataFrame], split: SplitParams, method: str) -> list[str]:
    """Every slice with too few rows, defaults or non-defaults, as short phrases."""
    problems = []
    for name in SLICES:
        y = slices[name][LABEL].to_numpy(dtype=np.float64)
        n, bad = int(y.size), int(y.sum())
        if n < split.min_rows or bad < split.min_defaults or n - bad < split.min_defaults:
            problems.append(f"{name} {n} rows / {bad} defaults")
    if problems:
        return [
            f"{EVIDENCE[method]} slices too small ({', '.join(problems)}; each needs "
            f">= {split.min_rows} rows and >= {split.min_defaults} defaults and non-defaults, "
            "split.min_rows / split.min_defaults)"
        ]
    return []


def out_of_time_split(df: pd.DataFrame, split: SplitParams) -> Split:
    """Out of time: whole calendar periods (or the ``cutoffs``), newest first, to test,
    calibration, validation; the rest train.

    Only rows with a known label take part, and periods are counted among those rows: the
    newest observation dates usually have no outcome yet and must not become an empty
    "test". With ``gap_months`` rows observed less than that before the test window are
    left out of the earlier slices; with ``group_by_person`` the rows of test people are.

    Raises:
        KeyError: ``observation_date`` or the label is missing.
        SplitError: too few labelled periods, or a slice below the minimum counts.
    """
    labelled, n_unlabelled = _labelled(df)
    dates = pd.to_datetime(labelled[DATE])
    if split.cutoffs:
        v0, c0, t0 = (pd.Timestamp(d) for d in split.cutoffs)
        slice_of = np.select(
            [dates < v0, dates < c0, dates < t0], ["train", "validation", "calibration"], "test"
        )
        gap_cut = t0 - pd.DateOffset(months=split.gap_months)
        how = f"cut-off dates {_iso(split.cutoffs)}"
        slice_of = np.where((slice_of != "test") & (dates >= gap_cut).to_numpy(), "", slice_of)
    else:
        periods = period_labels(dates, split.period)
        ordered = sorted(periods.unique())
        n_test, n_cal, n_val = (
            split.test_cohorts,
            split.calibration_cohorts,
            split.validation_cohorts,
        )
        needed = n_test + n_cal + n_val + 1
        what = "distinct dates" if split.period == "date" else f"{split.period}s"
        if len(ordered) < needed:
            shown = _iso(ordered[:6]) + (["..."] if len(ordered) > 6 else [])
            raise SplitError(
                f"out-of-time split needs at least {needed} labelled cohorts ({what}): "
                f"{n_test} test + {n_cal} calibration + {n_val} validation + at least 1 "
                f"train; got {len(ordered)}: {shown}"
            )
        test_periods = ordered[-n_test:]
        test_start = min(test_periods)
        gap_cut = test_start - pd.DateOffset(months=split.gap_months)
        before = [p for p in ordered[:-n_test] if p < gap_cut]
        if len(before) < n_cal + n_val + 1:
            raise SplitError(
                f"out-of-time split: after a gap of {split.gap_months} months before the test "
                f"window ({_iso([test_start])[0]}), {len(before)} labelled {what} remain; "
                f"{n_cal} calibration + {n_val} validation + at least 1 train are needed"
            )
        n_train = len(before) - n_cal - n_val
        assign = {p: "train" for p in before[:n_train]}
        assign |= {p: "validation" for p in before[n_train : n_train + n_val]}
        assign |= {p: "calibration" for p in before[n_train + n_val :]}
        assign |= {p: "test" for p in test_periods}
        slice_of = periods.map(assign).fillna("").to_numpy()
        slice_of = np.where((slice_of != "test") & (dates >= gap_cut).to_numpy(), "", slice_of)
        how = f"{len(ordered)} labelled {what}"
    spec = {"method": OUT_OF_TIME, "group_by_person": bool(split.group_by_person)}
    cohorts = {
        name: sorted({pd.Timestamp(d).date() for d in dates[slice_of == name]}) for name in SLICES
    }
    empty = [name for name in SLICES if not cohorts[name]]
    if empty:
        raise SplitError(f"out-of-time split ({how}) leaves no labelled rows in {empty}")
    slices = {name: select_slice(labelled, cohorts, name, spec) for name in SLICES}
    n_excluded = len(labelled) - sum(len(s) for s in slices.values())
    problems = check_slices(slices, split, OUT_OF_TIME)
    if problems:
        raise SplitError(f"out-of-time split ({how}): {problems[0]}")
    result = Split(
        **slices,
        cohorts=cohorts,
        n_unlabelled=n_unlabelled,
        method=OUT_OF_TIME,
        why=f"out of time by {how}",
        spec=spec,
        n_excluded=n_excluded,
    )
    logger.info(
        "out-of-time split: %s rows per slice, %d unlabelled and %d excluded rows",
        result.sizes(),
        n_unlabelled,
        n_excluded,
    )
    return result


def _hash_key(seed: int) -> str:
    return f"{seed % 10**16:016d}"


def in_time_assignment(pool: pd.DataFrame, seed: int, shares: Mapping[str, float]) -> np.ndarray:
    """The slice of each row of ``pool``: people drawn at random, stratified by label.

    A person's rows go to one slice together; a person counts as a defaulter when any of
    their rows is one. Within each label stratum people are ordered by a seeded hash of
    their id and cut by ``shares`` (test, calibration, validation; the rest train), so the
    assignment depends only on the people, their labels and the seed, never on row order.
    """
    if PERSON not in pool.columns:
        raise KeyError(f"an in-time split needs the {PERSON!r} column to keep people together")
    person = pool[PERSON].astype(str).to_numpy()
    y = pool[LABEL].to_numpy(dtype=np.float64)
    people = pd.DataFrame({"person": person, "y": y}).groupby("person", sort=True)["y"].max()
    hashed = pd.util.hash_pandas_object(
        pd.Series(people.index, dtype=object), index=False, hash_key=_hash_key(seed)
    ).to_numpy()
    frame = pd.DataFrame({"person": people.index, "y": people.to_numpy(), "h": hashed})
    frame = frame.sort_values(["y", "h", "person"], kind="stable")
    rank = frame.groupby("y").cumcount().to_numpy()
    size = frame.groupby("y")["person"].transform("size").to_numpy()
    order = ("test", "calibration", "validation")
    cum = np.cumsum([shares[name] for name in order])
    bounds = np.rint(np.outer(size, cum))  # people x 3
    index = (rank[:, None] >= bounds).sum(axis=1)  # 0 test, 1 calibration, 2 validation, 3 train
    names = np.array([*order, "train"])
    slice_of_person = pd.Series(names[index], index=frame["person"].to_numpy())
    return slice_of_person.reindex(person).to_numpy()


def in_time_shares(split: SplitParams) -> dict[str, float]:
    return {
        "test": split.in_time_test,
        "calibration": split.in_time_calibration,
        "validation": split.in_time_validation,
    }


def in_time_split(df: pd.DataFrame, split: SplitParams, seed: int, why: str = "") -> Split:
    """In time: every labelled row, people drawn at random (stratified by label, a
    person's rows together) into the four slices by the ``in_time_*`` shares.

    Evidence of how well the model ranks people like those it learnt from, not of how it
    holds up later: reports say "in-time".

    Raises:
        KeyError: the date, label or person column is missing.
        SplitError: a slice below the minimum counts.
    """
    labelled, n_unlabelled = _labelled(df)
    dates = sorted({pd.Timestamp(d).date() for d in pd.to_datetime(labelled[DATE])})
    spec = {"method": IN_TIME, "seed": int(seed), "shares": in_time_shares(split)}
    cohorts = {name: list(dates) for name in SLICES}
    slices = {name: select_slice(labelled, cohorts, name, spec) for name in SLICES}
    problems = check_slices(slices, split, IN_TIME)
    if problems:
        raise SplitError(f"in-time split of {len(labelled)} labelled rows: {problems[0]}")
    result = Split(
        **slices,
        cohorts=cohorts,
        n_unlabelled=n_unlabelled,
        method=IN_TIME,
        why=why or "in time (split.method: in_time)",
        spec=spec,
    )
    logger.info("in-time split: %s rows per slice", result.sizes())
    return result


def make_split(df: pd.DataFrame, split: SplitParams, seed: int = 0) -> Split:
    """The split ``split.method`` asks for; ``auto`` = out of time when the data allows
    it, else in time, the reason in :attr:`Split.why`.

    Raises:
        SplitError: the method asked for (or, with ``auto``, every method) is impossible;
            the message names the counts.
    """
    if split.method == OUT_OF_TIME:
        return out_of_time_split(df, split)
    if split.method == IN_TIME:
        return in_time_split(df, split, seed)
    try:
        chosen = out_of_time_split(df, split)
    except SplitError as oot:
        try:
            return in_time_split(
                df,
                split,
                seed,
                why=f"auto: out of time impossible ({oot}); in time instead: the test numbers "
                "are in-time evidence, not out-of-time",
            )
        except SplitError as it:
            raise SplitError(f"no validation possible: {oot}; {it}") from None
    return Split(**{**chosen.__dict__, "why": f"auto: {chosen.why}, the strongest validation"})


def allowed_splits(outcomes: pd.DataFrame, split: SplitParams, seed: int = 0) -> dict[str, Any]:
    """Which splits the labelled outcomes allow, and which ``split.method`` would use.

    Pure: the same rules as :func:`make_split` on the outcomes table (person, observation
    date, label), so the ingest stage can state them in the data-quality report and refuse
    in one line when none is possible (``chosen`` is None, ``why`` names the counts).
    """
    labelled, _ = _labelled(outcomes)
    report: dict[str, Any] = {
        "labelled_rows": len(labelled),
        "defaults": int(labelled[LABEL].astype("float64").sum()),
        "distinct_dates": int(pd.to_datetime(labelled[DATE]).nunique()),
        "period": split.period,
        "periods": int(period_labels(labelled[DATE], split.period).nunique()),
        "method": split.method,
    }
    for name, build in (
        (OUT_OF_TIME, lambda: out_of_time_split(labelled, split)),
        (IN_TIME, lambda: in_time_split(labelled, split, seed)),
    ):
        try:
            s = build()
            report[name] = {"possible": True, "why": s.why, "rows": s.sizes()}
        except SplitError as err:
            report[name] = {"possible": False, "why": str(err)}
    try:
        chosen = make_split(labelled, split, seed)
        report["chosen"], report["why"] = chosen.method, chosen.why
    except SplitError as err:
        report["chosen"], report["why"] = None, str(err)
    return report


def select_slice(
    df: pd.DataFrame,
    cohorts: Mapping[str, Any],
    name: str = "test",
    spec: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The rows of slice ``name``, rebuilt from the split's record.

    The one definition of a slice, so of the held-out test: the split builds its slices
    with it, and the evaluate, robustness and register stages select the test slice with it
    from what training recorded (``models/train_log.json``'s ``cohorts``: the dates of each
    slice plus ``method``, ``group_by_person``, ``seed`` and ``shares``; ``spec`` adds to or
    overrides those keys). ``df`` is any table keyed by person and observation date with the
    label (features, predictions) holding the labelled rows training saw. Rows come in a
    fixed order, by observation date then person, so nothing depends on the file's order.
    A record without ``method`` is an out-of-time split without person grouping.
    ``name`` "development" is the validation and calibration rows together.
    """
    if name == DEVELOPMENT:
        parts = [select_slice(df, cohorts, s, spec) for s in DEVELOPMENT_SLICES]
        return _ordered(pd.concat(parts, ignore_index=True))
    missing = [c for c in (DATE, LABEL) if c not in df.columns]
    if missing:
        raise KeyError(f"table lacks column(s) {missing} needed to select the {name} slice")
    info = {**cohorts, **(spec or {})}
    method = info.get("method") or OUT_OF_TIME
    labelled = df.loc[df[LABEL].notna().to_numpy()]
    when = pd.to_datetime(labelled[DATE])

    def at(dates: Sequence[Any]) -> np.ndarray:
        wanted = pd.to_datetime(pd.Series(list(dates), dtype=object))
        return when.isin(wanted).to_numpy()

    if method == IN_TIME:
        pool_mask = at([d for s in SLICES for d in info.get(s, [])])
        pool = labelled.loc[pool_mask]
        part = pool.loc[in_time_assignment(pool, int(info["seed"]), info["shares"]) == name]
        return _ordered(part)
    part = labelled.loc[at(info[name])]
    if info.get("group_by_person") and name != "test" and PERSON in df.columns:
        test_people = labelled.loc[at(info["test"]), PERSON].astype(str)
        part = part.loc[~part[PERSON].astype(str).isin(set(test_people)).to_numpy()]
    return _ordered(part)
