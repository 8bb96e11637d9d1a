"""data-quality findings across runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_quality_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("mis_id", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("first_seen_run", sa.String(length=250), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_run", sa.String(length=250), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "establishment_id", "entity", "mis_id", "rule", "field", name="uq_quality_findings_key"
        ),
    )
    with op.batch_alter_table("directory_quality_findings", schema=None) as batch_op:
        batch_op.create_index("ix_quality_findings_open", ["establishment_id", "fixed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("directory_quality_findings", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_findings_open")
    op.drop_table("directory_quality_findings")
