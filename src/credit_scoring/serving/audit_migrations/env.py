"""Alembic environment of the decision audit log (run by ``audit_log.migrate``).

The connection comes from ``config.attributes["connection"]``; the target metadata is
:data:`credit_scoring.serving.audit_log.metadata`. To add a revision:
``alembic -x url=sqlite:///tmp.db -c /dev/null revision -m "..."`` is not needed: write a
file in ``versions/`` by hand, with ``down_revision`` the previous one.
"""

from __future__ import annotations

from alembic import context

from credit_scoring.serving.audit_log import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only run through audit_log.migrate
    raise RuntimeError("run the audit log migrations with credit_scoring.serving.audit_log.migrate")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="audit_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
