"""identity continuity: user fingerprints, identity decisions, pending ambiguous pairs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_user_identities",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=24), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["directory_users.id"]),
        sa.PrimaryKeyConstraint("user_id", "rule"),
    )
    with op.batch_alter_table("directory_user_identities", schema=None) as batch_op:
        batch_op.create_index("ix_user_identities_fingerprint", ["fingerprint"], unique=False)

    op.create_table(
        "directory_identity_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("person_kind", sa.String(length=16), nullable=False),
        sa.Column("old_mis_id", sa.String(length=64), nullable=False),
        sa.Column("new_mis_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision IN ('same', 'distinct', 'clear')", name="ck_identity_decisions_decision"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_identity_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_identity_decisions_establishment", ["establishment_id", "decided_at"], unique=False
        )

    op.create_table(
        "directory_identity_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("person_kind", sa.String(length=16), nullable=False),
        sa.Column("old_mis_id", sa.String(length=64), nullable=False),
        sa.Column("new_mis_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_identity_pending", schema=None) as batch_op:
        batch_op.create_index("ix_identity_pending_establishment", ["establishment_id"], unique=False)


def downgrade() -> None:
    op.drop_table("directory_identity_pending")
    op.drop_table("directory_identity_decisions")
    op.drop_table("directory_user_identities")
