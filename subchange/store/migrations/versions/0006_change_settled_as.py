"""How a change settled, applied or withdrawn, so an apply attempt still running for a change
whose charge was refunded can't commit (issue 9: a late apply after a takeover).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('change_record') as batch:
        batch.add_column(sa.Column('settled_as', sa.String(length=16), nullable=True))
    op.execute("UPDATE change_record SET settled_as = 'applied' WHERE workflow_id IN "
               "(SELECT workflow_id FROM applied_change)")


def downgrade() -> None:
    with op.batch_alter_table('change_record') as batch:
        batch.drop_column('settled_as')
