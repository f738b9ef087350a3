"""Applying a change to the subscription (SPEC step 5), atomically and once per change."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from subchange.domain.contracts import ChangeRequest
from subchange.domain.step_io import AppliedOutcome, ApplyInput, ApplyOutput
from subchange.faults import pause_point
from subchange.store import changes, subscriptions


class SubscriptionActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="apply_change")
    def apply_change(self, apply: ApplyInput) -> ApplyOutput:
        product = self.deps.catalog.product(apply.request.product)
        target_features = frozenset(product.tier(apply.quote.new_plan).features)
        pause_point(self.deps.settings, "apply.before_commit")
        try:
            with self.deps.sessions() as session:
                subscription, invoice_number = subscriptions.apply_change(
                    session=session, workflow_id=calling_workflow_id(),
                    request=apply.request, quote=apply.quote, payment=apply.payment,
                    target_features=target_features, seller=self.deps.settings.seller())
        except subscriptions.StaleSubscription as stale:
            raise ApplicationError(str(stale), type="StaleSubscription",
                                   non_retryable=True) from None
        except subscriptions.ChangeWithdrawn as withdrawn:
            raise ApplicationError(str(withdrawn), type="ChangeWithdrawn",
                                   non_retryable=True) from None
        pause_point(self.deps.settings, "apply.after_commit")
        activity.logger.info("applied: %s × %s, invoice %s", subscription.plan,
                             subscription.seats, invoice_number)
        return ApplyOutput(subscription=subscription, invoice_number=invoice_number)

    @activity.defn(name="find_applied_change")
    def find_applied_change(self, request: ChangeRequest) -> AppliedOutcome:
        """Before a cancel takes effect after an apply that failed: did it commit after all? If
        not, the change is settled as withdrawn in the same step, so an attempt still running
        can no longer commit it (even when there is no charge to refund)."""
        workflow_id = calling_workflow_id()
        with self.deps.sessions() as session:
            if changes.withdraw(session=session, workflow_id=workflow_id):
                return AppliedOutcome()
            done = subscriptions.applied_change(session=session, workflow_id=workflow_id)
        if done is None:  # withdrawn before (a cancel that had begun): nothing applied
            return AppliedOutcome()
        subscription, invoice_number = done
        return AppliedOutcome(applied=ApplyOutput(subscription=subscription,
                                                  invoice_number=invoice_number))
