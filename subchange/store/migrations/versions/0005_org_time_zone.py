"""The organisation's time zone, whose calendar dates its changes (issue 9, item 9).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('org') as batch:
        batch.add_column(sa.Column('time_zone', sa.String(length=64), nullable=False,
                                   server_default='UTC'))


def downgrade() -> None:
    with op.batch_alter_table('org') as batch:
        batch.drop_column('time_zone')
