"""The refit's pure pieces: which rows it learns from, how many rounds, the record of the
rows each model was fit on, and the agreement check that refuses a divergent refit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import Params
from credit_scoring.modelling import refit as rf
from credit_scoring.modelling.split import SLICES, out_of_time_split
from credit_scoring.schemas import DATE, LABEL


@pytest.fixture(scope="module")
def split(small_world):
    _, _, table = small_world
    return out_of_time_split(table, Params().split)


def test_refit_split_uses_every_labelled_row_of_the_split(split):
    """Booster rows = train + validation + calibration, calibrator rows = the test cohort:
    together exactly the rows the split holds, every labelled cohort represented."""
    data = rf.refit_split(split)
    sizes = split.sizes()
    assert len(data.train) == sizes["train"] + sizes["validation"] + sizes["calibration"]
    assert len(data.calibration) == sizes["test"] and len(data.test) == 0
    assert len(data.train) + len(data.calibration) == sum(sizes.values())
    all_dates = {d for s in SLICES for d in split.cohorts[s]}
    seen = set(pd.to_datetime(data.train[DATE]).dt.date) | set(
        pd.to_datetime(data.calibration[DATE]).dt.date
    )
    assert seen == all_dates, "a labelled cohort is missing from the refit"
    assert set(pd.to_datetime(data.train[DATE]).dt.date).isdisjoint(
        pd.to_datetime(data.calibration[DATE]).dt.date
    ), "the calibrator must be fit on rows the booster never saw"


def test_refit_rounds_scale_with_rows_and_respect_the_cap():
    """rows_ratio: best iteration x refit rows / train rows, capped; unchanged keeps it."""
    assert rf.refit_rounds(100, 1000, 1500, "rows_ratio", 2000) == 150
    assert rf.refit_rounds(100, 1000, 1500, "unchanged", 2000) == 100
    assert rf.refit_rounds(1500, 1000, 3000, "rows_ratio", 2000) == 2000
    with pytest.raises(ValueError, match="rows_ratio or unchanged"):
        rf.refit_rounds(100, 1000, 1500, "double", 2000)


def test_fit_records_name_the_rows_each_model_saw(split):
    """The validated record leaves out the test cohort's dates and fingerprints it; the
    refit's covers every labelled date and holds nothing out."""
    validated = rf.fit_record(split, "validated")
    refit = rf.fit_record(split, "refit")
    test_dates = {str(d) for d in split.cohorts["test"]}
    assert test_dates.isdisjoint(validated["dates"])
    assert validated["heldout_test"] == rf.rows_fingerprint(split.test)
    assert refit["heldout_test"] is None and test_dates <= set(refit["dates"])
    assert sum(refit["rows"].values()) == sum(split.sizes().values())
    shuffled = split.test.sample(frac=1.0, random_state=1)
    assert rf.rows_fingerprint(shuffled) == validated["heldout_test"], "order must not matter"
    assert rf.rows_fingerprint(split.test.iloc[1:]) != validated["heldout_test"]


def test_a_refit_that_ranks_people_differently_is_refused_in_one_line():
    """Spearman of the two models' test-cohort margins below the minimum: RefitError."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=500)
    assert rf.rank_agreement(m, 2 * m + 1) == pytest.approx(1.0)
    rf.check_agreement(rf.rank_agreement(m, m + rng.normal(0, 0.1, 500)), 0.8, 500)
    rho = rf.rank_agreement(m, rng.normal(size=500))
    with pytest.raises(rf.RefitError, match="refit_min_correlation") as err:
        rf.check_agreement(rho, 0.8, 500)
    assert "\n" not in str(err.value)


def test_development_slice_is_validation_and_calibration_never_test(split, small_world):
    """select_slice(..., "development") = the validation and calibration rows, none of
    the test cohort's."""
    from credit_scoring.modelling.split import select_slice

    _, _, table = small_world
    dev = select_slice(table, split.selector(), "development")
    assert len(dev) == len(split.validation) + len(split.calibration)
    keys = ["person_id", DATE]
    test_keys = set(map(tuple, split.test[keys].astype(str).to_numpy()))
    assert test_keys.isdisjoint(map(tuple, dev[keys].astype(str).to_numpy()))
    assert dev[LABEL].notna().all()
