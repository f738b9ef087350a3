"""Change records (one per workflow id, with the result once it has ended) and the claim that
lets one change at a time hold a subscription; a claim left behind by a change that ended without
closing (terminated, timed out) is taken over or released, never silently overwritten.

A change whose workflow ended without closing it (terminated, timed out) is closed by the
reconciliation sweep (activities/sweep.py): it leases the record (status `sweeping`), settles what
the change left, and writes how the workflow ended as its status (`terminated`, ...).

A change also settles once, as applied or withdrawn, on its record: the apply and every
compensation settle it in their own transaction, so whichever commits first wins and the other
refuses. An apply attempt still running after the change was refunded can't give it away.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from subchange.domain.contracts import ChangeRequest, ChangeResult, ChangeStatus
from subchange.domain.webhooks import ended_data, ended_event
from subchange.store import outbox, scheduled
from subchange.store.once import insert_once
from subchange.store.tables import AppliedChange, ChangeRecord, SubscriptionClaim, utcnow

APPLIED: Final = "applied"
WITHDRAWN: Final = "withdrawn"
Settlement = Literal["applied", "withdrawn"]


def open_change(*, session: Session, workflow_id: str, request: ChangeRequest
                ) -> ChangeResult | None:
    """Register the change; return the stored result when this workflow id already ended."""
    record = insert_once(
        session=session,
        row=ChangeRecord(workflow_id=workflow_id, request_id=request.request_id,
                         org_id=request.org_id, product=request.product,
                         kind=request.change.kind, requested_by=request.requested_by),
        find=lambda: session.get(ChangeRecord, workflow_id))
    if record.result:
        return ChangeResult.model_validate(record.result)
    if record.settled_as == WITHDRAWN or record.status != ChangeStatus.RUNNING.value:
        # A new run of a change that ended without closing and was compensated for (or closed
        # by the sweep): it starts afresh (its ledger entries were retired by that compensation)
        # and runs, so it closes its record itself.
        values: dict[str, str | None] = {"status": ChangeStatus.RUNNING.value}
        if record.settled_as == WITHDRAWN:
            values["settled_as"] = None
        session.execute(update(ChangeRecord).where(col(ChangeRecord.workflow_id) == workflow_id)
                        .values(**values).execution_options(synchronize_session=False))
        session.commit()
    return None


def close_change(*, session: Session, workflow_id: str, result: ChangeResult) -> None:
    """Store the result (the first one wins), with its event (change.completed, ...), and
    release the change's claim and its scheduled slot (SPEC section 10)."""
    record = session.get(ChangeRecord, workflow_id)
    if record is not None and record.result is None and session.exec(
            update(ChangeRecord)  # compare-and-set: of two attempts at once, one stores it
            .where(col(ChangeRecord.workflow_id) == workflow_id,
                   col(ChangeRecord.status) == ChangeStatus.RUNNING.value)
            .values(status=result.status.value, result=result.model_dump(mode="json"),
                    updated_at=utcnow())
            .execution_options(synchronize_session=False)).rowcount == 1:
        if result.status is not ChangeStatus.COMPLETED:  # a straggling apply can't commit now
            settle(session=session, workflow_id=workflow_id, outcome=WITHDRAWN)
        outbox.record_event(session=session, type=ended_event(result), workflow_id=workflow_id,
                            data=ended_data(result, org_id=record.org_id,
                                            product=record.product))
    for claim in session.exec(select(SubscriptionClaim)
                              .where(SubscriptionClaim.workflow_id == workflow_id)):
        session.delete(claim)
    scheduled.free(session=session, workflow_id=workflow_id)
    session.commit()


def claim_subscription(*, session: Session, subscription_id: int, workflow_id: str) -> str | None:
    """Take the subscription for this change. Returns the workflow id of another holder, if any."""
    claim = insert_once(
        session=session,
        row=SubscriptionClaim(subscription_id=subscription_id, workflow_id=workflow_id),
        find=lambda: session.get(SubscriptionClaim, subscription_id))
    return None if claim.workflow_id == workflow_id else claim.workflow_id


def has_result(*, session: Session, workflow_id: str) -> bool:
    record = session.get(ChangeRecord, workflow_id)
    return record is not None and record.result is not None


def claim_holder(*, session: Session, subscription_id: int) -> str | None:
    claim = session.get(SubscriptionClaim, subscription_id)
    return claim.workflow_id if claim else None


