"""Rows written once per workflow id (subchange.store.once): an attempt that looked before a
concurrent one committed gets that one's row back, and a failure that is not such a race is not
swallowed."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from subchange.store import cases, changes
from subchange.store.once import insert_once
from subchange.store.tables import RefundTicket


def ticket(workflow_id: str, amount: str) -> RefundTicket:
    return RefundTicket(workflow_id=workflow_id, org_id="once", product="one",
                        amount=Decimal(amount), currency="JPY", invoice_number="INV-2026-000001",
                        change_link="http://ui/x", requested_by="admin@once.example")


def test_a_second_attempt_that_lost_the_race_gets_the_first_row(deps):
    workflow_id = f"change-once-{uuid.uuid4().hex[:10]}"
    with deps.sessions() as session:
        first = cases.open_refund_ticket(session=session, ticket=ticket(workflow_id, "100"))
    with deps.sessions() as session:
        looks = iter([None])  # the first look happened before the first attempt committed

        def find():
            return next(looks, None) or session.exec(
                select(RefundTicket).where(RefundTicket.workflow_id == workflow_id)).first()

        second = insert_once(session=session, row=ticket(workflow_id, "999"), find=find)
    assert (second.id, second.amount) == (first.id, first.amount)
    with deps.sessions() as session:
        rows = session.exec(select(RefundTicket)
                            .where(RefundTicket.workflow_id == workflow_id)).all()
    assert len(rows) == 1


def test_a_constraint_other_than_the_key_still_fails(deps):
    # No subscription has this id: the claim's foreign key fails, and nobody holds the claim.
    with deps.sessions() as session, pytest.raises(IntegrityError):
        changes.claim_subscription(session=session, subscription_id=2_000_000_000,
                                   workflow_id=f"change-once-{uuid.uuid4().hex[:10]}")
