"""Gap-free invoice numbers per year (SPEC section 14; one issuer per deployment): a counter
row moved in the transaction that issues the invoice. A year's counter starts after the highest
number that year already has, so invoices numbered before (from the row id) keep theirs and no
number repeats.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'invoice_counter',
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('last', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('year'),
    )


def downgrade() -> None:
    op.drop_table('invoice_counter')
