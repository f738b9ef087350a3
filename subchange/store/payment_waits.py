"""The changes waiting for payment (SPEC section 11), so a new card of their organisation wakes
them, and the one notice of each to the billing contact. Each function is one transaction and
commits.

A card replaced while a change records its wait is never missed: `record_wait` writes the wait
before it reads the card (under the subscription row's lock), and a card update writes the card
before it reads the waits (subchange/app/payments.py). Whichever commits second sees the other:
the change retries at once because its card changed, or the update wakes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from subchange.store.tables import PaymentWait, Subscription, utcnow


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


def mark_notice_sent(*, session: Session, workflow_id: str, message_id: str) -> None:
    session.execute(sa.update(PaymentWait).where(col(PaymentWait.workflow_id) == workflow_id)
                    .values(notice_status="sent", notice_message_id=message_id,
                            updated_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()
