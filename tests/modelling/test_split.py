"""Out-of-time split: whole cohorts, time-ordered, disjoint; unlabelled rows left out."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import SplitParams
from credit_scoring.modelling.split import out_of_time_split

DATES = [dt.date(2024, m, 1) for m in (1, 3, 5, 7, 9, 11)]


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
    split = out_of_time_split(_table(), SplitParams())
    assert split.cohorts == {
        "train": DATES[:3],
        "validation": [DATES[3]],
        "calibration": [DATES[4]],
        "test": [DATES[5]],
    }, "cohorts must be assigned newest-first: test, calibration, validation, rest train"
    assert split.sizes() == {"train": 24, "validation": 8, "calibration": 8, "test": 8}


def test_slices_are_disjoint_time_ordered_and_test_never_leaks_into_train():
    split = out_of_time_split(_table(), SplitParams(validation_cohorts=2))
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
    split = out_of_time_split(_table(), SplitParams())
    for name in ("train", "validation", "calibration", "test"):
        part = getattr(split, name)
        assert part["default_12m"].notna().all(), f"{name} contains rows without a label"
    assert split.n_unlabelled == 2 * len(DATES)


def test_a_newest_cohort_without_any_outcome_is_not_a_test_cohort():
    """Cohorts whose outcome window is still open (all labels missing) are only for scoring."""
    df = _table()
    newest = df["observation_date"] == pd.Timestamp(DATES[-1])
    df.loc[newest, "default_12m"] = pd.NA
    split = out_of_time_split(df, SplitParams())
    assert split.cohorts["test"] == [DATES[-2]], "the test cohort must be the newest labelled one"
    assert split.n_unlabelled == 2 * (len(DATES) - 1) + 10


def test_slices_have_a_fixed_row_order_whatever_the_input_order():
    """Sorted by date and person, so training does not depend on the file's row order."""
    a = out_of_time_split(_table(), SplitParams())
    b = out_of_time_split(_table().iloc[::-1], SplitParams())
    pd.testing.assert_frame_equal(a.train, b.train)


def test_too_few_cohorts_fails_with_a_message_saying_how_many_are_needed():
    df = _table(dates=DATES[:3])
    with pytest.raises(ValueError, match=r"at least 4 labelled cohorts.*got 3"):
        out_of_time_split(df, SplitParams())


def test_missing_label_column_fails_naming_it():
    with pytest.raises(KeyError, match="default_12m"):
        out_of_time_split(_table().drop(columns="default_12m"), SplitParams())
