"""An organisation's tax profile (SPEC section 14): its country, whether it is tax exempt, and
the language of its invoices. Organisations billed in yen are taken to be Japanese, as the
fixture's default has it; others keep no country until a fixture load says which.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('org') as batch:
        batch.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch.add_column(sa.Column('tax_exempt', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=False,
                                   server_default='en'))
    op.execute("UPDATE org SET country = 'JP', locale = 'ja' WHERE currency = 'JPY'")


def downgrade() -> None:
    with op.batch_alter_table('org') as batch:
        batch.drop_column('locale')
        batch.drop_column('tax_exempt')
        batch.drop_column('country')
