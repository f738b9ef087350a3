"""How a change ends. Every ending records its result and releases the subscription
(close_change) before the lifecycle's final transition; a cancelled change that was charged is
refunded first (compensation), so money never moves without the change being applied."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeState, Trigger
    from subchange.domain.contracts import ChangeResult, ChangeStatus, PaymentRecord, Rejection
    from subchange.domain.step_io import CloseChangeInput, CloseSalesCaseInput, RefundChargeInput

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.cancellation import (
    CANCEL_AFTER_APPROVAL_CLOSES_CASE,
    ENDINGS_WAIT_FOR_HANDLERS,
    REJECTION_AFTER_APPROVAL_CLOSES_CASE,
    Cancellation,
)
from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import CLOSE_CHANGE, CLOSE_SALES_CASE, REFUND_CHARGE
from workflows.versions import patched


class Endings:
    def __init__(self, change: ChangeRun, steps: StepRunner, cancellation: Cancellation) -> None:
        self.change = change
        self.steps = steps
        self.cancellation = cancellation

    async def finish(self, trigger: Trigger, result: ChangeResult) -> ChangeResult:
        change = self.change
        change.finishing = (trigger, result)
        await self.steps.run(CLOSE_CHANGE, CloseChangeInput(result=result))
        change.lifecycle.fire(trigger)
        self.cancellation.too_late(result.status.value)
        if patched(ENDINGS_WAIT_FOR_HANDLERS):
            self.cancellation.ended = result.status.value
        change.result = result
        change.publish()
        assert change.request is not None
        workflow.metric_meter().create_counter(
            "subchange_changes", "changes ended, by status").add(
            1, {"status": result.status.value, "product": change.request.product,
                "kind": change.request.change.kind})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def rejected(self, rejection: Rejection | None) -> ChangeResult:
        """A business rejection; None only when a quote came back with neither quote nor reason."""
        rejection = rejection or Rejection(reason_code="quote_failed",
                                           reason="the change could not be quoted")
        decision = self.change.decision
        if (self.change.sales_case and decision is not None and decision.approved
                and patched(REJECTION_AFTER_APPROVAL_CLOSES_CASE)):
            # Priced again after the approval, the change is no longer allowed: its sales case
            # must not stay approved for a change that never happens.
            await self.close_sales_case("cancelled", by=decision.by,
                                        note=f"rejected when priced again: {rejection.reason}")
        return await self.finish(Trigger.REJECT, self.change.result_of(
            ChangeStatus.REJECTED, reason_code=rejection.reason_code, reason=rejection.reason))

    async def invalid(self, reason: str) -> ChangeResult:
        """A request the workflow can't even read: nothing was recorded, so nothing to close."""
        change = self.change
        change.advance(Trigger.REJECT)
        change.result = ChangeResult(
            workflow_id=workflow.info().workflow_id,
            request_id=change.request.request_id if change.request else "",
            status=ChangeStatus.REJECTED, reason_code="invalid_request",
            reason=f"invalid request: {reason}")
        change.publish()
        return await self._after_handlers(change.result)

    async def repeated(self, previous: ChangeResult) -> ChangeResult:
        """An earlier run of this workflow id already ended: its result is this run's."""
        self.change.result = previous
        self.change.publish()
        return await self._after_handlers(previous)

    async def _after_handlers(self, result: ChangeResult) -> ChangeResult:
        """End only once the updates under way are answered: a cancel taken before the change
        could open is refused (it ended first), not left unanswered."""
        if patched(ENDINGS_WAIT_FOR_HANDLERS):
            self.cancellation.ended = result.status.value
            self.cancellation.too_late(result.status.value)
            await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def cancelled(self) -> ChangeResult:
        change, cancel = self.change, self.cancellation.request
        assert cancel is not None
        approved = change.decision is not None and change.decision.approved
        if change.sales_case and (change.decision is None or (
                approved and patched(CANCEL_AFTER_APPROVAL_CLOSES_CASE))):
            await self.close_sales_case("cancelled", by=cancel.by, note=cancel.reason or "")
        charged = change.lifecycle.effective is ChangeState.CHARGED and change.payment is not None
        refund = None
        if charged or self.steps.money_at_risk:
            assert change.quote is not None
            refund = await self.steps.run(REFUND_CHARGE, RefundChargeInput(
                intent_id=change.payment.intent_id if change.payment else None,
                amount=change.quote.total_due, currency=change.quote.currency,
                reason=cancel.reason or "change cancelled"))
        if refund is not None and refund.refund_id:
            assert change.quote is not None
            change.payment = (change.payment or PaymentRecord(
                method="card", amount=refund.amount, currency=change.quote.currency)
            ).model_copy(update={"refund_id": refund.refund_id})
            if not charged:  # the lifecycle never saw the charge succeed: mark it, then undo it
                change.lifecycle.fire(Trigger.CHARGE)
            trigger, outcome = Trigger.COMPENSATE, f"cancelled; charge refunded ({refund.refund_id})"
        else:
            trigger, outcome = Trigger.CANCEL, "cancelled; nothing was charged or changed"
        self.cancellation.succeeded(outcome)
        by = f" by {cancel.by}" if cancel.by else ""
        return await self.finish(trigger, change.result_of(
            ChangeStatus.CANCELLED, reason_code="cancelled",
            reason=f"cancelled{by}" + (f": {cancel.reason}" if cancel.reason else "")))

    async def close_sales_case(self, outcome: str, *, by: str | None = None, note: str = ""
                               ) -> None:
        change = self.change
        assert change.sales_case is not None
        if change.decision is not None and outcome != "cancelled":
            by, note = change.decision.by, change.decision.note
        await self.steps.run(CLOSE_SALES_CASE, CloseSalesCaseInput(
            case_id=change.sales_case, outcome=outcome, by=by, note=note))
