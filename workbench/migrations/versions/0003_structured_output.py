"""structured output, tools and cost detail

A version can carry a response format (JSON Schema), tools and a tool choice; a run keeps the tool
calls its reply made and the cached prompt tokens and reasoning tokens its provider reported.
Every new column is nullable: existing rows read as "none" / "not reported".

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("promptversion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_format", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tools", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tool_choice", sa.JSON(), nullable=True))
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tool_calls", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("cached_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reasoning_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("reasoning_tokens")
        batch_op.drop_column("cached_tokens")
        batch_op.drop_column("tool_calls")
    with op.batch_alter_table("promptversion", schema=None) as batch_op:
        batch_op.drop_column("tool_choice")
        batch_op.drop_column("tools")
        batch_op.drop_column("response_format")
