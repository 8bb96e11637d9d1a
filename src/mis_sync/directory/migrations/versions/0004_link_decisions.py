"""link mode: admin link decisions and the last link state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_link_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("person_kind", sa.String(length=16), nullable=True),
        sa.Column("mis_id", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision IN ('link', 'reject', 'not_in_mis', 'has_no_account', 'clear')",
            name="ck_link_decisions_decision",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_link_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_link_decisions_establishment", ["establishment_id", "decided_at"], unique=False
        )

    op.create_table(
        "directory_link_state",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("person_kind", sa.String(length=16), nullable=True),
        sa.Column("mis_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("agreed_fields", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_link_state", schema=None) as batch_op:
        batch_op.create_index("ix_link_state_establishment", ["establishment_id", "category"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("directory_link_state", schema=None) as batch_op:
        batch_op.drop_index("ix_link_state_establishment")
    op.drop_table("directory_link_state")
    with op.batch_alter_table("directory_link_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_link_decisions_establishment")
    op.drop_table("directory_link_decisions")
