"""initial passwords, encrypted (directory_credentials)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_credentials",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_run", sa.String(length=250), nullable=False),
        sa.Column("exported_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["directory_users.id"], name="fk_credentials_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("directory_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_credentials_created_run", ["created_run"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("directory_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_credentials_created_run")

    op.drop_table("directory_credentials")
