"""An invoice keeps what it was issued with (SPEC section 14): the issuer (name, address,
registration number), the language it is written in and the recipient's name, so it reads the
same whenever it is sent or sent again. Invoices from before keep NULL and are drawn as then.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.add_column(sa.Column('seller', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('billed_to', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.drop_column('billed_to')
        batch.drop_column('locale')
        batch.drop_column('seller')
