"""Signature state of each device's latest ``status`` and ``alarm`` message.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_signature", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("alarm_signature", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("alarm_signature")
        batch_op.drop_column("status_signature")
