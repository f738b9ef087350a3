"""The slot of a subscription's scheduled change (SPEC section 10): at most one change waits for
a subscription's period end. A change takes the slot while it holds the subscription's claim
(validation took it), so two changes never race for it; it frees its claim in the same
transaction, since an immediate change must stay possible while it waits. The slot is freed when
its change ends (close_change), taken over from a change that ended without closing, or taken by
a change that replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, update
from sqlmodel import Session, col

from subchange.domain.contracts import Quote
from subchange.domain.webhooks import scheduled_data
from subchange.store.outbox import NewEvent
from subchange.store.tables import ScheduledChange, SubscriptionClaim, utcnow


@dataclass(frozen=True)
class Scheduled:
    """The slot taken (`replaced`: the change it was taken from, to be told), or refused
    because `holder`, a live change, has it."""

    holder: str | None = None
    replaced: str | None = None


def schedule(*, session: Session, subscription_id: int, workflow_id: str, quote: Quote,
             replace: bool, has_ended: Callable[[str], bool]) -> Scheduled:
    """Take the subscription's slot for this change, record change.scheduled and free the
    claim, in one transaction; a second attempt finds the slot its own and changes nothing."""
    assert quote.effective_date is not None
    slot = session.get(ScheduledChange, subscription_id)
    if slot is not None and slot.workflow_id == workflow_id:
        return Scheduled(replaced=slot.replaced)
    replaced = None
    if slot is None:
        session.add(ScheduledChange(subscription_id=subscription_id, workflow_id=workflow_id,
                                    effective_date=quote.effective_date))
    else:
        holder = slot.workflow_id
        if has_ended(holder):  # ended without closing: its slot is free to take
            pass
        elif replace:
            replaced = holder
        else:
            session.rollback()
            return Scheduled(holder=holder)
        session.execute(
            update(ScheduledChange)
            .where(col(ScheduledChange.subscription_id) == subscription_id,
                   col(ScheduledChange.workflow_id) == holder)
            .values(workflow_id=workflow_id, effective_date=quote.effective_date,
                    replaced=replaced, scheduled_at=utcnow())
            .execution_options(synchronize_session=False))
    NewEvent(type="change.scheduled", workflow_id=workflow_id,
             data=scheduled_data({}, quote=quote)).record(session)
    session.execute(delete(SubscriptionClaim).where(
        col(SubscriptionClaim.workflow_id) == workflow_id))
    session.commit()
    return Scheduled(replaced=replaced)


@dataclass(frozen=True)
class Slot:
    workflow_id: str
    effective_date: date


def slot_of(*, session: Session, subscription_id: int) -> Slot | None:
    """The change holding the subscription's slot and the date it takes effect, if any."""
    slot = session.get(ScheduledChange, subscription_id)
    return Slot(slot.workflow_id, slot.effective_date) if slot is not None else None


def holder_of(*, session: Session, subscription_id: int) -> str | None:
    slot = slot_of(session=session, subscription_id=subscription_id)
    return slot.workflow_id if slot is not None else None


def free(*, session: Session, workflow_id: str) -> None:
    """Free the slot this change holds, if any, in the caller's transaction."""
    session.execute(delete(ScheduledChange).where(col(ScheduledChange.workflow_id) == workflow_id))
