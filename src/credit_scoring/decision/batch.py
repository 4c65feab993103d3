"""Batch scoring: a feature table in, decisions and rejects out (input = scored + rejected)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from credit_scoring.decision.bundle import CreditModel
from credit_scoring.modelling.train import require_features
from credit_scoring.schemas import ROW_KEY

#: Rows decided per call of :meth:`CreditModel.decide_matrix` in batch scoring.
CHUNK_ROWS = 50_000


def score_features(
    model: CreditModel,
    table: pd.DataFrame,
    with_reasons: bool = True,
    row_offset: int = 0,
    duplicated: np.ndarray | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decide every usable row; rows that cannot be scored go to rejects with the reason.

    A missing feature column is fatal (nothing could be scored); row problems are not:
    a missing person_id, a duplicate key, or a non-numeric or infinite feature value.
    Missing feature values (NaN) are allowed: the model treats them as 'unknown'. The
    usable rows are decided by the bundle, in one call.

    ``table`` may be one part of a larger table (the Dask engine,
    :mod:`credit_scoring.decision.dask_batch`): ``row_offset`` rows come before it and
    ``duplicated`` marks its rows whose key repeats an earlier row of the whole table.
    Rows are decided ``chunk_rows`` at a time (bounded memory for the contributions;
    every decision depends on its own row only), ``progress(done, total)`` after each.

    Raises:
        FeatureInputError: a feature column is missing (a ``ValueError``).
    """
    require_features(table, model.feature_names)
    table = table.reset_index(drop=True)
    reason = pd.Series(pd.NA, index=table.index, dtype="string")
    if "person_id" in table:
        reason[table["person_id"].isna()] = "missing person_id"
        keys = [k for k in ROW_KEY if k in table]
        dup = table.duplicated(subset=keys, keep="first")
        if duplicated is not None:
            dup = pd.Series(np.asarray(duplicated, dtype=bool), index=table.index)
        reason[dup & reason.isna()] = "duplicate " + " + ".join(keys)
    values = table[model.feature_names].apply(pd.to_numeric, errors="coerce")
    bad_type = values.isna() & table[model.feature_names].notna()
    for col in bad_type.columns[bad_type.any()]:
        rows = bad_type[col] & reason.isna()
        reason[rows] = [f"non-numeric {col} {v!r}" for v in table.loc[rows, col]]
    arr = model.feature_matrix(values)
    inf_rows = np.isinf(arr).any(axis=1) & reason.isna().to_numpy()
    for i in np.flatnonzero(inf_rows):
        col = model.feature_names[int(np.flatnonzero(np.isinf(arr[i]))[0])]
        reason[i] = f"infinite {col}"
    ok = reason.isna().to_numpy()
    decided = _decide_in_chunks(model, arr[ok], with_reasons, chunk_rows, progress)
    ids = [c for c in ROW_KEY if c in table]
    decisions = pd.concat([table.loc[ok, ids].reset_index(drop=True), decided], axis=1)
    rejects = table.loc[~ok].assign(reason=reason[~ok]).reset_index(names="source_row")
    rejects["source_row"] += 1 + row_offset
    return decisions, rejects


def _decide_in_chunks(
    model: CreditModel,
    X: np.ndarray,
    with_reasons: bool,
    chunk_rows: int,
    progress: Callable[[int, int | None], None] | None,
) -> pd.DataFrame:
    """:meth:`CreditModel.decide_matrix` over ``chunk_rows`` rows at a time, as one frame."""
    parts = []
    for start in range(0, max(len(X), 1), max(1, chunk_rows)):
        chunk = X[start : start + chunk_rows]
        parts.append(pd.DataFrame(model.decide_matrix(chunk, with_reasons=with_reasons)))
        if progress is not None:
            progress(start + len(chunk), len(X))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
