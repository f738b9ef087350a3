"""One change at a time per subscription: the claim a change takes while it is validated. A
claim left by a change that ended without releasing it (terminated, timed out, ended by the
history limit) is taken over, audited, instead of locking the subscription for good; and the
compensation that change never ran is run for it: a charge it took without being applied is
refunded (or an unconfirmed intent voided)."""

from __future__ import annotations

from sqlmodel import Session

from activities.dependencies import Dependencies
from activities.payments import PaymentActivities
from subchange.domain import rules
from subchange.domain.contracts import ChangeRequest, Rejection
from subchange.store import audit, changes


class SubscriptionClaims:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def claim(self, *, session: Session, request: ChangeRequest, subscription_id: int,
              workflow_id: str) -> Rejection | None:
        """None once this change holds the subscription; the rejection naming a live holder."""
        holder = changes.claim_subscription(session=session, subscription_id=subscription_id,
                                            workflow_id=workflow_id)
        if holder is None:
            return None
        ended = self.ended_as(session=session, workflow_id=holder)
        if ended is None:
            return rules.subscription_taken(holder)
        # Its compensation first: should it fail, the claim is still the ended change's, and
        # the retry of this step runs it again (the ledger makes it once).
        self.compensate(session=session, org_id=request.org_id, holder=holder, ended=ended,
                        by=workflow_id)
        if changes.take_over_claim(session=session, subscription_id=subscription_id,
                                   holder=holder, workflow_id=workflow_id):
            audit.add_audit_entry(
                session=session, org_id=request.org_id, actor=request.requested_by,
                action="take_over_claim", outcome="taken_over",
                detail=f"{holder} held the {request.product} subscription and had ended "
                       f"({ended}) without releasing it", workflow_id=workflow_id)
            session.commit()
            return None
        session.rollback()  # another change took it over first: judge that one instead
        holder = changes.claim_subscription(session=session, subscription_id=subscription_id,
                                            workflow_id=workflow_id)
        return None if holder is None else rules.subscription_taken(holder)

    def compensate(self, *, session: Session, org_id: str, holder: str, ended: str,
                   by: str) -> str | None:
        """Refund (or void) what the ended holder charged without being applied; audited. The
        refund id, if money went back."""
        if ended == "closed":  # it ended through the workflow, which compensated itself
            return None
        refunded = PaymentActivities(self.deps).compensate_abandoned(
            holder, reason=f"{holder} ended ({ended}) before it was applied")
        if refunded is None:
            return None
        audit.record_audit(session=session, org_id=org_id, actor=by, action="compensate",
                           outcome="refunded",
                           detail=f"{holder} ended ({ended}) after its charge, before it was "
                                  f"applied: refunded {refunded.amount} ({refunded.refund_id})",
                           workflow_id=holder)
        return refunded.refund_id

    def ended_as(self, *, session: Session, workflow_id: str) -> str | None:
        """How the holder ended, or None while it may still run."""
        if changes.has_result(session=session, workflow_id=workflow_id):
            return "closed"
        if self.deps.workflows is None:
            return None
        return self.deps.workflows.ended_as(workflow_id)
