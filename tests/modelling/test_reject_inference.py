"""Reject-inference methods and the through-the-door metrics (modelling/reject_inference.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from credit_scoring.modelling import reject_inference as ri
from credit_scoring.modelling.metrics import auc
from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import WEIGHT
from credit_scoring.schemas import DATE, DECISION, LABEL

DATES = {
    n: [dt.date(2024, m, 1)] for n, m in zip((*ri.FIT_SLICES, "test"), (1, 3, 5, 7), strict=True)
}
NAMES = ["x1", "x2"]


def _rows(n: int, when: dt.date, rng, labelled: bool, shift: float = 0.0) -> pd.DataFrame:
    prefix = "A" if labelled else "D"
    x1 = rng.normal(shift, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x1 - 2)))).astype(int)
    return pd.DataFrame(
        {
            "person_id": [f"{prefix}{when:%m}{i:05d}" for i in range(n)],
            DATE: pd.Timestamp(when),
            "x1": x1,
            "x2": rng.normal(0, 1, n),
            LABEL: pd.array(y if labelled else [None] * n, dtype="Int64"),
        }
    )


@pytest.fixture(scope="module")
def world():
    """Approved rows (low x1) labelled in four slices; declined rows (high x1) unlabelled."""
    rng = np.random.default_rng(0)
    slices = {n: _rows(800, d[0], rng, True) for n, d in DATES.items()}
    declined = pd.concat(
        [_rows(300, d[0], rng, False, shift=1.5) for n, d in DATES.items()], ignore_index=True
    )
    split = Split(**slices, cohorts=DATES)
    return split, declined


def test_declined_rows_are_the_unlabelled_declined_applicants(world):
    """Only rows whose decision is declined (or grey_declined) and that have no label."""
    split, declined = world
    table = pd.concat([split.train, declined], ignore_index=True)
    outcomes = table[["person_id", DATE]].assign(
        **{DECISION: ["approved"] * len(split.train) + ["grey_declined"] * len(declined)}
    )
    got = ri.declined_rows(table, outcomes)
    assert len(got) == len(declined)
    assert ri.declined_rows(table, None).empty
    assert ri.declined_rows(table, outcomes.drop(columns=[DECISION])).empty


def test_none_and_no_declined_change_nothing(world):
    """``none`` (and any method without declined rows: the default world) returns the split
    as it was."""
    split, declined = world
    same, report = ri.infer(split, declined, "none", NAMES, 0)
    assert same is split and report["method"] == "none"
    same, report = ri.infer(split, declined.iloc[:0], "reweight", NAMES, 0)
    assert same is split and "no declined" in report["note"]
    with pytest.raises(ValueError, match="reject_inference"):
        ri.infer(split, declined, "magic", NAMES, 0)


def test_reweight_weights_approved_rows_like_the_declined(world):
    """Approved rows that look like the declined (high x1) weigh more; weights sum to the
    slice's applicants; calibration is resampled to that many rows; test is untouched."""
    split, declined = world
    new, report = ri.infer(split, declined, "reweight", NAMES, 0)
    w, x1 = new.train[WEIGHT].to_numpy(), new.train["x1"].to_numpy()
    assert np.corrcoef(w, x1)[0, 1] > 0.3
    assert w.sum() == pytest.approx(len(split.train) + report["declined_by_slice"]["train"])
    assert (
        len(new.calibration) == len(split.calibration) + report["declined_by_slice"]["calibration"]
    )
    assert WEIGHT not in new.calibration.columns
    assert new.test is split.test
    assert new.calibration["x1"].mean() > split.calibration["x1"].mean()


def test_augment_adds_each_declined_row_twice_with_pd_weights(world):
    """Fuzzy augmentation: every declined row as a default weighing PD and a non-default
    weighing 1 - PD; approved rows weigh 1."""
    split, declined = world
    pd_fn = lambda df: np.full(len(df), 0.2)  # noqa: E731
    new, report = ri.infer(split, declined, "augment", NAMES, 0, pd_fn)
    n_dec = report["declined_by_slice"]["train"]
    assert len(new.train) == len(split.train) + 2 * n_dec
    extra = new.train.iloc[len(split.train) :]
    assert extra.loc[extra[LABEL] == 1, WEIGHT].eq(0.2).all()
    assert extra.loc[extra[LABEL] == 0, WEIGHT].eq(0.8).all()
    assert new.train.iloc[: len(split.train)][WEIGHT].eq(1.0).all()
    with pytest.raises(ValueError, match="approved-only"):
        ri.infer(split, declined, "augment", NAMES, 0)


def test_parcel_draws_labels_at_the_band_default_rate(world):
    """Parcelling: declined rows get drawn labels at their PD band's observed default rate."""
    split, declined = world
    pd_fn = lambda df: 1 / (1 + np.exp(-(df["x1"].to_numpy() - 2)))  # noqa: E731
    new, report = ri.infer(split, declined, "parcel", NAMES, 0, pd_fn)
    extra = new.train.iloc[len(split.train) :]
    assert len(extra) == report["declined_by_slice"]["train"]
    assert extra[LABEL].notna().all()
    # declined sit in the riskier bands: their drawn default rate exceeds the approved one
    assert extra[LABEL].mean() > split.train[LABEL].mean()


def test_realise_reproduces_weights_in_expectation():
    """Systematic resampling: a row weighing 3 appears about 3 times as often as one of 1."""
    frame = pd.DataFrame({"k": np.arange(1000) % 2})
    w = np.where(frame["k"] == 1, 3.0, 1.0)
    out = ri.realise(frame, w, 4000, 0)
    assert len(out) == 4000
    assert out["k"].mean() == pytest.approx(0.75, abs=0.01)


def test_expected_auc_equals_auc_for_certain_outcomes():
    """With true PD 0/1 the expected AUC is the ordinary AUC; a constant score gives 0.5."""
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(float)
    s = rng.normal(size=500) + y
    assert ri.expected_auc(y, s) == pytest.approx(auc(y, 1 / (1 + np.exp(-s))))
    assert ri.expected_auc(rng.uniform(0, 1, 500), np.zeros(500)) == pytest.approx(0.5)


def test_through_the_door_groups_and_expected_loss():
    """Groups by historical decision; the expected loss is true PD x LGD x limit."""
    p = np.array([0.01, 0.02, 0.05, 0.10])
    tp = np.array([0.01, 0.03, 0.20, 0.30])
    limit = np.array([1000.0, 1000.0, 2000.0, 0.0])
    decision = np.array(["approved", "grey_approved", "declined", "grey_declined"])
    out = ri.through_the_door(p, tp, limit, decision, lgd=0.5, n_bins=2)
    assert out["previously_declined"]["n"] == 2
    assert out["previously_declined"]["expected_loss_true"] == pytest.approx(0.2 * 0.5 * 1000)
    assert out["previously_declined"]["pd_bias"] == pytest.approx(0.075 - 0.25)
    assert out["previously_approved"]["approval_rate"] == 1.0
    assert out["all"]["n"] == 4
    grey = ri.grey_zone_check(np.array([0.1, 0.1]), np.array([0.0, 1.0]))
    assert (
        grey["default_rate"] == 0.5
        and grey["default_rate_ci"][0] < 0.5 < grey["default_rate_ci"][1]
    )
