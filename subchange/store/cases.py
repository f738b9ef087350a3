"""Work for people, one item per change: sales cases for offline payers (R9) and refund tickets
for the payments team (R11)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from subchange.store.once import insert_once
from subchange.store.outbox import NewEvent
from subchange.store.tables import RefundTicket, SalesCase, utcnow


def open_sales_case(*, session: Session, case: SalesCase,
                    event: Callable[[SalesCase], NewEvent] | None = None) -> SalesCase:
    """The change's sales case: `case`, unless its workflow id already has one. `event` makes
    the event reporting the case opened (change.awaiting_sales), recorded with it, only when it
    is opened now."""
    return insert_once(session=session, row=case,
                       find=lambda: _sales_case(session, case.workflow_id),
                       also=None if event is None else lambda row: event(row).record(session))


def close_sales_case(*, session: Session, workflow_id: str, outcome: str, by: str | None,
                     note: str) -> None:
    """Record how the open case ended; a case already closed keeps its first outcome, except
    that an approved change cancelled before it was applied closes its case as cancelled."""
    row = _sales_case(session, workflow_id)
    if row is None or not (row.status == "open"
                           or (row.status == "approved" and outcome == "cancelled")):
        return
    if row.status == "approved":
        note = f"approved by {row.decided_by}, then cancelled before it was applied" + (
            f": {note}" if note else "")
    row.status, row.decided_by, row.note = outcome, by, note
    row.decided_at = utcnow()
    session.add(row)
    session.commit()


def open_refund_ticket(*, session: Session, ticket: RefundTicket) -> RefundTicket:
    """The change's refund ticket: `ticket`, unless its workflow id already has one."""
    return insert_once(session=session, row=ticket,
                       find=lambda: _refund_ticket(session, ticket.workflow_id))


def _sales_case(session: Session, workflow_id: str) -> SalesCase | None:
    return session.exec(select(SalesCase).where(SalesCase.workflow_id == workflow_id)).first()


def _refund_ticket(session: Session, workflow_id: str) -> RefundTicket | None:
    return session.exec(select(RefundTicket)
                        .where(RefundTicket.workflow_id == workflow_id)).first()
