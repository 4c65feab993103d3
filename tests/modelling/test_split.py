"""Out-of-time split: whole cohorts, time-ordered, disjoint; unlabelled rows left out."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import SplitParams
from credit_scoring.modelling.split import (
    SLICES,
    SplitError,
    allowed_splits,
    make_split,
    out_of_time_split,
    select_slice,
)

DATES = [dt.date(2024, m, 1) for m in (1, 3, 5, 7, 9, 11)]
#: The tiny table's split: every person is in every cohort (so no grouping) and slices
#: hold 8 rows (so no minimum counts).
OOT = SplitParams(method="out_of_time", group_by_person=False, min_rows=1, min_defaults=1)


def _table(dates=DATES, people: int = 10, unlabelled_per_cohort: int = 2) -> pd.DataFrame:
    """people × dates rows, shuffled; the first ``unlabelled_per_cohort`` per date lack a label."""
    rows = []
    for d in dates:
        for i in range(people):
            label = pd.NA if i < unlabelled_per_cohort else i % 2
            rows.append({"person_id": f"p{i:03d}", "observation_date": d, "default_12m": label})
    df = pd.DataFrame(rows)
    df["observation_date"] = pd.to_datetime(df["observation_date"])
    df["default_12m"] = df["default_12m"].astype("Int64")
    df["x"] = np.arange(len(df), dtype=np.float64)
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _keys(df: pd.DataFrame) -> set[tuple[str, pd.Timestamp]]:
    return set(zip(df["person_id"], df["observation_date"], strict=True))


def test_newest_cohorts_go_to_test_then_calibration_then_validation():
    split = out_of_time_split(_table(), OOT)
    assert split.cohorts == {
        "train": DATES[:3],
        "validation": [DATES[3]],
        "calibration": [DATES[4]],
        "test": [DATES[5]],
    }, "cohorts must be assigned newest-first: test, calibration, validation, rest train"
    assert split.sizes() == {"train": 24, "validation": 8, "calibration": 8, "test": 8}


def test_slices_are_disjoint_time_ordered_and_test_never_leaks_into_train():
    split = out_of_time_split(_table(), OOT.model_copy(update={"validation_cohorts": 2}))
    parts = [split.train, split.validation, split.calibration, split.test]
    for older, newer in itertools.pairwise(parts):
        assert older["observation_date"].max() < newer["observation_date"].min(), (
            "every slice must lie strictly before the next one in time"
        )
    keys = [_keys(p) for p in parts]
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not keys[i] & keys[j], f"slices {i} and {j} share a person-date"
    assert not set(split.test["observation_date"]) & set(split.train["observation_date"]), (
        "no test cohort date may appear in train"
    )


def test_unlabelled_rows_are_excluded_and_counted():
    split = out_of_time_split(_table(), OOT)
    for name in ("train", "validation", "calibration", "test"):
        part = getattr(split, name)
        assert part["default_12m"].notna().all(), f"{name} contains rows without a label"
    assert split.n_unlabelled == 2 * len(DATES)


def test_a_newest_cohort_without_any_outcome_is_not_a_test_cohort():
    """Cohorts whose outcome window is still open (all labels missing) are only for scoring."""
    df = _table()
    newest = df["observation_date"] == pd.Timestamp(DATES[-1])
    df.loc[newest, "default_12m"] = pd.NA
    split = out_of_time_split(df, OOT)
    assert split.cohorts["test"] == [DATES[-2]], "the test cohort must be the newest labelled one"
    assert split.n_unlabelled == 2 * (len(DATES) - 1) + 10


def test_slices_have_a_fixed_row_order_whatever_the_input_order():
    """Sorted by date and person, so training does not depend on the file's row order."""
    a = out_of_time_split(_table(), OOT)
    b = out_of_time_split(_table().iloc[::-1], OOT)
    pd.testing.assert_frame_equal(a.train, b.train)


def test_too_few_cohorts_fails_with_a_message_saying_how_many_are_needed():
    df = _table(dates=DATES[:3])
    with pytest.raises(ValueError, match=r"at least 4 labelled cohorts.*got 3"):
        out_of_time_split(df, OOT)


def test_missing_label_column_fails_naming_it():
    with pytest.raises(KeyError, match="default_12m"):
        out_of_time_split(_table().drop(columns="default_12m"), OOT)


# --- splits that fit real data (issue #12) -------------------------------------------


def _people(dates, n: int, rate: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct people, each observed once at a date drawn from ``dates``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person_id": [f"q{i:05d}" for i in range(n)],
            "observation_date": pd.to_datetime(rng.choice(np.asarray(dates), n)),
            "default_12m": pd.array(rng.binomial(1, rate, n), dtype="Int64"),
        }
    )


