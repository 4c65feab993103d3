"""Selection bias through the door: fit a model under a reject-inference method and measure
it on every applicant of the test period, previously declined ones included.

The methods live in :mod:`credit_scoring.modelling.reject_inference`; this module joins
them to the deployable model (:class:`~credit_scoring.decision.bundle.CreditModel`) and
its limit policy, for the train and evaluate stages and the benchmark
(``benchmarks/bench_reject_inference.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.decision.bundle import CreditModel
from credit_scoring.modelling import reject_inference as ri
from credit_scoring.modelling.split import Split
from credit_scoring.schemas import DATE, DECISION, LABEL, ROW_KEY

KEYS = list(ROW_KEY)


def fit_with_method(
    new_model: Callable[[], CreditModel],
    split: Split,
    declined: pd.DataFrame,
    method: str,
    seed: int,
    fit: Callable[[CreditModel, Split], CreditModel] | None = None,
    approved_only: CreditModel | None = None,
) -> tuple[CreditModel, dict[str, Any]]:
    """A model fitted under ``method`` and the method's report.

    ``new_model()`` makes an unfitted model with the run's settings; ``fit(model, split)``
    fits it (default ``model.fit(split)``); ``approved_only`` reuses an approved-only model
    for the declined people's PD (``augment``, ``parcel``) instead of fitting one.
    """
    fit = fit or (lambda m, s: m.fit(s))
    approved_pd = None
    if method in ("augment", "parcel") and not declined.empty:
        base = approved_only if approved_only is not None else fit(new_model(), split)
        approved_pd = base.predict_pd
    model = new_model()
    fit_split, report = ri.infer(split, declined, method, model.feature_names, seed, approved_pd)
    return fit(model, fit_split), report


def period_applicants(
    features: pd.DataFrame, truth: pd.DataFrame, split: Split | Sequence[Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every applicant observed at a test date (declined ones too) and their truth rows,
    in the same order; ``split``: the split or its test dates."""
    test_dates = split.cohorts["test"] if isinstance(split, Split) else split
    dates = {pd.Timestamp(str(d)) for d in test_dates}
    rows = features.loc[pd.to_datetime(features[DATE]).isin(dates)].reset_index(drop=True)
    joined = rows[KEYS].merge(truth, on=KEYS, how="left")
    return rows, joined


def evaluate_through_door(
    model: CreditModel,
    applicants: pd.DataFrame,
    truth: pd.DataFrame,
    lgd: float,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Through-the-door metrics of ``model`` (``ri.through_the_door``) and the grey-zone
    check against observed outcomes (``ri.grey_zone_check``) where a grey zone exists."""
    decisions = model.decide(applicants, with_reasons=False)
    p = decisions["pd"].to_numpy(dtype=np.float64)
    decision = truth[DECISION].astype("string").to_numpy()
    out = ri.through_the_door(
        p,
        truth["true_pd"].to_numpy(dtype=np.float64),
        decisions["credit_limit"].to_numpy(dtype=np.float64),
        decision,
        lgd,
        n_bins,
    )
    grey = (decision == "grey_approved") & applicants[LABEL].notna().to_numpy()
    out["grey_zone"] = ri.grey_zone_check(
        p[grey], applicants.loc[grey, LABEL].to_numpy(dtype=np.float64)
    )
    return out


def evaluation_block(
    model: CreditModel,
    features: pd.DataFrame,
    truth: pd.DataFrame,
    test_dates: Sequence[Any],
    inference: dict[str, Any] | None,
    lgd: float,
    n_bins: int = 10,
) -> dict[str, Any] | None:
    """``metrics.json``'s ``reject_inference`` section: the method training used (its
    report) and the model through the door on the test dates; None without a historical
    policy in the truth (the default world)."""
    if DECISION not in truth.columns or not truth[DECISION].notna().any():
        return None
    applicants, joined = period_applicants(features, truth, test_dates)
    if applicants.empty or joined["true_pd"].isna().any():
        return None
    return {
        "method": (inference or {}).get("method", "none"),
        "training": inference or {},
        "through_the_door": evaluate_through_door(model, applicants, joined, lgd, n_bins),
    }
