"""Batch scoring keeps every row: scored + rejected = input, with a reason per reject."""

from __future__ import annotations

import numpy as np
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
    with pytest.raises(FeatureInputError):
        score_features(small_model, table)