def take_over_claim(*, session: Session, subscription_id: int, holder: str, workflow_id: str
                    ) -> bool:
    """Move the claim from `holder` (which has ended) to this change, in the caller's
    transaction; False when another change moved it first (compare-and-set on the holder)."""
    moved = session.exec(
        update(SubscriptionClaim)
        .where(col(SubscriptionClaim.subscription_id) == subscription_id,
               col(SubscriptionClaim.workflow_id) == holder)
        .values(workflow_id=workflow_id, claimed_at=utcnow()))
    return moved.rowcount == 1


def release_claim(*, session: Session, subscription_id: int, holder: str) -> bool:
    """Free the subscription if `holder` still holds it; False when it no longer does."""
    released = session.exec(
        delete(SubscriptionClaim)
        .where(col(SubscriptionClaim.subscription_id) == subscription_id,
               col(SubscriptionClaim.workflow_id) == holder))
    session.commit()
    return released.rowcount == 1


def settle(*, session: Session, workflow_id: str, outcome: Settlement) -> Settlement | None:
    """Settle the change as `outcome` in the caller's transaction, unless it settled otherwise
    first; how it is settled now (None: no such change). The update locks the record, so a
    concurrent settlement waits for this transaction and then finds it."""
    moved = session.exec(
        update(ChangeRecord)
        .where(col(ChangeRecord.workflow_id) == workflow_id,
               or_(col(ChangeRecord.settled_as).is_(None),
                   col(ChangeRecord.settled_as) == outcome))
        .values(settled_as=outcome).execution_options(synchronize_session=False))
    if moved.rowcount == 1:
        return outcome
    return session.execute(select(ChangeRecord.settled_as)
                           .where(col(ChangeRecord.workflow_id) == workflow_id)
                           ).scalar_one_or_none()


def withdraw(*, session: Session, workflow_id: str) -> bool:
    """Settle the change as withdrawn before its money goes back, and commit; False, with
    nothing changed, when it is applied (its money is the change's)."""
    settled = settle(session=session, workflow_id=workflow_id, outcome=WITHDRAWN)
    if settled == APPLIED or session.get(AppliedChange, workflow_id) is not None:
        session.rollback()
        return False
    session.commit()
    return True


# --- the reconciliation sweep ------------------------------------------------------------------

SWEEPING = "sweeping"  # a sweep is settling the change (a lease: see unsettled_records)


def unsettled_records(*, session: Session, after: str, limit: int, lease_ended: datetime
                      ) -> list[ChangeRecord]:
    """The records without a result (their workflow runs, or ended without closing them), in
    workflow id order after `after`, with those a sweep leased before `lease_ended` (it died)."""
    return list(session.exec(
        select(ChangeRecord)
        .where(col(ChangeRecord.workflow_id) > after,
               or_(col(ChangeRecord.status) == ChangeStatus.RUNNING.value,
                   (col(ChangeRecord.status) == SWEEPING)
                   & (col(ChangeRecord.updated_at) < lease_ended)))
        .order_by(col(ChangeRecord.workflow_id)).limit(limit)))


def lease_for_sweep(*, session: Session, workflow_id: str, lease_ended: datetime) -> bool:
    """Take the record for one sweep (compare-and-set): False when another sweep has it, or it
    was closed meanwhile."""
    taken = session.exec(
        update(ChangeRecord)
        .where(col(ChangeRecord.workflow_id) == workflow_id,
               or_(col(ChangeRecord.status) == ChangeStatus.RUNNING.value,
                   (col(ChangeRecord.status) == SWEEPING)
                   & (col(ChangeRecord.updated_at) < lease_ended)))
        .values(status=SWEEPING, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    session.commit()
    return taken.rowcount == 1


def end_sweep(*, session: Session, workflow_id: str, ended: str | None) -> bool:
    """Close the leased record as `ended` (how its workflow ended), in the caller's transaction;
    with None, give the lease back (to try again at the next sweep)."""
    closed = session.exec(
        update(ChangeRecord)
        .where(col(ChangeRecord.workflow_id) == workflow_id,
               col(ChangeRecord.status) == SWEEPING)
        .values(status=ended or ChangeStatus.RUNNING.value, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return closed.rowcount == 1


def claims_held_by(*, session: Session, workflow_id: str) -> list[int]:
    """The subscriptions this change holds (one, unless something went wrong)."""
    return list(session.exec(select(SubscriptionClaim.subscription_id)
                             .where(SubscriptionClaim.workflow_id == workflow_id)))
