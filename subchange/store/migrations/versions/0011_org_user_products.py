"""The products assigned to each user move from a JSON list on org_user to rows of
org_user_product, indexed by (org_id, product): the seat floor (R2, R4) becomes a count the
database answers from the index, so a change of an organisation of 10,000 users costs what one of
10 does (issue 10).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORG_USER = sa.table('org_user', sa.column('id', sa.Integer), sa.column('org_id', sa.String),
                    sa.column('products', sa.JSON))
ORG_USER_PRODUCT = sa.table('org_user_product', sa.column('user_id', sa.Integer),
                            sa.column('product', sa.String), sa.column('org_id', sa.String))


def _products(value: str | list[str] | None) -> list[str]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def upgrade() -> None:
    op.create_table(
        'org_user_product',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('product', sa.String(length=32), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['org.id']),
        sa.ForeignKeyConstraint(['user_id'], ['org_user.id']),
        sa.PrimaryKeyConstraint('user_id', 'product'),
    )
    op.create_index('ix_org_user_product_org_product', 'org_user_product',
                    ['org_id', 'product'])
    connection = op.get_bind()
    rows = [{"user_id": user_id, "product": product, "org_id": org_id}
            for user_id, org_id, products in connection.execute(
                sa.select(ORG_USER.c.id, ORG_USER.c.org_id, ORG_USER.c.products))
            for product in dict.fromkeys(_products(products))]
    if rows:
        connection.execute(ORG_USER_PRODUCT.insert(), rows)
    with op.batch_alter_table('org_user') as batch:
        batch.drop_column('products')


def downgrade() -> None:
    with op.batch_alter_table('org_user') as batch:
        batch.add_column(sa.Column('products', sa.JSON(), nullable=False,
                                   server_default='[]'))
    connection = op.get_bind()
    products: dict[int, list[str]] = {}
    for user_id, product in connection.execute(
            sa.select(ORG_USER_PRODUCT.c.user_id, ORG_USER_PRODUCT.c.product)
            .order_by(ORG_USER_PRODUCT.c.user_id, ORG_USER_PRODUCT.c.product)):
        products.setdefault(user_id, []).append(product)
    for user_id, assigned in products.items():
        connection.execute(ORG_USER.update().where(ORG_USER.c.id == user_id)
                           .values(products=assigned))
    with op.batch_alter_table('org_user') as batch:
        batch.alter_column('products', server_default=None)
    op.drop_index('ix_org_user_product_org_product', table_name='org_user_product')
    op.drop_table('org_user_product')
