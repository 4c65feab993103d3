"""The simulate stage: the seeded synthetic behaviour world (the default input data).

Writes the four input tables to ``data/simulated`` and the simulator's true default
probabilities to ``data/truth.parquet`` (evaluation only, never model input).
"""

from __future__ import annotations

from typing import Any

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data.simulate import write_world
from credit_scoring.stages import Progress


def run(params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Simulate ``simulate.n_users`` people; returns rows per table, default rates, cohorts."""
    paths = Paths.from_params(params)
    total = params.simulate.n_users
    return write_world(
        params.simulate,
        params.base,
        out_dir=paths.simulated_dir,
        truth_path=paths.truth,
        progress=None if progress is None else (lambda done: progress(done, total)),
    )
