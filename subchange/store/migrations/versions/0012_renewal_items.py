"""Amounts carried to the next renewal invoice (issue 22): a card payer's change whose total is
below the gateway's minimum charge is applied without a charge, and its total, with its tax,
becomes a pending item of the subscription's next renewal, one per change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'renewal_item',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workflow_id', sa.String(length=80), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('product', sa.String(length=32), nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(14, 2), nullable=False),
        sa.Column('tax', sa.Numeric(14, 2), nullable=False),
        sa.Column('total', sa.Numeric(14, 2), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('invoice_number', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['org.id']),
        sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('workflow_id'),
    )
    op.create_index('ix_renewal_item_org_id', 'renewal_item', ['org_id'])
    op.create_index('ix_renewal_item_subscription_status', 'renewal_item',
                    ['subscription_id', 'status'])


def downgrade() -> None:
    op.drop_index('ix_renewal_item_subscription_status', table_name='renewal_item')
    op.drop_index('ix_renewal_item_org_id', table_name='renewal_item')
    op.drop_table('renewal_item')
