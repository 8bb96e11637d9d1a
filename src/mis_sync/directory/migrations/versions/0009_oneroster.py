"""OneRoster API: registered apps, and when each membership was added (enrollment dateLastModified)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_oneroster_apps",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("schools", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("field_groups", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(length=256), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id"),
    )
    # SQLite cannot ADD COLUMN with a non-constant default: the table is copied (recreate) there.
    # The database stamps each new membership, so apply needs no change; existing rows get the
    # migration's time (their true add time is not known).
    with op.batch_alter_table("directory_memberships", recreate="always") as batch:
        batch.add_column(
            sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("directory_memberships") as batch:
        batch.drop_column("added_at")
    op.drop_table("directory_oneroster_apps")
