"""Invoices and refund tickets carry their tax (SPEC section 14): an invoice's amount is its
total, with the tax-exclusive subtotal and the tax beside it; a refund ticket's amount is
tax-inclusive, with its tax. Rows from before keep NULL: they were issued without tax.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.add_column(sa.Column('subtotal', sa.Numeric(14, 2), nullable=True))
        batch.add_column(sa.Column('tax', sa.Numeric(14, 2), nullable=True))
    with op.batch_alter_table('refund_ticket') as batch:
        batch.add_column(sa.Column('tax', sa.Numeric(14, 2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('refund_ticket') as batch:
        batch.drop_column('tax')
    with op.batch_alter_table('invoice') as batch:
        batch.drop_column('tax')
        batch.drop_column('subtotal')
