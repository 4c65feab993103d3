"""The Dask cluster of a run (``engine: dask``): connect to a scheduler or start a LocalCluster."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from credit_scoring.config import ConfigError, DaskParams

logger = logging.getLogger(__name__)


class ClusterError(ConfigError):
    """The configured Dask scheduler cannot be reached (a one-line, fixable error)."""


# --------------------------------------------------------------------------- cluster


@contextlib.contextmanager
def dask_client(params: DaskParams) -> Iterator[Any]:
    """A ``distributed.Client`` for one run; closed (and a LocalCluster stopped) at the end.

    With ``params.scheduler_address`` it connects to that running cluster and fails within
    ``connect_timeout_s`` with :class:`ClusterError` when nobody answers. Without it, a
    LocalCluster of ``n_workers`` worker processes is started for the run.
    """
    from distributed import Client, LocalCluster

    address = params.scheduler_address.strip()
    timeout = f"{params.connect_timeout_s}s"
    if address:
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            reason = (str(err).splitlines() or [type(err).__name__])[0]
            raise ClusterError(
                f"dask.scheduler_address: cannot connect to the Dask scheduler at {address!r} "
                f"within {params.connect_timeout_s:g} s ({reason})"
            ) from None
        with contextlib.closing(client):
            yield client
        return
    with (
        LocalCluster(
            n_workers=params.n_workers,
            threads_per_worker=params.threads_per_worker,
            processes=True,
            memory_limit=params.memory_limit,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, timeout=timeout) as client,
    ):
        client.wait_for_workers(params.n_workers, timeout=params.connect_timeout_s * 6)
        yield client


def location(path: str | Path) -> str:
    """A path every worker can open: URIs as given, local paths made absolute."""
    text = str(path)
    return text if "://" in text else str(Path(text).resolve())


def worker_addresses(client: Any) -> list[str]:
    """Worker addresses in a fixed (sorted) order, so data placement is reproducible."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        raise ClusterError("the Dask cluster has no workers")
    return workers
