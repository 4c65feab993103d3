"""Out-of-time split of the feature table by observation date (cohort).

Credit models are used on people scored *after* the data they were trained on, so they are
validated the same way: the oldest cohorts train the model, the next ones stop the boosting
(validation), the next ones fit the calibration, and the newest are the untouched test.
A random split would leak the future (macro drift, product changes) into training and
flatter the test numbers.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from credit_scoring.config import SplitParams
from credit_scoring.schemas import DATE, LABEL, ROW_KEY

logger = logging.getLogger(__name__)

SLICES: tuple[str, ...] = ("train", "validation", "calibration", "test")
PERSON = ROW_KEY[0]


@dataclass(frozen=True)
class Split:
    """The four time-ordered, disjoint slices and the cohort dates in each.

    ``n_unlabelled`` counts rows left out because their 12-month outcome is not known yet
    (people to be scored, not to learn from).
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame
    cohorts: dict[str, list[dt.date]]
    n_unlabelled: int = field(default=0)

    def sizes(self) -> dict[str, int]:
        """Rows per slice, for logs and reports."""
        return {name: len(getattr(self, name)) for name in SLICES}


def out_of_time_split(df: pd.DataFrame, split: SplitParams) -> Split:
    """Assign whole cohorts, newest first, to test, calibration, validation; the rest train.

    Only rows with a known ``default_12m`` take part, and cohorts are counted among those
    rows: the newest observation dates usually have no outcome yet and must not become an
    empty "test" cohort.

    Raises:
        KeyError: ``observation_date`` or ``default_12m`` is missing.
        ValueError: fewer labelled cohorts than test + calibration + validation + 1 train.
    """
    missing = [c for c in (DATE, LABEL) if c not in df.columns]
    if missing:
        raise KeyError(f"feature table lacks column(s) {missing} needed for the split")

    labelled_mask = df[LABEL].notna().to_numpy()
    n_unlabelled = int((~labelled_mask).sum())
    labelled = df.loc[labelled_mask]
    dates = pd.to_datetime(labelled[DATE])
    cohorts = sorted(dates.unique())  # oldest first

    n_test, n_cal, n_val = split.test_cohorts, split.calibration_cohorts, split.validation_cohorts
    needed = n_test + n_cal + n_val + 1
    if len(cohorts) < needed:
        raise ValueError(
            f"out-of-time split needs at least {needed} labelled cohorts (observation dates): "
            f"{n_test} test + {n_cal} calibration + {n_val} validation + at least 1 train; "
            f"got {len(cohorts)}: {[pd.Timestamp(d).date().isoformat() for d in cohorts]}"
        )

    n_train = len(cohorts) - n_test - n_cal - n_val
    bounds = {
        "train": cohorts[:n_train],
        "validation": cohorts[n_train : n_train + n_val],
        "calibration": cohorts[n_train + n_val : n_train + n_val + n_cal],
        "test": cohorts[n_train + n_val + n_cal :],
    }

    result = Split(
        **{name: select_slice(labelled, bounds, name) for name in SLICES},
        cohorts={name: [pd.Timestamp(d).date() for d in ds] for name, ds in bounds.items()},
        n_unlabelled=n_unlabelled,
    )
    logger.info(
        "out-of-time split: %s rows per slice, %d unlabelled rows excluded",
        result.sizes(),
        n_unlabelled,
    )
    return result


def select_slice(
    df: pd.DataFrame, cohorts: Mapping[str, Sequence[dt.date | str]], name: str = "test"
) -> pd.DataFrame:
    """The rows of slice ``name``: labelled rows observed at one of ``cohorts[name]``.

    The one definition of a slice, so of the out-of-time test cohort: the split builds its
    slices with it, and the evaluate, robustness and register stages select the test cohort
    with it from the cohorts training recorded (``models/train_log.json``). ``df`` is any
    table keyed by person and observation date with the label (features, predictions).
    Rows come in a fixed order, by observation date then person, so that nothing depends on
    how the input file was ordered.
    """
    missing = [c for c in (DATE, LABEL) if c not in df.columns]
    if missing:
        raise KeyError(f"table lacks column(s) {missing} needed to select the {name} slice")
    dates = pd.to_datetime(pd.Series(list(cohorts[name]), dtype=object))
    labelled = df.loc[df[LABEL].notna().to_numpy()]
    part = labelled.loc[pd.to_datetime(labelled[DATE]).isin(dates).to_numpy()]
    sort_cols = [DATE, PERSON] if PERSON in df.columns else [DATE]
    return part.sort_values(sort_cols, kind="stable").reset_index(drop=True)
