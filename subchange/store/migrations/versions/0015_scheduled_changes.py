"""Changes at the period end (issue 24, SPEC section 10): at most one scheduled change per
subscription, the slot naming the change that holds it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'scheduled_change',
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('workflow_id', sa.String(length=80), nullable=False),
        sa.Column('effective_date', sa.Date(), nullable=False),
        sa.Column('replaced', sa.String(length=80), nullable=True),
        sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id']),
        sa.PrimaryKeyConstraint('subscription_id'),
        sa.UniqueConstraint('workflow_id'),
    )


def downgrade() -> None:
    op.drop_table('scheduled_change')
