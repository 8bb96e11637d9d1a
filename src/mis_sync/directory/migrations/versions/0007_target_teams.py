"""class teams made from target classes (Microsoft 365)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_target_teams",
        sa.Column("establishment_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("container_key", sa.String(length=250), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("establishment_id", "target", "container_key"),
    )


def downgrade() -> None:
    op.drop_table("directory_target_teams")
