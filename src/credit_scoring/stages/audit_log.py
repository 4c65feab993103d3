"""The decision audit log's upkeep (`credit-scoring audit-log`): retention and one person's
export. Not a pipeline stage, an admin task on the service's database
(:mod:`credit_scoring.serving.audit_log`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from credit_scoring.config import ServeAuditParams
from credit_scoring.serving.audit_log import opened, person_decisions
from credit_scoring.serving.audit_log import purge as purge_older
from credit_scoring.serving.serve_config import audit_db_url


def default_url(audit: ServeAuditParams) -> str:
    """Env CREDIT_SCORING_AUDIT_DB_URL, else serve.audit.db_url, else the SQLite file."""
    return audit_db_url(audit, Path.cwd())


def purge(url: str, days: int) -> int:
    """Delete decisions older than ``days`` days; how many were deleted."""
    with opened(url) as engine:
        return purge_older(engine, days)


def export(url: str, person_ref: str, out: Path | TextIO) -> int:
    """Write one person's decisions as JSON lines (oldest first); how many."""
    with opened(url) as engine:
        rows = person_decisions(engine, person_ref)
    lines = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    if isinstance(out, Path):
        out.write_text(lines)
    else:
        out.write(lines)
    return len(rows)
