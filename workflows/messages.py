"""What the `SubscriptionChange` workflow answers: the `status` query and the `retry`, `cancel`
and `sales_decision` updates. Each validator refuses what does not fit the change's state; each
handler asks the staff directory who is asking (workflows/principals.py), then checks again."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subchange.domain.contracts import (
        CancelRequest,
        ChangeStatusView,
        RescheduleRequest,
        RetryRequest,
        SalesDecision,
        ScheduledReplaced,
        UpdateAck,
    )
    from subchange.domain.principals import Action

from workflows.cancellation import Cancellation
from workflows.period_end import REPLACED_SIGNAL, PeriodEnd
from workflows.principals import Principals, principal_refused, refused
from workflows.runner import StepRunner
from workflows.sales import SalesApproval
from workflows.state import ChangeRun


class ChangeMessages:
    """The query and update handlers of the workflow class that inherits them."""

    state: ChangeRun
    cancels: Cancellation
    runner: StepRunner
    sales: SalesApproval
    principals: Principals
    period_end: PeriodEnd

    @workflow.query(name="status")
    def status(self) -> ChangeStatusView:
        progress = self.state.progress
        return ChangeStatusView(
            workflow_id=workflow.info().workflow_id, state=self.state.lifecycle.current.value,
            step=progress.current_step, waiting_for=progress.waiting_for,
            history=progress.history, last_error=progress.last_error, result=self.state.result,
            next_attempt_at=self.state.next_payment_attempt)

    @workflow.signal(name="card_updated")
    def card_updated(self) -> None:
        """The organisation has a new card (subchange/app/payments.py): a change waiting for
        payment tries its charge at once (workflows/payment_recovery.py)."""
        self.state.card_updates += 1

    @workflow.update(name="retry")
    async def retry(self, request: RetryRequest) -> UpdateAck:
        if await self.principals.authorize(Action.RETRY, request.by):
            self._validate_retry(request)  # the change may have moved on meanwhile
        self.state.retry_requested = True
        by = f" (asked by {request.by})" if request.by else ""
        return UpdateAck(state=self.state.lifecycle.current.value,
                         message=f"retrying {self.state.progress.current_step}{by}")

    @retry.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        if (refusal := self.runner.retry_refusal()) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.RETRY, request.by)) is not None:
            raise principal_refused(f"can't retry: {refusal}")

    @workflow.update(name="cancel")
    async def cancel(self, request: CancelRequest) -> UpdateAck:
        async def vet() -> None:
            await self.principals.authorize(Action.CANCEL, request.by)
            self._validate_cancel(request)

        outcome = await self.cancels.receive(request, vet)
        if not outcome.took_effect:  # accepted while a step ran that can't be undone
            raise refused(f"can't cancel: {outcome.message}")
        return UpdateAck(state=self.state.lifecycle.current.value, message=outcome.message)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if (refusal := self.cancels.refusal()) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.CANCEL, request.by)) is not None:
            raise principal_refused(f"can't cancel: {refusal}")

    @workflow.update(name="sales_decision")
    async def sales_decision(self, decision: SalesDecision) -> UpdateAck:
        if await self.principals.authorize(Action.SALES_DECISION, decision.by):
            self._validate_sales_decision(decision)
        self.state.decision = decision
        verdict = "approved" if decision.approved else "rejected"
        return UpdateAck(state=self.state.lifecycle.current.value,
                         message=f"{self.state.sales_case} {verdict} by {decision.by}")

    @sales_decision.validator
    def _validate_sales_decision(self, decision: SalesDecision) -> None:
        if (refusal := self.sales.decision_refusal()) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.SALES_DECISION,
                                                         decision.by)) is not None:
            raise principal_refused(f"can't decide: {refusal}")

    # --- a change at the period end (SPEC section 10) ---------------------------------------

    @workflow.signal(name=REPLACED_SIGNAL)
    def scheduled_change_replaced(self, notice: ScheduledReplaced) -> None:
        """Another scheduled change took this one's slot (replace_scheduled): it ends
        cancelled, naming it."""
        self.cancels.replaced(notice.by)

    @workflow.update(name="reschedule")
    async def reschedule(self, request: RescheduleRequest) -> UpdateAck:
        """Staging and demos only: fire a scheduled change at `at` (now when None). The staff
        directory and the worker's ALLOW_RESCHEDULE decide (authorize_principal, audited)."""
        if await self.principals.authorize(Action.RESCHEDULE, request.by):
            self._validate_reschedule(request)
        at = request.at or workflow.now()
        self.period_end.reschedule(at, request.by)
        return UpdateAck(state=self.state.lifecycle.current.value,
                         message=f"fires at {at.isoformat()} (rescheduled by {request.by}; "
                                 "staging only)")

    @reschedule.validator
    def _validate_reschedule(self, request: RescheduleRequest) -> None:
        if (refusal := self.period_end.reschedule_refusal()) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.RESCHEDULE,
                                                         request.by)) is not None:
            raise principal_refused(f"can't reschedule: {refusal}")
