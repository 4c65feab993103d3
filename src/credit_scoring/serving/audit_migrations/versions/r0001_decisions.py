"""The decisions table: one row per decision, indexed on time and person reference.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("route", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("person_ref", sa.String(128), nullable=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(160), nullable=False),
        sa.Column("registry_version", sa.String(32), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("bento_model", sa.String(160), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("pd", sa.Float, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("band", sa.String(32), nullable=False),
        sa.Column("credit_limit", sa.Float, nullable=False),
        sa.Column("tiers", sa.JSON, nullable=False),
        sa.Column("reason_codes", sa.JSON, nullable=True),
        sa.UniqueConstraint("request_id", "item", name="uq_decisions_request_item"),
    )
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
    op.create_index("ix_decisions_person_ref_decided_at", "decisions", ["person_ref", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_decisions_person_ref_decided_at", table_name="decisions")
    op.drop_index("ix_decisions_decided_at", table_name="decisions")
    op.drop_table("decisions")
