"""The streamed features stage: ingest writes person-ordered tables, the stage reads the
events in batches, one chunk of people at a time, and writes exactly the table that
``compute_features`` gives for the whole data (label included), chunk by chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from credit_scoring import io, schemas
from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.data import validated as vt
from credit_scoring.data.ingest import ingest, write_ingest_result
from credit_scoring.features import streaming
from credit_scoring.features.compute import compute_features
from credit_scoring.schemas import BehaviourData

BATCH_ROWS = 5_000


def _shuffled(data: BehaviourData, seed: int = 0) -> BehaviourData:
    """The same data with outcomes, events and contacts in random row order."""
    rng = np.random.default_rng(seed)

    def mix(df: pd.DataFrame) -> pd.DataFrame:
        return df.iloc[rng.permutation(len(df))].reset_index(drop=True)

    return BehaviourData(
        profiles=data.profiles,
        outcomes=mix(data.outcomes),
        events=mix(data.events),
        contacts=mix(data.contacts),
    )


def _write_raw(data: BehaviourData, folder) -> None:
    for name in schemas.TABLES:
        io.write_parquet(getattr(data, name), folder / f"{name}.parquet")


def _expected(folder) -> pd.DataFrame:
    """What the in-memory features stage writes: compute_features + the label."""
    data = vt.read_validated(folder)
    labels = data.outcomes[["person_id", "observation_date", "default_12m"]]
    return compute_features(data).merge(labels, on=["person_id", "observation_date"], how="left")


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """A simulated world, rows shuffled, through ingest: a person-ordered validated folder."""
    from credit_scoring.data.simulate import simulate_world

    root = tmp_path_factory.mktemp("stream")
    data, _ = simulate_world(SimulateParams(n_users=3_000, chunk_size=3_000), BaseParams())
    _write_raw(_shuffled(data), root / "raw")
    write_ingest_result(ingest(root / "raw"), root / "v", root / "r", root / "dq.json")
    return root / "v"


@pytest.fixture(scope="module")
def expected(validated) -> pd.DataFrame:
    return _expected(validated)


def _hand_world() -> BehaviourData:
    """A has a contact B (seriously late, in another chunk); B is scored at two dates."""
    obs, early = pd.Timestamp("2025-01-01"), pd.Timestamp("2024-07-01")

    def table(rows: list[dict], t: schemas.Table) -> pd.DataFrame:
        return schemas.conform(pd.DataFrame(rows).reindex(columns=list(t.column_names)), t)

    def rep(person, days, dpd, n):
        t = obs - pd.Timedelta(days=days)
        return {
            "event_id": f"E{n}",
            "person_id": person,
            "event_time": t,
            "event_type": "repayment",
            "amount": 10.0,
            "amount_due": 10.0,
            "days_past_due": dpd,
        }

    return BehaviourData(
        profiles=table(
            [{"person_id": p, "identity_verified": p != "C"} for p in "ABC"], schemas.PROFILES
        ),
        outcomes=table(
            [
                {"person_id": "B", "observation_date": obs, "default_12m": 1},
                {"person_id": "A", "observation_date": obs, "default_12m": 0},
                {"person_id": "B", "observation_date": early, "default_12m": 0},
            ],
            schemas.OUTCOMES,
        ),
        events=table(
            [
                rep(person, days, dpd, n)
                for n, (person, days, dpd) in enumerate(
                    [
                        ("B", 100, 40),
                        ("A", 30, 0),
                        ("B", 400, 45),
                        ("A", 5, 3),
                        ("C", 50, 60),
                        ("B", -5, 50),
                    ]
                )
            ],
            schemas.EVENTS,
        ),
        contacts=table(
            [
                {"person_id": "B", "contact_id": "A", "since_date": obs - pd.Timedelta(days=9)},
                {"person_id": "A", "contact_id": "B", "since_date": obs - pd.Timedelta(days=300)},
                {"person_id": "A", "contact_id": "C", "since_date": obs - pd.Timedelta(days=10)},
            ],
            schemas.CONTACTS,
        ),
    )


class _BatchCounter:
    """Wraps ``ParquetFile.iter_batches`` to record the size of every batch read."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        original = pq.ParquetFile.iter_batches

        def counting(pf, *args, **kwargs):
            for batch in original(pf, *args, **kwargs):
                self.sizes.append(batch.num_rows)
                yield batch

        monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)


