"""The idempotency ledger of payment-gateway side effects, one entry per (workflow id, step):
what was started, its gateway id once known, and how it ended."""

from __future__ import annotations

from sqlmodel import Session

from subchange.store.tables import GatewayCall, utcnow


def gateway_call(*, session: Session, workflow_id: str, step: str) -> GatewayCall | None:
    return session.get(GatewayCall, (workflow_id, step))


def save_gateway_call(*, session: Session, call: GatewayCall) -> None:
    """Insert or update the entry; `call` may be a row the caller kept from an earlier session."""
    row = session.merge(call)
    row.updated_at = utcnow()
    session.commit()
