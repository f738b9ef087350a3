"""The changes waiting for payment (SPEC section 11), so a new card of their organisation wakes
them, and the one notice of each to the billing contact. Each function is one transaction and
commits.

A card replaced while a change records its wait is never missed: `record_wait` writes the wait
before it reads the card (under the subscription row's lock), and a card update writes the card
before it reads the waits (subchange/app/payments.py). Whichever commits second sees the other:
the change retries at once because its card changed, or the update wakes it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from subchange.store.tables import PaymentWait, Subscription, utcnow

_UPDATE = sa.update(PaymentWait).execution_options(synchronize_session=False)


def record_wait(*, session: Session, workflow_id: str, org_id: str, product: str,
                declines: int) -> str | None:
    """The change waits for payment after its `declines`-th decline; the payment method its
    subscription is charged to now (None: no card on file)."""
    row = session.get(PaymentWait, workflow_id)
    if row is None:
        row = PaymentWait(workflow_id=workflow_id, org_id=org_id, product=product)
    row.waiting, row.declines, row.updated_at = True, max(row.declines, declines), utcnow()
    session.add(row)
    session.flush()  # the wait first, then the card (see the module's docstring)
    method = session.execute(
        select(Subscription.gateway_payment_method_id)
        .where(Subscription.org_id == org_id, Subscription.product == product)
        .with_for_update()).scalar_one_or_none()
    session.commit()
    return method


def stop_waiting(*, session: Session, workflow_id: str) -> None:
    """The change ended: a new card no longer concerns it (in the caller's transaction)."""
    session.execute(sa.update(PaymentWait).where(col(PaymentWait.workflow_id) == workflow_id)
                    .values(waiting=False).execution_options(synchronize_session=False))


def waiting_changes(*, session: Session, org_id: str) -> list[str]:
    """The workflow ids of the organisation's changes waiting for payment, oldest first."""
    return list(session.execute(
        select(PaymentWait.workflow_id)
        .where(PaymentWait.org_id == org_id, col(PaymentWait.waiting).is_(True))
        .order_by(col(PaymentWait.updated_at), PaymentWait.workflow_id)).scalars())


def notice_sent(*, session: Session, workflow_id: str) -> bool:
    row = session.get(PaymentWait, workflow_id, populate_existing=True)
    return row is not None and row.notice_status == "sent"


def take_notice(*, session: Session, workflow_id: str, holder: str, until: datetime
                ) -> datetime | None:
    """Take the lease to send the change's notice: when none was sent or is being sent, when the
    lease of an earlier attempt ran out, or when `holder` has it. None when taken; otherwise
    until when another attempt holds it (or now, when the notice is sent already)."""
    now = utcnow()
    taken = session.exec(_UPDATE.where(
        col(PaymentWait.workflow_id) == workflow_id,
        sa.or_(col(PaymentWait.notice_status).is_(None),
               sa.and_(col(PaymentWait.notice_status) == "sending",
                       sa.or_(col(PaymentWait.notice_until).is_(None),
                              col(PaymentWait.notice_until) < now,
                              col(PaymentWait.notice_holder) == holder))),
    ).values(notice_status="sending", notice_holder=holder, notice_until=until))
    session.commit()
    if taken.rowcount == 1:
        return None
    row = session.get(PaymentWait, workflow_id, populate_existing=True)
    return now if row is None or row.notice_until is None else row.notice_until


def renew_notice(*, session: Session, workflow_id: str, holder: str, until: datetime) -> bool:
    renewed = session.exec(_UPDATE.where(
        col(PaymentWait.workflow_id) == workflow_id, col(PaymentWait.notice_status) == "sending",
        col(PaymentWait.notice_holder) == holder).values(notice_until=until))
    session.commit()
    return renewed.rowcount == 1


def release_notice(*, session: Session, workflow_id: str, holder: str) -> None:
    """Give the lease back after a send that failed (nothing went out)."""
    session.execute(_UPDATE.where(
        col(PaymentWait.workflow_id) == workflow_id, col(PaymentWait.notice_status) == "sending",
        col(PaymentWait.notice_holder) == holder).values(notice_status=None, notice_holder=None,
                                                         notice_until=None))
    session.commit()


def mark_notice_sent(*, session: Session, workflow_id: str, message_id: str) -> None:
    """The notice went out (by whichever attempt): sent, for good."""
    session.execute(_UPDATE.where(col(PaymentWait.workflow_id) == workflow_id)
                    .values(notice_status="sent", notice_message_id=message_id,
                            notice_holder=None, notice_until=None, updated_at=utcnow()))
    session.commit()
