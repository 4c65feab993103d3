"""Batch scoring keeps every row: scored + rejected = input, with a reason per reject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision.batch import score_features
from credit_scoring.decision.bundle import FeatureInputError


def test_bad_rows_are_rejected_with_reasons_and_nothing_is_lost(small_model, small_world):
    table = small_world[2].head(200).copy().reset_index(drop=True)
    name = small_model.feature_names[0]
    table[name] = table[name].astype(object)
    table.loc[3, name] = "lots"
    table.loc[5, small_model.feature_names[1]] = np.inf
    table.loc[8, "person_id"] = None
    table.loc[9] = table.loc[10]  # duplicate key
    decisions, rejects = score_features(small_model, table, with_reasons=False)
    assert len(decisions) + len(rejects) == len(table)
    reasons = dict(zip(rejects["source_row"], rejects["reason"], strict=True))
    assert reasons[4].startswith(f"non-numeric {name}")
    assert reasons[6].startswith("infinite")
    assert reasons[9] == "missing person_id"
    assert reasons[11].startswith("duplicate")


def test_a_missing_feature_column_stops_scoring(small_model, small_world):
    table = small_world[2].head(5).drop(columns=[small_model.feature_names[0]])
    name = small_model.feature_names[0]
    with pytest.raises(FeatureInputError, match=rf"missing 1 feature column\(s\): {name}$"):
        score_features(small_model, table)


def test_scored_rows_are_the_bundles_decisions_next_to_their_keys(small_model, small_world):
    """Batch scoring decides only through the bundle: its rows are CreditModel.decide's."""
    table = small_world[2].sample(300, random_state=4).reset_index(drop=True)
    table.loc[[2, 50], small_model.feature_names[2]] = np.inf
    decisions, rejects = score_features(small_model, table, with_reasons=True)
    assert rejects["source_row"].tolist() == [3, 51]
    kept = table.drop(index=[2, 50]).reset_index(drop=True)
    want = small_model.decide(kept, with_reasons=True)
    pd.testing.assert_frame_equal(decisions.drop(columns=["person_id", "observation_date"]), want)
    pd.testing.assert_frame_equal(
        decisions[["person_id", "observation_date"]], kept[["person_id", "observation_date"]]
    )


def test_deciding_in_chunks_gives_the_one_call_decisions_and_reports_progress(
    small_model, small_world
):
    """Batch scoring decides ``chunk_rows`` rows at a time (bounded memory, a progress bar):
    the decisions, reasons included, equal one call over the whole table."""
    table = small_world[2].head(700).reset_index(drop=True)
    whole, _ = score_features(small_model, table, with_reasons=True)
    seen: list[tuple[int, int | None]] = []
    chunked, _ = score_features(
        small_model, table, with_reasons=True, chunk_rows=128,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    pd.testing.assert_frame_equal(chunked, whole)
    assert [d for d, _ in seen] == [*range(128, 700, 128), 700]
    assert {t for _, t in seen} == {700}
