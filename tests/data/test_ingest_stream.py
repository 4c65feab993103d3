"""Ingest in bounded memory: batch by batch, it writes exactly what the in-memory ingest writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring import schemas
from credit_scoring.config import BaseParams, SimulateParams
from credit_scoring.data.ingest import InputError, ingest, write_ingest_result
from credit_scoring.data.ingest_stream import ingest_to_folder
from credit_scoring.data.validated import read_table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _in_memory(src: Path, out: Path, **label) -> None:
    write_ingest_result(ingest(src, **label), out / "v", out / "r", out / "q.json")


def _assert_same_outputs(a: Path, b: Path) -> None:
    """Accepted tables (as the feature engines read them), rejects with reasons and source
    rows, and the data-quality report are equal."""
    for name in schemas.ALL_TABLES:
        pd.testing.assert_frame_equal(
            read_table(a / "v", name), read_table(b / "v", name), obj=f"{name} accepted"
        )
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / "r" / f"{name}.parquet"),
            pd.read_parquet(b / "r" / f"{name}.parquet"),
            obj=f"{name} rejects",
        )
    report_a = json.loads((a / "q.json").read_text())
    report_b = json.loads((b / "q.json").read_text())
    assert report_a == report_b


def _streamed(src: Path, out: Path, batch_rows: int | None, **label) -> dict:
    return ingest_to_folder(
        src, out / "v", out / "r", out / "q.json", batch_rows=batch_rows, **label
    )


@pytest.mark.parametrize(
    ("example", "batch_rows", "label"),
    [
        ("bad", 3, {}),  # every kind of reject the ingest tests use, across tiny batches
        ("bad", None, {}),  # the whole file as one batch
        ("tiny", 5, {}),
        ("card_panel", 700, {"label_column": "default_1m", "horizon_months": 1}),
        ("bank_ledger", 2_000, {"label_column": "bad_loan", "horizon_months": 24}),
    ],
)
def test_streamed_ingest_equals_in_memory_ingest_on_the_examples(
    tmp_path, example, batch_rows, label
):
    """Every example folder (events, transactions, applications, profile history, a renamed
    label, the bad rows of every reject reason) gives the same outputs batch by batch."""
    _in_memory(EXAMPLES / example, tmp_path / "mem", **label)
    _streamed(EXAMPLES / example, tmp_path / "stream", batch_rows, **label)
    _assert_same_outputs(tmp_path / "mem", tmp_path / "stream")


def _bad_world(folder: Path, drop_event_id: bool) -> None:
    """A simulated world of 1,500 people written as CSV, rows shuffled (so the person order
    must be rebuilt), with bad rows whose detection needs the whole file: repeated keys far
    apart (different batches), references to unknown people, unparseable values."""
    from credit_scoring.data.simulate import simulate_world

    data, _ = simulate_world(SimulateParams(n_users=1_500, chunk_size=1_500), BaseParams())
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    for name in schemas.TABLES:
        df = getattr(data, name).astype("string")
        if name == "outcomes":
            df = df.rename(columns={schemas.LABEL: "default_12m"})
        df = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
        bad = df.iloc[rng.choice(len(df), size=min(len(df), 6), replace=False)].copy()
        if name != "profiles":
            bad.iloc[2, bad.columns.get_loc("person_id")] = "NOBODY"
        col = next(c for c in df.columns if c not in ("person_id", "event_id"))
        bad.iloc[3, bad.columns.get_loc(col)] = "not-a-value"
        bad.iloc[4, 0] = None
        df = pd.concat([df, bad], ignore_index=True)
        if name == "events" and drop_event_id:
            df = df.drop(columns="event_id")
        df.to_csv(folder / f"{name}.csv", index=False)


@pytest.mark.parametrize("drop_event_id", [False, True])
def test_streamed_ingest_equals_in_memory_on_a_shuffled_world_in_batches_of_1000(
    tmp_path, drop_event_id
):
    """1,500 people, events shuffled and cut into batches of 1,000 rows: the external person
    sort, repeated keys across batches (or exact duplicate rows when events have no event_id,
    with the first row's number in the reason) and the report match the in-memory ingest."""
    _bad_world(tmp_path / "raw", drop_event_id)
    _in_memory(tmp_path / "raw", tmp_path / "mem")
    report = _streamed(tmp_path / "raw", tmp_path / "stream", batch_rows=1_000)
    _assert_same_outputs(tmp_path / "mem", tmp_path / "stream")
    events = report["tables"]["events"]
    assert events["input_rows"] > 10_000  # many batches
    reasons = events["rejected_by_reason"]
    assert ("duplicate row" if drop_event_id else "duplicate event_id") in reasons
    assert "unknown person_id" in reasons


def test_a_fatal_error_in_a_later_table_writes_nothing(tmp_path):
    """A missing required column in events stops ingest before anything is moved into place:
    the outputs of an earlier run stay as they were."""
    raw = tmp_path / "raw"
    shutil.copytree(EXAMPLES / "tiny", raw)
    _streamed(raw, tmp_path / "out", batch_rows=4)
    before = (tmp_path / "out" / "q.json").read_text()
    events = pd.read_csv(raw / "events.csv", dtype=str).drop(columns="event_type")
    events.to_csv(raw / "events.csv", index=False)
    with pytest.raises(InputError, match=r"events\.csv: missing required column 'event_type'"):
        _streamed(raw, tmp_path / "out", batch_rows=4)
    assert (tmp_path / "out" / "q.json").read_text() == before
    assert not list(tmp_path.glob("out/.ingest-*"))
