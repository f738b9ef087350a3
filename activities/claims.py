"""One change at a time per subscription: the claim a change takes while it is validated. A
claim left by a change that ended without releasing it (terminated, timed out, ended by the
history limit) is taken over, audited, instead of locking the subscription for good."""

from __future__ import annotations

from sqlmodel import Session

from activities.dependencies import Dependencies
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

    def ended_as(self, *, session: Session, workflow_id: str) -> str | None:
        """How the holder ended, or None while it may still run."""
        if changes.has_result(session=session, workflow_id=workflow_id):
            return "closed"
        if self.deps.workflows is None:
            return None
        return self.deps.workflows.ended_as(workflow_id)
