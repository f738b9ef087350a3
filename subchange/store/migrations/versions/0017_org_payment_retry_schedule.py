"""Payment recovery per customer (issue 24): an organisation's own waits between a declined
charge's attempts, instead of PAYMENT_RETRY_SCHEDULE's.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('org') as batch:
        batch.add_column(sa.Column('payment_retry_schedule', sa.String(length=200),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('org') as batch:
        batch.drop_column('payment_retry_schedule')
