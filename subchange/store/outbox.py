"""The outbox of events for backends (SPEC section 13). An event is added to the transaction of
the state change it reports, never committed here: committed with it, or rolled back with it,
so an event is never lost and never invented. With it go its deliveries, one per endpoint
subscribed to its type at that moment (not disabled), which the endpoint's relay workflow
delivers in sequence order.

Waking the relays: a session made by `waking(factory, wake)` calls `wake(endpoint ids)` after a
commit that added deliveries (SQLAlchemy's after_commit), so a worker signals the relays of those
endpoints at once. `wake` is best effort and must never raise nor block; a wake lost (the worker
killed between the commit and the signal) is made up by each relay's poll of the outbox.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from subchange.domain.webhooks import EVENT_TYPES, change_ref, scrubbed, subscribes_to
from subchange.store.db import SessionFactory
from subchange.store.tables import (
    ChangeRecord,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)

log = logging.getLogger(__name__)

Wake = Callable[[Collection[str]], None]
_TO_WAKE, _WAKE = "outbox.to_wake", "outbox.wake"  # keys of Session.info
PRUNE_AT_MOST = 1000  # events deleted by one prune (the sweep's, every CHANGE_SWEEP_EVERY)


@dataclass(frozen=True)
class NewEvent:
    """An event to record with a state change, should the change happen (store functions that
    change state by compare-and-set take one). Its data is named by the change's workflow id,
    request id, org and product, read from the change record in the same transaction."""

    type: str
    workflow_id: str
    data: dict[str, Any]

    def record(self, session: Session) -> OutboxEvent:
        return record_event(session=session, type=self.type, workflow_id=self.workflow_id,
                            data={**change_identity(session=session,
                                                    workflow_id=self.workflow_id), **self.data})


def change_identity(*, session: Session, workflow_id: str) -> dict[str, str]:
    """The change's workflow id, request id, org and product, as every event's data names them
    (only the workflow id when it has no record)."""
    record = session.get(ChangeRecord, workflow_id)
    if record is None:
        return {"workflow_id": workflow_id}
    return change_ref(workflow_id=workflow_id, request_id=record.request_id,
                      org_id=record.org_id, product=record.product)


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(16)}"


def record_event(*, session: Session, type: str, workflow_id: str, data: dict[str, Any],
                 event_id: str | None = None) -> OutboxEvent:
    """Add the event and its deliveries to the caller's transaction (never commits)."""
    assert type in EVENT_TYPES, type
    now = utcnow()
    event = OutboxEvent(id=event_id or new_event_id(), workflow_id=workflow_id, type=type,
                        created_at=now,
                        payload={"type": type, "timestamp": now.isoformat(),
                                 "data": scrubbed(data)})
    session.add(event)
    endpoints = [endpoint_id for endpoint_id, events in session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events)
        .where(WebhookEndpoint.status != "disabled")) if subscribes_to(events, type)]
    for endpoint_id in endpoints:
        session.add(WebhookDelivery(event_id=event.id, endpoint_id=endpoint_id))
    wake_after_commit(session, endpoints)
    return event


def record_once(*, session: Session, event_id: str, type: str, workflow_id: str,
                data: dict[str, Any]) -> bool:
    """Record the event under `event_id` (a key its writer derives from what it reports) and
    commit, unless it is recorded already: False then, and nothing is added."""
    if session.exec(select(OutboxEvent.sequence).where(OutboxEvent.id == event_id)).first():
        return False
    record_event(session=session, type=type, workflow_id=workflow_id, event_id=event_id,
                 data={**change_identity(session=session, workflow_id=workflow_id), **data})
    try:
        session.commit()
    except IntegrityError:  # a concurrent attempt recorded it first
        session.rollback()
        if session.exec(select(OutboxEvent.sequence).where(OutboxEvent.id == event_id)).first():
            return False
        raise
    return True


def wake_after_commit(session: Session, endpoint_ids: Collection[str]) -> None:
    """Wake these endpoints' relays once the caller's transaction commits."""
    if endpoint_ids:
        session.info.setdefault(_TO_WAKE, set()).update(endpoint_ids)


def waking(factory: SessionFactory, wake: Wake) -> SessionFactory:
    """Sessions that wake the relays of the deliveries they committed."""
    def new_session() -> Session:
        session = factory()
        session.info[_WAKE] = wake
        return session

    return new_session


@sa.event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    endpoints, wake = session.info.pop(_TO_WAKE, None), session.info.get(_WAKE)
    if endpoints and wake is not None:
        try:
            wake(frozenset(endpoints))
        except Exception:  # the commit stands; each relay polls as well
            log.warning("waking the webhook relays of %s failed", sorted(endpoints),
                        exc_info=True)


@sa.event.listens_for(Session, "after_rollback")
def _forget_wakes(session: Session) -> None:
    session.info.pop(_TO_WAKE, None)


def prune(*, session: Session, before: datetime, limit: int = PRUNE_AT_MOST) -> int:
    """Delete the events written before `before` that no endpoint is still owed: delivered to
    every endpoint they were for (or for none, or for endpoints since removed), with their
    deliveries. An event whose delivery is pending or failed stays, for its relay or for
    `webhook failed` / `webhook replay`. At most `limit`, oldest first; how many went."""
    owed = select(WebhookDelivery.event_id).where(WebhookDelivery.status != "delivered",
                                                 col(WebhookDelivery.endpoint_id).in_(
                                                     select(WebhookEndpoint.id)))
    old = list(session.exec(
        select(OutboxEvent.id)
        .where(col(OutboxEvent.created_at) < before, col(OutboxEvent.id).not_in(owed))
        .order_by(col(OutboxEvent.sequence)).limit(limit)))
    if not old:
        return 0
    session.execute(sa.delete(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(old))
                    .execution_options(synchronize_session=False))
    session.execute(sa.delete(OutboxEvent).where(col(OutboxEvent.id).in_(old))
                    .execution_options(synchronize_session=False))
    return len(old)
