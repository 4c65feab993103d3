"""The gate compares a model only on rows it was never fit on (``unseen_rows``)."""

from __future__ import annotations

import pandas as pd

from credit_scoring.audit.gate import legacy_fit_record, unseen_rows
from credit_scoring.modelling.refit import rows_fingerprint


def _rows(dates: list[str], people: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"person_id": f"p{i}", "observation_date": pd.Timestamp(d), "default_12m": i % 2}
            for d in dates
            for i in range(people)
        ]
    )


def test_rows_at_dates_a_model_was_fit_on_are_never_compared():
    """A refit fit on every date of the cohort leaves no row; a model fit on older dates
    leaves the newer ones only."""
    test = _rows(["2024-01-01", "2024-02-01"])
    refit = {"dates": ["2023-12-01", "2024-01-01", "2024-02-01"], "heldout_test": None}
    assert not unseen_rows(test, refit).any()
    older = {"dates": ["2023-12-01", "2024-01-01"], "heldout_test": None}
    mask = unseen_rows(test, older)
    assert (test.loc[mask, "observation_date"] == pd.Timestamp("2024-02-01")).all()
    assert mask.sum() == 3


def test_exactly_the_held_out_test_cohort_is_fair_even_on_a_fitted_date():
    """In time (one snapshot) the model's dates include the test date; the rows it held
    out, recognised by fingerprint, are still fair, and one row more is not."""
    test = _rows(["2024-01-01"])
    fit = {"dates": ["2024-01-01"], "heldout_test": rows_fingerprint(test)}
    assert unseen_rows(test, fit).all()
    bigger = pd.concat([test, _rows(["2024-01-01"], people=4).tail(1)], ignore_index=True)
    assert not unseen_rows(bigger, fit).any()


def test_a_model_without_a_fit_record_is_trusted_with_no_row():
    """No record: nothing can be shown unseen. Older bundles: their split's cohorts."""
    test = _rows(["2024-02-01"])
    assert not unseen_rows(test, None).any()
    legacy = legacy_fit_record(
        {
            "cohorts": {
                "train": ["2023-11-01"],
                "calibration": ["2024-01-01"],
                "test": ["2024-02-01"],
            }
        }
    )
    assert legacy["dates"] == ["2023-11-01", "2024-01-01"]
    assert unseen_rows(test, legacy).all()