def test_ingest_writes_person_ordered_tables(validated):
    """Outcomes, events and contacts come out grouped by person, in profile order, so a
    chunk of people owns one contiguous run of rows; nothing is lost."""
    data = vt.read_validated(validated)
    ids = vt.profile_ids(data.profiles)
    for name in vt.PERSON_ORDERED:
        codes = vt.person_codes(getattr(data, name)["person_id"], ids)
        assert (codes >= 0).all(), f"{name}: every row belongs to a profile"
        assert (np.diff(codes) >= 0).all(), f"{name}: rows in person order"
        assert vt.person_order(getattr(data, name)["person_id"], ids) is None


def test_streamed_stage_equals_compute_features_with_tiny_chunks(
    validated, expected, tmp_path, monkeypatch
):
    """Chunks of 250 people, events read 5,000 rows at a time: the written table equals
    compute_features of the whole data exactly (NaNs, label and row order included), is
    written one row group per chunk, and the events file is never read whole."""
    counter = _BatchCounter(monkeypatch)
    progress = []
    summary = streaming.write_features(
        validated,
        tmp_path / "f",
        chunk_people=250,
        progress=lambda done, total: progress.append((done, total)),
        batch_rows=BATCH_ROWS,
    )
    got = pd.read_parquet(tmp_path / "f" / "features.parquet")
    pd.testing.assert_frame_equal(got, expected, check_exact=True, obj="streamed features")
    n_events = pq.ParquetFile(validated / "events.parquet").metadata.num_rows
    assert max(counter.sizes) <= BATCH_ROWS < n_events, "events read in batches"
    assert sum(counter.sizes) == 2 * n_events, "two passes over the events, each row once"
    groups = pq.ParquetFile(tmp_path / "f" / "features.parquet").num_row_groups
    assert summary["chunks"] == 12 == groups, "one row group written per chunk of people"
    assert summary["rows"] == len(expected)
    assert progress[-1] == (len(expected), len(expected))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress), "progress only grows"
    protected = pd.read_parquet(tmp_path / "f" / "protected.parquet")
    assert list(protected.columns) == ["person_id", "observation_date", "gender", "age_band"]
    pd.testing.assert_series_equal(protected["person_id"], expected["person_id"])


def test_chunk_of_one_person_handles_several_dates_and_contacts_in_other_chunks(tmp_path):
    """Hand-built people (B scored at two dates, A's contact B in another chunk): one
    person per chunk still gives compute_features exactly."""
    _write_raw(_hand_world(), tmp_path / "raw")
    write_ingest_result(ingest(tmp_path / "raw"), tmp_path / "v", tmp_path / "r", tmp_path / "q")
    streaming.write_features(tmp_path / "v", tmp_path / "f", chunk_people=1, batch_rows=2)
    got = pd.read_parquet(tmp_path / "f" / "features.parquet")
    pd.testing.assert_frame_equal(got, _expected(tmp_path / "v"), check_exact=True)


def test_a_folder_not_in_person_order_is_refused_by_the_streamer_and_loaded_whole(
    validated, expected, tmp_path
):
    """Events written in another order (an older ingest, a hand-made folder): streaming
    refuses it with a clear error and the stage falls back to the in-memory path,
    with the same result."""
    data = vt.read_validated(validated)
    folder = tmp_path / "unordered"
    _write_raw(_shuffled(data, seed=1), folder)
    with pytest.raises(streaming.NotPersonOrdered, match="not ordered by person"):
        streaming.iter_feature_chunks(folder, chunk_people=250, batch_rows=BATCH_ROWS)
    summary = streaming.write_features(folder, tmp_path / "f", chunk_people=250)
    assert summary["chunks"] == 0, "loaded whole"
    got = pd.read_parquet(tmp_path / "f" / "features.parquet")
    pd.testing.assert_frame_equal(got, _expected(folder), check_exact=True)
    by_key = ["person_id", "observation_date"]
    pd.testing.assert_frame_equal(
        got.sort_values(by_key).reset_index(drop=True),
        expected.sort_values(by_key).reset_index(drop=True),
        check_exact=False,  # sums over events in another order: last-bit differences
        rtol=1e-12,
        obj="same features whatever the row order",
    )


def test_ordered_writer_reorders_in_row_groups(tmp_path):
    """io.write_parquet_ordered writes df.iloc[order] one row group at a time."""
    df = pd.DataFrame({"a": pd.array(["x", "y", None, "z"], dtype="string"), "b": [1.0, 2, 3, 4]})
    io.write_parquet_ordered(df, np.array([3, 1, 0, 2]), tmp_path / "t.parquet", rows_per_group=3)
    back = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, df.iloc[[3, 1, 0, 2]].reset_index(drop=True))
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 2
