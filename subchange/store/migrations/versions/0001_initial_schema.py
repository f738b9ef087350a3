"""Initial schema: the tables `create_all` made before migrations existed.

`subchange.store.migrate` adopts a database made that way as this revision, so this script must not
change.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 11:30:41.242203
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # autogenerate writes sqlmodel.sql.sqltypes.AutoString for str columns
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_org_id'), ['org_id'], unique=False)

    op.create_table('change_record',
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workflow_id')
    )
    with op.batch_alter_table('change_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_record_org_id'), ['org_id'], unique=False)

    op.create_table('gateway_call',
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workflow_id', 'step')
    )
    op.create_table('invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('emailed_to', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('email_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('quote', sa.JSON(), nullable=False),
    sa.Column('payment', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number'),
    sa.UniqueConstraint('workflow_id')
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_org_id'), ['org_id'], unique=False)

    op.create_table('org',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('billing_email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('refund_ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('invoice_number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('change_link', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workflow_id')
    )
    with op.batch_alter_table('refund_ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_ticket_org_id'), ['org_id'], unique=False)

    op.create_table('sales_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workflow_id')
    )
    with op.batch_alter_table('sales_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_case_org_id'), ['org_id'], unique=False)

    op.create_table('org_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('primary_contact', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('products', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['org.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'email')
    )
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_user_org_id'), ['org_id'], unique=False)

    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('plan', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('pricing_model', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('billing_period', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('payment_method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('gateway_customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('gateway_payment_method_id', sqlmodel.sql.sqltypes.AutoString(length=64),
              nullable=True),
    sa.Column('card_last4', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('disabled_features', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['org.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'product')
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_org_id'), ['org_id'], unique=False)

    op.create_table('applied_change',
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], ),
    sa.PrimaryKeyConstraint('workflow_id')
    )
    with op.batch_alter_table('applied_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applied_change_subscription_id'),
                              ['subscription_id'], unique=False)

    op.create_table('subscription_claim',
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], ),
    sa.PrimaryKeyConstraint('subscription_id')
    )


def downgrade() -> None:
    op.drop_table('subscription_claim')
    with op.batch_alter_table('applied_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applied_change_subscription_id'))

    op.drop_table('applied_change')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_org_id'))

    op.drop_table('subscription')
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_user_org_id'))

    op.drop_table('org_user')
    with op.batch_alter_table('sales_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_case_org_id'))

    op.drop_table('sales_case')
    with op.batch_alter_table('refund_ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_ticket_org_id'))

    op.drop_table('refund_ticket')
    op.drop_table('org')
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_org_id'))

    op.drop_table('invoice')
    op.drop_table('gateway_call')
    with op.batch_alter_table('change_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_record_org_id'))

    op.drop_table('change_record')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_org_id'))

    op.drop_table('audit_log')
