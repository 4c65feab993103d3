"""The Dask feature engine (``engine: dask``): the same features, computed on a cluster.

Nothing here re-implements a feature; it only cuts the work and moves it. People are cut
into partitions of ``dask.people_per_partition`` (contiguous ranges of sorted
``person_id``). Each task reads its people's rows from the validated Parquet files itself
(:func:`credit_scoring.data.validated.read_table` with range filters, so row groups of a
person-sorted file are skipped), adds the network slice of their contacts (their profiles
and seriously late repayments, :func:`credit_scoring.features.compute.network_event_mask`)
and their own rows of the optional tables (transactions, applications, dated profile facts),
cuts it with :func:`credit_scoring.features.compute.person_data` and calls
:func:`credit_scoring.features.compute.compute_features`, the very function the local
engine and the service use. The result equals the local table row for row.

Paths are resolved to absolute paths (or kept as URIs such as ``s3://...``) on the client;
with a real cluster every worker must see them at the same place (shared filesystem or object
store) and have this package installed. The cluster itself comes from
:func:`credit_scoring.cluster.dask_client`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from credit_scoring import schemas
from credit_scoring.cluster import location
from credit_scoring.data.validated import read_table, table_path
from credit_scoring.features.compute import (
    compute_features,
    network_event_mask,
    person_data,
    protected_attributes,
)
from credit_scoring.features.registry import DEFAULT_WINDOWS
from credit_scoring.schemas import LABEL, ROW_KEY

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- features


def _plan(folder: str, people_per_partition: int) -> tuple[list[tuple[str, str]], int]:
    """(first, last) person_id of each partition, and the events file's row groups."""
    ids = ds.dataset(table_path(folder, "outcomes"), format="parquet").to_table(
        columns=["person_id"]
    )["person_id"]
    people = pc.unique(ids.drop_null())
    people = people.take(pc.sort_indices(people)).to_pylist()
    bounds = [
        (people[i], people[min(i + people_per_partition, len(people)) - 1])
        for i in range(0, len(people), people_per_partition)
    ]
    events = ds.dataset(table_path(folder, "events"), format="parquet")
    n_groups = sum(f.metadata.num_row_groups for f in events.get_fragments())
    return bounds, n_groups


def _row_groups(folder: str) -> list[ds.ParquetFileFragment]:
    events = ds.dataset(table_path(folder, "events"), format="parquet")
    return [rg for f in events.get_fragments() for rg in f.split_by_row_group()]


def _network_events(folder: str, group: int) -> pd.DataFrame:
    """The events of one row group that reach other people's features (network features)."""
    table = _row_groups(folder)[group].to_table()
    events = schemas.conform(table.to_pandas(), schemas.TABLES["events"])
    return events[network_event_mask(events)].reset_index(drop=True)


def _partition_features(
    folder: str,
    first: str,
    last: str,
    network: list[pd.DataFrame],
    windows: tuple[int, ...],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features (with the label) and protected attributes of the people in [first, last]."""
    field = pc.field("person_id")
    in_range = (field >= pa.scalar(first)) & (field <= pa.scalar(last))
    outcomes = read_table(folder, "outcomes", in_range)
    events = read_table(folder, "events", in_range)
    contacts = read_table(folder, "contacts", in_range)
    optional = {name: read_table(folder, name, in_range) for name in schemas.OPTIONAL_TABLES}
    people = pd.Index(outcomes["person_id"].dropna().unique())
    linked = people.union(pd.Index(contacts["contact_id"].dropna().unique()))
    profiles = read_table(folder, "profiles", field.isin(pa.array(linked.astype(str).tolist())))
    others = pd.concat(network, ignore_index=True) if network else events.iloc[:0]
    who = others["person_id"]
    outside = ~((who >= first) & (who <= last)).to_numpy(dtype=bool, na_value=False)
    events = pd.concat([events, others[outside]], ignore_index=True)
    data = person_data(
        schemas.BehaviourData(profiles, outcomes, events, contacts, **optional), people
    )
    table = compute_features(data, windows)
    label = data.outcomes[[*ROW_KEY, LABEL]]
    table = table.merge(label, on=list(ROW_KEY), how="left")
    return table, protected_attributes(data)


def compute_features_dask(
    client: Any,
    validated_dir: str | Path,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    people_per_partition: int = 25_000,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feature table (with ``default_12m``) and protected attributes, computed on Dask.

    Equal to the local engine's output (``compute_features_chunked`` + the label merge and
    ``protected_attributes``) row for row; rows come ordered by ``person_id`` range, within
    a range in the outcomes file's order. ``progress(done, total)`` counts partitions.
    """
    from distributed import as_completed

    folder = location(validated_dir)
    windows = tuple(sorted(int(w) for w in windows))
    bounds, n_groups = client.submit(_plan, folder, people_per_partition, pure=False).result()
    network = [client.submit(_network_events, folder, g, pure=False) for g in range(n_groups)]
    parts = [
        client.submit(_partition_features, folder, a, b, network, windows, pure=False)
        for a, b in bounds
    ]
    for done, _ in enumerate(as_completed(parts, loop=client.loop), start=1):
        if progress is not None:
            progress(done, len(parts))
    results = client.gather(parts)
    del network, parts
    if not results:
        raise ValueError(f"{validated_dir}: outcomes has no people to compute features for")
    table = pd.concat([r[0] for r in results], ignore_index=True)
    protected = pd.concat([r[1] for r in results], ignore_index=True)
    return table, protected
