"""Payment recovery (issue 24, SPEC section 11): the changes whose charge was declined, so a new
card of their organisation wakes them, and the one notice to its billing contact.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'payment_wait',
        sa.Column('workflow_id', sa.String(length=80), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('product', sa.String(length=32), nullable=False),
        sa.Column('waiting', sa.Boolean(), nullable=False),
        sa.Column('declines', sa.Integer(), nullable=False),
        sa.Column('notice_status', sa.String(length=16), nullable=True),
        sa.Column('notice_message_id', sa.String(length=200), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['org.id']),
        sa.PrimaryKeyConstraint('workflow_id'),
    )
    op.create_index('ix_payment_wait_org_waiting', 'payment_wait', ['org_id', 'waiting'])


def downgrade() -> None:
    op.drop_index('ix_payment_wait_org_waiting', table_name='payment_wait')
    op.drop_table('payment_wait')
