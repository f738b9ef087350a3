"""Webhook endpoints as operators manage them (`starter.py webhook`, and the HTTP API's
/v1/webhook-endpoints for support keys): add, list, rotate a secret, remove; the events whose
delivery failed for good, and replaying one.

Every function works in the caller's transaction and never commits; with a session from
`outbox.waking`, the commit wakes the relay of each endpoint concerned (an added endpoint's relay
starts, a replayed event is delivered at once, a removed endpoint's relay ends).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import overload

import sqlalchemy as sa
from sqlmodel import Session, col, select

from subchange.domain.webhooks import EndpointRefused, endpoint_url, event_types
from subchange.store.outbox import wake_after_commit
from subchange.store.tables import OutboxEvent, WebhookDelivery, WebhookEndpoint, utcnow

__all__ = ["EndpointRefused", "FailedDelivery", "add_endpoint", "endpoint_view",
           "failed_events", "list_endpoints", "remove_endpoint", "replay_event",
           "rotate_secret"]

SECRET_OVERLAP = timedelta(hours=24)  # WEBHOOK_SECRET_OVERLAP's default


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def add_endpoint(*, session: Session, url: str, events: list[str]
                 ) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint receiving `events` (empty: every type) at `url`, and its secret.
    Raises EndpointRefused naming the field (url, events)."""
    row = WebhookEndpoint(id=f"we_{secrets.token_hex(12)}", url=endpoint_url(url),
                          events=event_types(list(events)), secret=new_secret())
    session.add(row)
    wake_after_commit(session, [row.id])  # its relay starts
    return row, row.secret


def list_endpoints(*, session: Session) -> list[WebhookEndpoint]:
    """Every endpoint, newest first."""
    return list(session.exec(select(WebhookEndpoint).order_by(
        col(WebhookEndpoint.created_at).desc(), WebhookEndpoint.id)))


def failing_count(*, session: Session) -> int:
    """How many endpoints are failing: a delivery ran out of attempts and none succeeded since."""
    return session.exec(select(sa.func.count()).select_from(WebhookEndpoint)
                        .where(WebhookEndpoint.status == "failing")).one()


def endpoint_view(row: WebhookEndpoint, *, now: datetime | None = None) -> dict:
    """An endpoint as operators see it: never a secret; `events` empty means every type;
    `previous_secret_until`: while a rotation's old secret still signs, until when."""
    now = now or utcnow()
    until = _aware(row.previous_secret_until)
    overlap = row.previous_secret is not None and until is not None and until > now
    return {"id": row.id, "url": row.url, "events": list(row.events),
            "status": row.status, "created_at": _iso(row.created_at),
            "previous_secret_until": _iso(until) if overlap else None}


def rotate_secret(*, session: Session, endpoint_id: str, overlap: timedelta = SECRET_OVERLAP
                  ) -> str | None:
    """A new secret for the endpoint; the current one still signs (both signatures are sent)
    for `overlap`. None when there is no such endpoint."""
    row = session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    if row is None:
        return None
    now = utcnow()
    row.previous_secret, row.previous_secret_until = row.secret, now + overlap
    row.secret, row.updated_at = new_secret(), now
    session.add(row)
    return row.secret


def enable_endpoint(*, session: Session, endpoint_id: str) -> WebhookEndpoint | None:
    """An endpoint disabled by a 410 Gone made active again, once its receiver is back: it is
    owed the events from now on, and what failed meanwhile can be replayed (failed_events,
    replay_event). The endpoint as it now is (unchanged unless it was disabled: a failing one
    becomes active by itself at its next delivery); None when there is no such endpoint."""
    row = session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    if row is None:
        return None
    if row.status == "disabled":
        row.status, row.updated_at = "active", utcnow()
        session.add(row)
        wake_after_commit(session, [endpoint_id])  # its relay starts again
    return row


def remove_endpoint(*, session: Session, endpoint_id: str) -> bool:
    """Remove the endpoint and what it was owed; False when there is no such endpoint."""
    session.execute(sa.delete(WebhookDelivery)
                    .where(col(WebhookDelivery.endpoint_id) == endpoint_id))
    removed = session.exec(sa.delete(WebhookEndpoint)
                           .where(col(WebhookEndpoint.id) == endpoint_id)
                           .execution_options(synchronize_session=False))
    if removed.rowcount == 1:
        wake_after_commit(session, [endpoint_id])  # its relay sees it gone and ends
    return removed.rowcount == 1


@dataclass(frozen=True)
class FailedDelivery:
    """An event an endpoint could not be delivered (its retries ran out, or it answered 410)."""

    event_id: str
    type: str
    workflow_id: str
    created_at: str
    endpoint_id: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    failed_at: str


def failed_events(*, session: Session) -> list[FailedDelivery]:
    """Every delivery that failed for good, oldest event first."""
    rows = session.execute(
        select(OutboxEvent, WebhookDelivery)
        .join(WebhookDelivery, col(WebhookDelivery.event_id) == OutboxEvent.id)
        .where(WebhookDelivery.status == "failed")
        .order_by(col(OutboxEvent.sequence), WebhookDelivery.endpoint_id))
    return [FailedDelivery(event_id=event.id, type=event.type, workflow_id=event.workflow_id,
                           created_at=_iso(event.created_at), endpoint_id=delivery.endpoint_id,
                           attempts=delivery.attempts,
                           last_status_code=delivery.last_status_code,
                           last_error=delivery.last_error, failed_at=_iso(delivery.updated_at))
            for event, delivery in rows]


def replay_event(*, session: Session, event_id: str) -> bool:
    """Deliver the event again, with the same webhook-id: to each endpoint whose delivery of it
    failed, or, when none failed, to each endpoint it was delivered to (one that lost it);
    never to a disabled endpoint. Each is pending again, its attempts counted afresh. False
    when there is no such event or nothing to send it to."""
    owed = list(session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.status, WebhookEndpoint.status)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.event_id == event_id)))
    wanted = "failed" if any(status == "failed" for _, status, _ in owed) else "delivered"
    endpoints = [endpoint_id for endpoint_id, status, endpoint_status in owed
                 if status == wanted and endpoint_status != "disabled"]
    if not endpoints:
        return False
    session.execute(
        sa.update(WebhookDelivery)
        .where(col(WebhookDelivery.event_id) == event_id,
               col(WebhookDelivery.endpoint_id).in_(endpoints))
        .values(status="pending", attempts=0, last_status_code=None, last_error=None,
                next_attempt_at=None, delivered_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    wake_after_commit(session, endpoints)
    return True


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=utcnow().tzinfo)


@overload
def _iso(moment: datetime) -> str: ...
@overload
def _iso(moment: datetime | None) -> str | None: ...
def _iso(moment: datetime | None) -> str | None:
    aware = _aware(moment)
    return aware.isoformat() if aware is not None else None
