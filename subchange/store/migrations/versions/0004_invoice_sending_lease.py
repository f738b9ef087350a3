"""The invoice email's lease: which attempt sends it, and until when (issue 9, item 8).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.add_column(sa.Column('sending_holder', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('sending_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.drop_column('sending_until')
        batch.drop_column('sending_holder')
