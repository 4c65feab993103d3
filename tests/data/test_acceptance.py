"""The simulator's historical acceptance policy (data/acceptance.py) and its input contract."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import AcceptanceParams, BaseParams, SimulateParams
from credit_scoring.data import acceptance
from credit_scoring.data.ingest import ingest
from credit_scoring.data.simulate import simulate_world, write_world
from credit_scoring.schemas import DECISION, LABEL, TABLES

SIM = SimulateParams(n_users=2000, chunk_size=1000)
POLICY = AcceptanceParams(enabled=True, approval_rate=0.7, grey_zone_share=0.1)


def _digests(folder, truth) -> dict[str, str]:
    files = {f"{t}.parquet": folder / f"{t}.parquet" for t in TABLES}
    files["truth.parquet"] = truth
    return {k: hashlib.sha256(f.read_bytes()).hexdigest() for k, f in files.items()}


def test_without_a_policy_the_files_are_unchanged(tmp_path):
    """Acceptance off (the default): the same seed gives byte-identical files, whatever the
    (unused) policy settings, and outcomes/truth keep the columns they had before issue #18
    (checked against digests recorded from the code before the change, 3,000 people)."""
    a = write_world(SIM, BaseParams(), tmp_path / "a", tmp_path / "a_truth.parquet")
    other = SIM.model_copy(
        update={"acceptance": AcceptanceParams(enabled=False, approval_rate=0.3)}
    )
    b = write_world(other, BaseParams(), tmp_path / "b", tmp_path / "b_truth.parquet")
    assert _digests(tmp_path / "a", tmp_path / "a_truth.parquet") == _digests(
        tmp_path / "b", tmp_path / "b_truth.parquet"
    )
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert "acceptance" not in a
    outcomes = pd.read_parquet(tmp_path / "a" / "outcomes.parquet")
    assert list(outcomes.columns) == ["person_id", "observation_date", LABEL]
    assert outcomes[LABEL].notna().all()
    truth = pd.read_parquet(tmp_path / "a_truth.parquet")
    assert list(truth.columns) == ["person_id", "observation_date", "true_pd"]


def test_pre_change_digests_hold(tmp_path):
    """Byte for byte the files the simulator wrote before issue #18 (3,000 people, 1,000 a
    chunk, seed 42): digests taken with the code of commit 8231266."""
    sim = SimulateParams(n_users=3000, chunk_size=1000)
    write_world(sim, BaseParams(), tmp_path / "w", tmp_path / "truth.parquet")
    got = {k: v[:16] for k, v in _digests(tmp_path / "w", tmp_path / "truth.parquet").items()}
    assert got == {
        "profiles.parquet": "192fd88c9a479073",
        "outcomes.parquet": "dec124edec6454d1",
        "events.parquet": "6a71d6721b459f00",
        "contacts.parquet": "332d50619685a20c",
        "truth.parquet": "b9fcd7f39afdb139",
    }


def test_policy_hides_the_declined_outcomes_and_nothing_else():
    """With the policy on: ~70% approved, the grey band split by a coin, declined rows keep
    their row but lose their label, the truth keeps every true PD, the declined are riskier,
    and the people, events and contacts are those of the world without the policy."""
    plain, truth0 = simulate_world(SIM, BaseParams())
    data, truth = simulate_world(SIM.model_copy(update={"acceptance": POLICY}), BaseParams())
    decision = data.outcomes[DECISION]
    approved = acceptance.is_approved(decision)
    assert abs(approved.mean() - 0.7) < 0.01
    assert set(decision.unique()) == {"approved", "declined", "grey_approved", "grey_declined"}
    grey = decision.str.startswith("grey").to_numpy()
    assert abs(grey.mean() - 0.1) < 0.01
    assert data.outcomes.loc[~approved, LABEL].isna().all()
    assert data.outcomes.loc[approved, LABEL].notna().all()
    pd.testing.assert_series_equal(
        data.outcomes.loc[approved, LABEL], plain.outcomes.loc[approved, LABEL]
    )
    assert truth["true_pd"].notna().all()
    np.testing.assert_array_equal(truth["true_pd"], truth0["true_pd"])
    assert (truth[DECISION] == decision).all()
    assert truth.loc[~approved, "true_pd"].mean() > 3 * truth.loc[approved, "true_pd"].mean()
    for name in ("profiles", "events", "contacts"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(plain, name))


def test_decide_is_seeded_and_respects_the_rate():
    """The same seed and chunk give the same decisions; other rates give other cut-offs."""
    pd_ = np.random.default_rng(0).uniform(0.001, 0.5, 5000)
    a = acceptance.decide(pd_, POLICY, 1, 0)
    np.testing.assert_array_equal(a, acceptance.decide(pd_, POLICY, 1, 0))
    low = acceptance.decide(pd_, POLICY.model_copy(update={"approval_rate": 0.5}), 1, 0)
    assert abs(acceptance.is_approved(low).mean() - 0.5) < 0.01


def test_ingest_keeps_declined_rows_and_counts_them(tmp_path):
    """Declined applicants with features and no outcome are valid rows (not rejects); the
    data-quality report counts rows and labelled rows per decision."""
    sim = SIM.model_copy(update={"acceptance": POLICY})
    write_world(sim, BaseParams(), tmp_path / "w", tmp_path / "truth.parquet")
    result = ingest(tmp_path / "w")
    assert len(result.data.outcomes) == sim.n_users
    assert all(len(r) == 0 for r in result.rejects.values())
    counts = result.report["outcomes"]["historical_decisions"]
    assert counts["declined"]["labelled"] == 0 and counts["declined"]["rows"] > 400
    assert counts["approved"]["labelled"] == counts["approved"]["rows"]
    assert sum(c["rows"] for c in counts.values()) == sim.n_users


def test_ingest_rejects_an_unknown_decision(tmp_path):
    """A decision outside the vocabulary is a reject naming the field; without the column
    the report has no decision counts."""
    write_world(SIM, BaseParams(), tmp_path / "w", tmp_path / "truth.parquet")
    assert "historical_decisions" not in ingest(tmp_path / "w").report["outcomes"]
    path = tmp_path / "w" / "outcomes.parquet"
    outcomes = pd.read_parquet(path)
    outcomes[DECISION] = "approved"
    outcomes.loc[0, DECISION] = "maybe"
    outcomes.to_parquet(path)
    result = ingest(tmp_path / "w")
    rejects = result.rejects["outcomes"]
    assert len(rejects) == 1
    assert DECISION in " ".join(map(str, rejects.iloc[0].to_dict().values()))


@pytest.mark.parametrize("rate", [0.0, 1.5])
def test_policy_params_are_validated(rate):
    """An approval rate outside (0, 1] fails at load."""
    with pytest.raises(ValueError):
        AcceptanceParams(enabled=True, approval_rate=rate)
