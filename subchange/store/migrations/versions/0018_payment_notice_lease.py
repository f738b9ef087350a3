"""The payment-failed notice is sent under a lease, as the invoice email is (0004): two attempts
of the step that overlap (one timed out, still running beside its retry) never both send it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payment_wait') as batch:
        batch.add_column(sa.Column('notice_holder', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('notice_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_wait') as batch:
        batch.drop_column('notice_until')
        batch.drop_column('notice_holder')
