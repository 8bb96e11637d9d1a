"""initial directory schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 11:16:34.870745
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
        "directory_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_establishment_run", ["establishment_id", "run_id"], unique=False)

    op.create_table(
        "directory_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("mis_id", sa.String(length=64), nullable=False),
        sa.Column("academic_year", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=100), nullable=True),
        sa.Column("year_group", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("establishment_id", "mis_id", "academic_year", name="uq_groups_mis_link"),
    )
    op.create_table(
        "directory_sync_runs",
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "run_id"),
    )
    op.create_table(
        "directory_sync_state",
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.String(length=250), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_snapshot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_hash", sa.String(length=64), nullable=True),
        sa.Column("data_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_counts", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("establishment_id"),
    )
    op.create_table(
        "directory_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("person_kind", sa.String(length=16), nullable=False),
        sa.Column("mis_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("display_name", sa.String(length=400), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("year_group", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("establishment_id", "person_kind", "mis_id", name="uq_users_mis_link"),
        sa.UniqueConstraint("establishment_id", "username", name="uq_users_username"),
    )
    op.create_table(
        "directory_memberships",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["directory_groups.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["directory_users.id"],
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", "role"),
    )
    with op.batch_alter_table("directory_memberships", schema=None) as batch_op:
        batch_op.create_index("ix_memberships_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("directory_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_memberships_user")

    op.drop_table("directory_memberships")
    op.drop_table("directory_users")
    op.drop_table("directory_sync_state")
    op.drop_table("directory_sync_runs")
    op.drop_table("directory_groups")
    with op.batch_alter_table("directory_audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_establishment_run")

    op.drop_table("directory_audit_log")
