"""The simulate stage: the seeded synthetic behaviour world (the default input data).

Writes the four input tables to ``data/simulated`` and the simulator's true default
probabilities to ``data/truth.parquet`` (evaluation only, never model input).

When ``data.input_dir`` points at the user's own data, nothing is simulated: the stage
writes an empty ``data/simulated`` holding only a note, and an empty truth table (the
outputs DVC expects), in a moment, and succeeds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from credit_scoring.artefacts import Paths
from credit_scoring.config import Params
from credit_scoring.data.simulate import TRUTH_COLUMNS, write_world
from credit_scoring.io import write_atomic, write_parquet
from credit_scoring.stages import Progress

NOTE_FILE = "NOT_SIMULATED.txt"


def uses_own_data(paths: Paths) -> bool:
    """True when ``data.input_dir`` is not the simulator's output folder."""
    return Path(paths.input_dir).resolve() != Path(paths.simulated_dir).resolve()


def run(params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Simulate ``simulate.n_users`` people; returns rows per table, default rates, cohorts.

    With the user's own input (``data.input_dir`` elsewhere) only the note and an empty
    truth table are written; the summary says why.
    """
    paths = Paths.from_params(params)
    if uses_own_data(paths):
        return skip(paths)
    total = params.simulate.n_users
    return write_world(
        params.simulate,
        params.base,
        out_dir=paths.simulated_dir,
        truth_path=paths.truth,
        progress=None if progress is None else (lambda done: progress(done, total)),
    )


def skip(paths: Paths) -> dict[str, Any]:
    """The outputs of a stage that does not simulate: a note and an empty truth table."""
    why = (
        f"not simulated: data.input_dir is {paths.input_dir} (your own data), "
        f"not {paths.simulated_dir}"
    )
    if paths.simulated_dir.exists():
        shutil.rmtree(paths.simulated_dir)
    write_atomic(paths.simulated_dir / NOTE_FILE, lambda tmp: tmp.write_text(why + "\n"))
    empty = pd.DataFrame(
        {
            "person_id": pd.Series(dtype="string"),
            "observation_date": pd.Series(dtype="datetime64[ns]"),
            "true_pd": pd.Series(dtype="float64"),
        }
    )[list(TRUTH_COLUMNS)]
    write_parquet(empty, paths.truth)
    return {"simulated": "no", "why": why}
