"""A new card wakes the changes waiting for payment (SPEC section 11): every change of the
organisation in `awaiting_payment` is signalled `card_updated` and tries its charge at once,
instead of at its next scheduled attempt. Called after the new card is committed, by
`starter.py load` and `POST /v1/orgs/{org_id}/card`; subchange/store/payment_waits.py says why
a change recording its wait at that moment is not missed."""

from __future__ import annotations

import logging

from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from subchange.store import payment_waits
from subchange.store.db import SessionFactory
from subchange.store.tables import Subscription

CARD_UPDATED = "card_updated"  # the workflow's signal (workflows/messages.py)

log = logging.getLogger(__name__)


def cards_on_file(session: Session) -> dict[tuple[str, str], str | None]:
    """The payment method of every subscription: compared before and after a load, the
    organisations whose card it replaced."""
    return {(org, product): method for org, product, method in session.execute(
        select(Subscription.org_id, Subscription.product,
               Subscription.gateway_payment_method_id))}


def replaced(before: dict[tuple[str, str], str | None],
             after: dict[tuple[str, str], str | None]) -> list[str]:
    """The organisations with a subscription that had another card, or none, and has a new
    one (a new subscription has no change waiting for payment)."""
    return sorted({key[0] for key, method in after.items()
                   if method is not None and key in before and before[key] != method})


async def wake_changes_waiting_for_payment(client: Client, sessions: SessionFactory,
                                           org_id: str) -> list[str]:
    """Signal every change of the organisation waiting for payment; the workflow ids told. A
    change that ended meanwhile is no longer waiting (recorded, so it is not asked again)."""
    with sessions() as session:
        waiting = payment_waits.waiting_changes(session=session, org_id=org_id)
    told = []
    for workflow_id in waiting:
        try:
            await client.get_workflow_handle(workflow_id).signal(CARD_UPDATED)
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            with sessions() as session:  # it ended: a new card no longer concerns it
                payment_waits.stop_waiting(session=session, workflow_id=workflow_id)
                session.commit()
            continue
        told.append(workflow_id)
    if told:
        log.info("a new card of %s: %d change(s) waiting for payment try again now", org_id,
                 len(told))
    return told
