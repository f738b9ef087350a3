"""The relay's side of the webhooks: an endpoint's pending deliveries in outbox order, what one
attempt sends, and how it ended. Each function is one transaction and commits; the moves of a
delivery are compare-and-set on `pending`, so an attempt that outlived a replay or a removal
changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from subchange.store.tables import OutboxEvent, WebhookDelivery, WebhookEndpoint, utcnow

# SQLModel declares no __table__ (SQLAlchemy's declarative mapping sets it).
ERROR_MAX = WebhookDelivery.__table__.c["last_error"].type.length  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Attempt:
    """What one attempt of a delivery needs. Secrets: the current one first, then a rotated one
    that still signs."""

    url: str
    secrets: tuple[str, ...]
    event_type: str
    payload: dict
    delivery_status: str
    endpoint_status: str

    def __repr__(self) -> str:  # never the secrets
        return f"Attempt({self.event_type} to {self.endpoint_status} endpoint)"


def endpoint_status(*, session: Session, endpoint_id: str) -> str | None:
    row = session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    return row.status if row is not None else None


def pending(*, session: Session, endpoint_id: str, limit: int) -> list[str]:
    """The ids of the endpoint's pending events, in outbox order (an event of a change is
    always after the change's earlier events)."""
    return list(session.execute(
        select(WebhookDelivery.event_id)
        .join(OutboxEvent, col(OutboxEvent.id) == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .order_by(col(OutboxEvent.sequence)).limit(limit)).scalars())


def attempt(*, session: Session, endpoint_id: str, event_id: str, now: datetime
            ) -> Attempt | None:
    """None when the endpoint or the delivery is gone (removed)."""
    row = session.execute(
        select(WebhookEndpoint, WebhookDelivery, OutboxEvent)
        .join(WebhookDelivery, col(WebhookDelivery.endpoint_id) == WebhookEndpoint.id)
        .join(OutboxEvent, col(OutboxEvent.id) == WebhookDelivery.event_id)
        .where(WebhookEndpoint.id == endpoint_id, WebhookDelivery.event_id == event_id)
    ).one_or_none()
    if row is None:
        return None
    endpoint, delivery, event = row
    keys = [endpoint.secret]
    until = endpoint.previous_secret_until
    if until is not None and until.tzinfo is None:  # SQLite: written in UTC
        until = until.replace(tzinfo=now.tzinfo)
    if endpoint.previous_secret and until is not None and until > now:
        keys.append(endpoint.previous_secret)
    return Attempt(url=endpoint.url, secrets=tuple(keys), event_type=event.type,
                   payload=event.payload, delivery_status=delivery.status,
                   endpoint_status=endpoint.status)


def _move(session: Session, endpoint_id: str, event_id: str, **values) -> bool:
    moved = session.exec(
        sa.update(WebhookDelivery)
        .where(col(WebhookDelivery.endpoint_id) == endpoint_id,
               col(WebhookDelivery.event_id) == event_id,
               col(WebhookDelivery.status) == "pending")
        .values(attempts=WebhookDelivery.attempts + 1, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def _endpoint(session: Session, endpoint_id: str, expected: tuple[str, ...], to: str) -> bool:
    moved = session.exec(
        sa.update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.status).in_(expected))
        .values(status=to, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def delivered(*, session: Session, endpoint_id: str, event_id: str, status_code: int) -> bool:
    """Delivered; a failing endpoint that answers is active again (True when it was failing)."""
    now = utcnow()
    _move(session, endpoint_id, event_id, status="delivered", last_status_code=status_code,
          last_error=None, next_attempt_at=None, delivered_at=now)
    recovered = _endpoint(session, endpoint_id, ("failing",), "active")
    session.commit()
    return recovered


def retrying(*, session: Session, endpoint_id: str, event_id: str, status_code: int | None,
             error: str, next_attempt_at: datetime) -> None:
    _move(session, endpoint_id, event_id, last_status_code=status_code,
          last_error=error[:ERROR_MAX], next_attempt_at=next_attempt_at)
    session.commit()


def exhausted(*, session: Session, endpoint_id: str, event_id: str, status_code: int | None,
              error: str) -> bool:
    """The delivery failed for good and its endpoint is failing (True when it was active)."""
    _move(session, endpoint_id, event_id, status="failed", last_status_code=status_code,
          last_error=error[:ERROR_MAX], next_attempt_at=None)
    newly = _endpoint(session, endpoint_id, ("active",), "failing")
    session.commit()
    return newly


def gone(*, session: Session, endpoint_id: str, event_id: str, status_code: int) -> None:
    """The endpoint answered 410 Gone: it is disabled, and what it was still owed failed."""
    _move(session, endpoint_id, event_id, status="failed", last_status_code=status_code,
          last_error=f"HTTP {status_code}: the endpoint is gone; disabled", next_attempt_at=None)
    session.execute(
        sa.update(WebhookDelivery)
        .where(col(WebhookDelivery.endpoint_id) == endpoint_id,
               col(WebhookDelivery.status) == "pending")
        .values(status="failed", last_error="not sent: the endpoint was disabled (410 Gone)",
                next_attempt_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    _endpoint(session, endpoint_id, ("active", "failing"), "disabled")
    session.commit()
