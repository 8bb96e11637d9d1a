"""existing users and reserved usernames

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:18:44.668857
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_existing_users",
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=24), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("mis_id", sa.String(length=64), nullable=True),
        sa.Column("upn", sa.String(length=13), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "username"),
    )
    op.create_table(
        "directory_reserved_usernames",
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "username"),
    )


def downgrade() -> None:
    op.drop_table("directory_reserved_usernames")
    op.drop_table("directory_existing_users")
