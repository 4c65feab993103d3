"""One module per DVC stage: read inputs, call the core, write outputs atomically, return a
summary.

Each stage module has ``run(params, ..., progress=None) -> dict``: it reads the stage's
inputs (paths from :class:`credit_scoring.artefacts.Paths`, artefacts checked against their
schemas), calls the core library, writes its outputs atomically (:mod:`credit_scoring.io`)
and returns a summary. It prints nothing: the CLI (:mod:`credit_scoring.cli`) parses the
options, prints the summary and maps expected errors to one line and exit code 2.

dvc.yaml makes every stage depend on its module here and on every project module it
imports, directly or not (checked by ``tests/stages/test_dvc_stages.py``).
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total)``: how far a stage has got (``total`` None while unknown).
Progress = Callable[[int, int | None], None]


class StageError(Exception):
    """An expected failure a user can fix: the CLI reports it in one line, exit code 2."""
