"""users a target cannot take yet (unresolved or suspended), so their memberships wait

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_target_waiting_users",
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("user_key", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("directory_hash", sa.String(length=32), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "target", "user_key"),
    )


def downgrade() -> None:
    op.drop_table("directory_target_waiting_users")
