"""The ``advice`` command (not a DVC stage): how one person can raise their score.

Reads the person's feature row from the feature table, applies every action of the advice
catalogue and scores each with the deployed bundle (:func:`credit_scoring.decision.advice.advise`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.decision.advice import advise
from credit_scoring.decision.bundle import BUNDLE_FILE, CreditModel
from credit_scoring.schemas import DATE, ROW_KEY
from credit_scoring.stages import StageError


def run(
    params: Params,
    person_id: str,
    observation_date: str | None = None,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Advice for ``person_id`` at ``observation_date`` (default: their latest row).

    Returns ``person_id``, ``observation_date`` (YYYY-MM-DD) and ``advice``
    (:class:`~credit_scoring.decision.advice.Advice`). A missing table or bundle, an unknown
    person or date raise :class:`StageError`.
    """
    paths = Paths.from_params(params)
    source = paths.features
    model_dir = model_dir or paths.bundle
    if not source.is_file():
        raise StageError(f"{source}: no such file (run `dvc repro` first)")
    if not (model_dir / BUNDLE_FILE).is_file():
        raise StageError(f"{model_dir}: no model bundle (run `dvc repro` first)")
    rows = pd.read_parquet(source, filters=[(ROW_KEY[0], "==", person_id)])
    if rows.empty:
        raise StageError(f"{source}: no person {person_id!r}")
    dates = sorted(rows[DATE].unique())
    if observation_date is None:
        when = dates[-1]
    else:
        try:
            when = pd.Timestamp(observation_date)
        except ValueError:
            raise StageError(
                f"--observation-date: {observation_date!r} is not a date (YYYY-MM-DD)"
            ) from None
        if when not in set(dates):
            shown = ", ".join(f"{pd.Timestamp(d):%Y-%m-%d}" for d in dates)
            raise StageError(
                f"{source}: person {person_id!r} has no row at {when:%Y-%m-%d} (dates: {shown})"
            )
    row = rows[rows[DATE] == when].head(1)
    model = CreditModel.load(model_dir)
    return {
        "person_id": person_id,
        "observation_date": f"{pd.Timestamp(when):%Y-%m-%d}",
        "advice": advise(model, row, params.advice)[0],
    }
