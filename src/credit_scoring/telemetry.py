"""Switch off the usage telemetry of MLflow, BentoML and DVC.

Called at the edges (the CLI, the service) rather than at import time, so importing
the library has no side effects. A user who wants telemetry can set the variables
to "false" before running; explicit settings are respected (setdefault).
"""

from __future__ import annotations

import os

TELEMETRY_OFF: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "true",
}


def disable_telemetry() -> None:
    """Default every telemetry switch we know of to 'off' for this process and its children."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
