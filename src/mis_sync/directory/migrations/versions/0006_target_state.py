"""stored target state (classes, memberships, resolved users, drift checks)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 14:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY = [
    sa.Column("establishment_id", sa.String(length=64), nullable=False),
    sa.Column("target", sa.String(length=32), nullable=False),
]


def _key() -> list[sa.Column]:
    return [column.copy() for column in KEY]


def upgrade() -> None:
    op.create_table(
        "directory_target_containers",
        *_key(),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("remote_id", sa.String(length=128), nullable=False),
        sa.Column("attr_hash", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "target", "key"),
    )
    op.create_table(
        "directory_target_memberships",
        *_key(),
        sa.Column("container_key", sa.String(length=250), nullable=False),
        sa.Column("user_key", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "target", "container_key", "user_key", "role"),
    )
    op.create_table(
        "directory_target_users",
        *_key(),
        sa.Column("user_key", sa.String(length=320), nullable=False),
        sa.Column("remote_id", sa.String(length=128), nullable=False),
        sa.Column("attr_hash", sa.String(length=32), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "target", "user_key"),
    )
    op.create_table(
        "directory_target_sync_state",
        *_key(),
        sa.Column("last_drift_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=250), nullable=True),
        sa.Column("last_summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("establishment_id", "target"),
    )


def downgrade() -> None:
    for table in (
        "directory_target_sync_state",
        "directory_target_users",
        "directory_target_memberships",
        "directory_target_containers",
    ):
        op.drop_table(table)
