"""The features stage in bounded memory: people in chunks, events streamed from Parquet.

At a million people the events table has tens of millions of rows; loading it whole
into pandas is what bounds the machine. ``ingest`` therefore writes outcomes, events
and contacts ordered by their person's row in ``profiles`` (:func:`person_order`), so
each chunk of people owns one contiguous run of event rows. The stage then reads the
events file twice, batch by batch:

1. the *network* events (:func:`~credit_scoring.features.compute.network_event_mask`: seriously late
   repayments), the only events of one person that another person's features read,
   are kept for everyone (a few percent of the rows, only the columns those features
   read), and the order is checked;
2. for each chunk of ``chunk_people`` people, :func:`.compute.person_data` cuts their
   outcomes, contacts and contacts' profiles; their own events plus their contacts'
   network events then go through :func:`.compute.compute_features`: the same code as
   the whole-table and the one-person paths, so the rows equal ``compute_features`` of
   the whole data.

The feature table is written row group by row group as chunks finish. Peak memory is
about one chunk's events plus the profiles, outcomes, contacts and network events, and the
optional tables (transactions, applications, dated profile facts), which are read whole
and cut per chunk like the contacts.
Folders that are not person-ordered (written by an older ingest) fall back to loading
everything (:func:`~credit_scoring.features.compute.compute_features_chunked`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from credit_scoring import io, schemas
from credit_scoring.artefacts import FEATURES_FILE, PROTECTED_FILE
from credit_scoring.data.validated import (
    person_codes,
    profile_ids,
    read_table,
    read_validated,
    table_path,
)
from credit_scoring.features.compute import (
    compute_features,
    compute_features_chunked,
    network_event_mask,
    person_data,
    protected_attributes,
)
from credit_scoring.features.registry import DEFAULT_WINDOWS
from credit_scoring.schemas import LABEL, ROW_KEY

logger = logging.getLogger(__name__)

# Event rows decoded at a time while streaming (one Arrow record batch).
EVENTS_BATCH_ROWS = 1_000_000
# Tables that ingest writes in person order (profiles define the order).
# Columns of the events that the network features read (compute.network_event_mask).
NETWORK_COLUMNS: tuple[str, ...] = ("person_id", "event_time", "event_type", "days_past_due")


class NotPersonOrdered(ValueError):
    """A validated table is not ordered by person, so it cannot be streamed by chunk."""


def _events_frame(table: pa.Table) -> pd.DataFrame:
    return schemas.conform(table.to_pandas(), schemas.EVENTS)


@dataclass
class _Folder:
    """The small tables of a validated folder, read whole, and the events file."""

    profiles: pd.DataFrame
    outcomes: pd.DataFrame
    contacts: pd.DataFrame
    events: pq.ParquetFile
    ids: pa.Array
    optional: dict[str, pd.DataFrame]  # transactions, applications, profile_history


def _open(folder: Path) -> _Folder:
    profiles = read_table(folder, schemas.PROFILES)
    outcomes = read_table(folder, schemas.OUTCOMES)
    contacts = read_table(folder, schemas.CONTACTS)
    path = Path(table_path(folder, "events"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: validated table missing; run the ingest stage first")
    optional = {name: read_table(folder, spec) for name, spec in schemas.OPTIONAL_TABLES.items()}
    return _Folder(
        profiles, outcomes, contacts, pq.ParquetFile(path), profile_ids(profiles), optional
    )


def _check_order(codes: np.ndarray, last: int, what: str) -> int:
    """Raise unless ``codes`` are known people in non-decreasing order after ``last``."""
    if len(codes) == 0:
        return last
    if codes.min() < 0:
        raise NotPersonOrdered(f"{what}: person_id without a profile")
    if codes[0] < last or bool((codes[1:] < codes[:-1]).any()):
        raise NotPersonOrdered(f"{what}: rows are not ordered by person")
    return int(codes[-1])


def _network_events(f: _Folder, batch_rows: int) -> tuple[pa.Table, np.ndarray]:
    """Pass 1: every network event and its person code; checks the order.

    Only :data:`NETWORK_COLUMNS` are read (the others are left missing): another person's
    events reach a chunk only through the network features, which read no other column.
    The streamed-equals-whole-table test guards this.
    """
    kept, last = [], -1
    for batch in f.events.iter_batches(batch_size=batch_rows, columns=list(NETWORK_COLUMNS)):
        last = _check_order(person_codes(batch.column("person_id"), f.ids), last, "events")
        cols = batch.select(["event_type", "days_past_due"]).to_pandas()
        mask = network_event_mask(schemas.conform(cols, _TWO_COLUMNS))
        kept.append(batch.filter(pa.array(mask)))
    schema = f.events.schema_arrow
    read = pa.Table.from_batches(kept) if kept else None
    n = 0 if read is None else read.num_rows
    columns = [
        read.column(field.name)
        if read is not None and field.name in NETWORK_COLUMNS
        else pa.nulls(n, type=field.type)
        for field in schema
    ]
    network = pa.Table.from_arrays(columns, schema=schema)
    return network, person_codes(network.column("person_id"), f.ids)


# conform() for the two columns the network mask reads.
_TWO_COLUMNS = schemas.Table(
    name="events",
    description="",
    key=(),
    columns=tuple(c for c in schemas.EVENTS.columns if c.name in ("event_type", "days_past_due")),
)


def _chunk_batches(
    f: _Folder, chunk_people: int, batch_rows: int
) -> Iterator[tuple[int, list[pa.RecordBatch]]]:
    """Pass 2: (chunk number, its event batches) for every chunk of people, in order."""
    n_chunks = -(-len(f.ids) // chunk_people)
    chunk, pending = 0, []
    for batch in f.events.iter_batches(batch_size=batch_rows):
        codes = person_codes(batch.column("person_id"), f.ids)
        start = 0
        while start < len(codes):
            end = int(np.searchsorted(codes, (chunk + 1) * chunk_people, side="left"))
            pending.append(batch.slice(start, end - start))
            if end == len(codes):
                break
            yield chunk, pending
            chunk, pending, start = chunk + 1, [], end
    while chunk < n_chunks:
        yield chunk, pending
        chunk, pending = chunk + 1, []


def iter_feature_chunks(
    folder: str | Path,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    chunk_people: int = 100_000,
    batch_rows: int = EVENTS_BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """Feature rows (with the ``default_12m`` label) of a person-ordered validated folder,
    one frame per chunk of people; concatenated they equal ``compute_features`` of the
    whole folder (plus the label), in ``outcomes`` order.

    The order check and the network pass run before this returns, so a folder that
    cannot be streamed fails here, before anything is computed.

    Raises:
        NotPersonOrdered: outcomes or events are not ordered by person (see module doc).
        FileNotFoundError: a validated table is missing.
    """
    if chunk_people < 1:
        raise ValueError(f"chunk_people must be >= 1; got {chunk_people}")
    f = _open(Path(folder))
    out_codes = person_codes(f.outcomes["person_id"], f.ids)
    _check_order(out_codes, -1, "outcomes")
    network, network_codes = _network_events(f, batch_rows)
    return _compute_chunks(f, out_codes, network, network_codes, windows, chunk_people, batch_rows)


def _compute_chunks(
    f: _Folder,
    out_codes: np.ndarray,
    network: pa.Table,
    network_codes: np.ndarray,
    windows: Sequence[int],
    chunk_people: int,
    batch_rows: int,
) -> Iterator[pd.DataFrame]:
    schema = f.events.schema_arrow
    no_events = schemas.empty_table(schemas.EVENTS)
    for chunk, batches in _chunk_batches(f, chunk_people, batch_rows):
        lo, hi = chunk * chunk_people, (chunk + 1) * chunk_people
        if not ((out_codes >= lo) & (out_codes < hi)).any():
            batches.clear()
            continue  # nobody in this chunk is scored
        # person_data cuts the chunk's outcomes and contacts and their contacts' profiles;
        # the events it would cut are the chunk's own rows (this run of the file) plus
        # the network events of those contacts, joined here in Arrow: one pandas copy.
        light = schemas.BehaviourData(f.profiles, f.outcomes, no_events, f.contacts, **f.optional)
        sliced = person_data(light, f.ids.slice(lo, hi - lo).to_pylist())
        linked = np.zeros(len(f.ids), dtype=bool)
        linked[person_codes(sliced.profiles["person_id"], f.ids)] = True
        theirs = linked[network_codes] & ((network_codes < lo) | (network_codes >= hi))
        events = pa.concat_tables(
            [pa.Table.from_batches(batches, schema=schema), network.filter(pa.array(theirs))]
        )
        batches.clear()  # the generator holds this list too: free the Arrow rows
        data = schemas.BehaviourData(
            profiles=sliced.profiles,
            outcomes=sliced.outcomes,
            events=_events_frame(events),
            contacts=sliced.contacts,
            transactions=sliced.transactions,
            applications=sliced.applications,
            profile_history=sliced.profile_history,
        )
        del events, sliced
        table = compute_features(data, windows)
        table[LABEL] = data.outcomes[LABEL].array  # same rows, same order
        del data
        yield table


def write_features(
    folder: str | Path,
    out_dir: str | Path,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    chunk_people: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
    batch_rows: int = EVENTS_BATCH_ROWS,
) -> dict[str, int]:
    """The features stage: ``out_dir/features.parquet`` (label + features) and
    ``protected.parquet`` from a validated folder, streamed when it is person-ordered.

    Both files are written atomically; the feature table one row group per chunk.
    ``progress(rows_done, rows_total)`` is called after each chunk. Returns the number of
    rows, of observation dates and of chunks (0 when the folder was loaded whole).
    """
    folder, out_dir = Path(folder), Path(out_dir)
    try:
        chunks = iter_feature_chunks(folder, windows, chunk_people, batch_rows)
    except NotPersonOrdered as err:
        logger.warning("%s: %s; loading the whole folder (re-run ingest to stream it)", folder, err)
        return _write_in_memory(folder, out_dir, windows, chunk_people, progress)
    outcomes = read_table(folder, schemas.OUTCOMES)
    profiles = read_table(folder, schemas.PROFILES)
    total, done, n_chunks, dates = len(outcomes), 0, 0, set()
    with io.atomic_path(out_dir / FEATURES_FILE) as tmp:
        writer, schema = None, None
        try:
            for table in chunks:
                arrow = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
                if writer is None:
                    schema = arrow.schema
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(arrow)
                done += len(table)
                n_chunks += 1
                dates.update(table["observation_date"].unique())
                if progress is not None:
                    progress(done, total)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # no outcome rows at all: an empty table with the same columns
            empty = compute_features(_empty_data(profiles, outcomes), windows)
            _labelled(empty, outcomes).to_parquet(tmp, index=False)
    io.write_parquet(
        protected_attributes(_empty_data(profiles, outcomes)),
        out_dir / PROTECTED_FILE,
    )
    return {"rows": done, "observation_dates": len(dates), "chunks": n_chunks}


def _empty_data(profiles: pd.DataFrame, outcomes: pd.DataFrame) -> schemas.BehaviourData:
    """Profiles and outcomes only: all that :func:`.compute.protected_attributes` reads."""
    return schemas.BehaviourData(
        profiles=profiles,
        outcomes=outcomes,
        events=schemas.empty_table(schemas.EVENTS),
        contacts=schemas.empty_table(schemas.CONTACTS),
    )


def _labelled(table: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    labels = outcomes[[*ROW_KEY, LABEL]]
    return table.merge(labels, on=list(ROW_KEY), how="left")


def _write_in_memory(
    folder: Path,
    out_dir: Path,
    windows: Sequence[int],
    chunk_people: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    """The whole folder in memory (tables not in person order)."""
    data = read_validated(folder)
    total = len(data.outcomes)
    table = compute_features_chunked(
        data,
        windows,
        chunk_people=chunk_people,
        progress=None if progress is None else (lambda done: progress(done, total)),
    )
    table = _labelled(table, data.outcomes)
    io.write_parquet(table, out_dir / FEATURES_FILE)
    io.write_parquet(protected_attributes(data), out_dir / PROTECTED_FILE)
    dates = table["observation_date"].nunique()
    return {"rows": len(table), "observation_dates": dates, "chunks": 0}
