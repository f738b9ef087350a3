"""Webhooks (issue 23, SPEC section 13): the endpoints events are POSTed to, with their signing
secrets; the outbox of events, written in the transaction of the state change each reports; and
one delivery per event and endpoint subscribed to it, pending until its relay delivers it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('previous_secret', sa.String(length=100), nullable=True),
        sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'outbox_event',
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('workflow_id', sa.String(length=80), nullable=False),
        sa.Column('type', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sequence'),
        sa.UniqueConstraint('id'),
    )
    op.create_index('ix_outbox_event_workflow_id', 'outbox_event', ['workflow_id'])
    op.create_table(
        'webhook_delivery',
        sa.Column('event_id', sa.String(length=40), nullable=False),
        sa.Column('endpoint_id', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['outbox_event.id']),
        sa.PrimaryKeyConstraint('event_id', 'endpoint_id'),
    )
    op.create_index('ix_webhook_delivery_endpoint_status', 'webhook_delivery',
                    ['endpoint_id', 'status'])


def downgrade() -> None:
    op.drop_index('ix_webhook_delivery_endpoint_status', table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_index('ix_outbox_event_workflow_id', table_name='outbox_event')
    op.drop_table('outbox_event')
    op.drop_table('webhook_endpoint')