def test_cohorts_are_calendar_periods_not_distinct_dates():
    """A ledger: 400 loans on ~300 distinct days over 5 years. By year there are 5
    cohorts, so the test is the newest year, not the newest day."""
    days = pd.date_range("2019-01-01", "2023-12-31", freq="D")[::6]
    df = _people(days, 400)
    split = out_of_time_split(df, SplitParams(period="year"))
    assert {d.year for d in split.cohorts["test"]} == {2023}, "test must be the newest year"
    assert {d.year for d in split.cohorts["train"]} == {2019, 2020}
    assert split.sizes()["test"] > 50, "a whole year is tested, not one day"
    with pytest.raises(SplitError, match=r"validation \d rows"):
        out_of_time_split(df, SplitParams(period="date"))


def test_explicit_cutoffs_choose_the_slices():
    df = _people([dt.date(2024, m, 1) for m in range(1, 13)], 600)
    cut = [dt.date(2024, 7, 1), dt.date(2024, 9, 1), dt.date(2024, 11, 1)]
    split = out_of_time_split(df, SplitParams(cutoffs=cut))
    assert max(split.cohorts["train"]) < cut[0] <= min(split.cohorts["validation"])
    assert max(split.cohorts["calibration"]) < cut[2] <= min(split.cohorts["test"])
    assert split.cohorts["test"] == [dt.date(2024, 11, 1), dt.date(2024, 12, 1)]


def test_gap_keeps_training_outcomes_out_of_the_test_window():
    """gap_months=3: nothing observed in the 3 months before the test window is used."""
    df = _people([dt.date(2024, m, 1) for m in range(1, 13)], 1200)
    split = out_of_time_split(df, SplitParams(gap_months=3))
    test_start = min(split.cohorts["test"])
    assert test_start == dt.date(2024, 12, 1)
    latest_used = max(d for s in ("train", "validation", "calibration") for d in split.cohorts[s])
    assert latest_used < dt.date(2024, 9, 1), "rows inside the gap must not be used"
    assert split.n_excluded == int((df["observation_date"] >= "2024-09-01").sum()) - len(split.test)


def test_a_person_is_never_in_both_training_and_test():
    """300 people, each at about half of six months: grouping drops test people from the
    earlier slices (on by default); off, they would be in both."""
    full = _table(dates=[dt.date(2024, m, 1) for m in range(1, 7)], people=300)
    rows = full.sample(frac=0.5, random_state=3)
    grouped = out_of_time_split(rows, SplitParams(min_rows=1, min_defaults=1))
    tested = set(grouped.test["person_id"])
    for name in ("train", "validation", "calibration"):
        assert not tested & set(getattr(grouped, name)["person_id"]), f"{name} shares people"
    loose = out_of_time_split(rows, OOT)
    assert tested & set(loose.train["person_id"]), "without grouping the check would fail"


def test_one_snapshot_gets_an_in_time_split_stratified_and_grouped_labelled_in_time():
    df = _people([dt.date(2024, 6, 30)], 1000, rate=0.1)
    split = make_split(df, SplitParams(), seed=7)
    assert split.method == "in_time" and split.evidence == "in-time"
    assert "out of time impossible" in split.why and "got 1" in split.why
    rates = {n: getattr(split, n)["default_12m"].mean() for n in SLICES}
    assert max(rates.values()) - min(rates.values()) < 0.01, f"not stratified: {rates}"
    seen = [set(getattr(split, n)["person_id"]) for n in SLICES]
    assert sum(len(s) for s in seen) == len(set().union(*seen)) == 1000, "slices share people"
    # the slice is rebuilt from the record, whatever the row order of the table read
    record = split.selector()
    again = select_slice(df.sample(frac=1.0, random_state=1), record, "test")
    pd.testing.assert_frame_equal(again, split.test)


def test_auto_prefers_out_of_time_when_the_data_allows_it():
    df = _people([dt.date(2024, m, 1) for m in range(1, 9)], 2000)
    split = make_split(df, SplitParams())
    assert split.method == "out_of_time" and "strongest" in split.why


def test_too_little_data_fails_in_one_line_naming_the_counts():
    df = _people([dt.date(2024, 6, 30)], 60)
    with pytest.raises(SplitError) as err:
        make_split(df, SplitParams())
    msg = str(err.value)
    assert "\n" not in msg and "got 1" in msg and "test 12 rows" in msg, msg


def test_allowed_splits_reports_what_the_outcomes_support():
    snapshot = _people([dt.date(2024, 6, 30)], 1000)
    report = allowed_splits(snapshot, SplitParams())
    assert report["out_of_time"]["possible"] is False
    assert report["in_time"]["possible"] is True and report["chosen"] == "in_time"
    tiny = allowed_splits(snapshot.head(40), SplitParams())
    assert tiny["chosen"] is None and "too small" in tiny["why"]


def test_nothing_assumes_a_twelve_month_horizon():
    """The split reads only the label column's values: a one-month horizon with monthly
    outcomes splits the same way (the gap is the user's, in months)."""
    df = _people([dt.date(2024, m, 1) for m in range(1, 7)], 1000)
    split = out_of_time_split(df, SplitParams(gap_months=1))
    assert min(split.cohorts["test"]) == dt.date(2024, 6, 1)
    assert max(split.cohorts["calibration"]) == dt.date(2024, 4, 1)
