"""version origin source: where imported content came from

An imported version has source "import"; origin_source keeps the source it had where it was
exported (manual, dspy, ...), so an export -> import -> export round trip reports the same
provenance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("promptversion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("promptversion", schema=None) as batch_op:
        batch_op.drop_column("origin_source")
