"""How a change ends. Every ending records its result and releases the subscription
(close_change) before the lifecycle's final transition; a cancelled change that was charged is
refunded first (compensation), so money never moves without the change being applied."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import Trigger
    from subchange.domain.contracts import ChangeResult, ChangeStatus, PaymentRecord, Rejection
    from subchange.domain.step_io import CloseChangeInput, CloseSalesCaseInput, RefundChargeInput

from workflows.cancellation import Cancellation
from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import CLOSE_CHANGE, CLOSE_SALES_CASE, OPEN_SALES_CASE, REFUND_CHARGE


class Endings:
    def __init__(self, state: ChangeRun, runner: StepRunner, cancels: Cancellation) -> None:
        self.state = state
        self.runner = runner
        self.cancels = cancels

    async def finish(self, trigger: Trigger, result: ChangeResult) -> ChangeResult:
        state = self.state
        state.finishing = (trigger, result)
        await self.runner.run(CLOSE_CHANGE, CloseChangeInput(result=result))
        state.lifecycle.fire(trigger)
        self._ended(result)
        state.publish()
        assert state.request is not None
        workflow.metric_meter().create_counter(
            "subchange_changes", "changes ended, by status").add(
            1, {"status": result.status.value, "product": state.request.product,
                "kind": state.request.change.kind})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def rejected(self, rejection: Rejection | None) -> ChangeResult:
        """A business rejection; None only when a quote came back with neither quote nor reason."""
        rejection = rejection or Rejection(reason_code="quote_failed",
                                           reason="the change could not be quoted")
        decision = self.state.decision
        if self.state.sales_case and decision is not None and decision.approved:
            # Priced again after the approval, the change is no longer allowed: its sales case
            # must not stay approved for a change that never happens.
            await self.close_sales_case("cancelled", by=decision.by,
                                        note=f"rejected when priced again: {rejection.reason}")
        return await self.finish(Trigger.REJECT, self.state.result_of(
            ChangeStatus.REJECTED, reason_code=rejection.reason_code, reason=rejection.reason))

    async def invalid(self, reason: str) -> ChangeResult:
        """A request the workflow can't even read: nothing was recorded, so nothing to close."""
        state = self.state
        state.advance(Trigger.REJECT)
        result = ChangeResult(
            workflow_id=workflow.info().workflow_id,
            request_id=state.request.request_id if state.request else "",
            status=ChangeStatus.REJECTED, reason_code="invalid_request",
            reason=f"invalid request: {reason}")
        return await self._after_handlers(result)

    async def repeated(self, previous: ChangeResult) -> ChangeResult:
        """An earlier run of this workflow id already ended: its result is this run's."""
        return await self._after_handlers(previous)

    async def _after_handlers(self, result: ChangeResult) -> ChangeResult:
        """End only once the updates under way are answered: a cancel taken before the change
        could open is refused (it ended first), not left unanswered."""
        self.state.result = result
        self.state.publish()
        self._ended(result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _ended(self, result: ChangeResult) -> None:
        self.state.result = result
        self.state.ended = result.status.value
        self.cancels.too_late(result.status.value)

    async def cancelled(self) -> ChangeResult:
        """The cancel takes effect: the sales case closed, a charge refunded (one of unknown
        outcome too), the change ended as cancelled."""
        state, cancel = self.state, self.state.cancel
        assert cancel is not None
        approved = state.decision is not None and state.decision.approved
        # A case may be open whose id the workflow never saw (a Temporal cancel that came with
        # the step's end hides its result): it is closed by the change's workflow id anyway.
        opened = state.sales_case is not None or OPEN_SALES_CASE.name in state.begun
        if opened and (state.decision is None or approved):
            await self.close_sales_case("cancelled", by=cancel.by, note=cancel.reason or "")
        charged, refund = self.cancels.charged(), None
        if self.cancels.refund_owed():
            assert state.quote is not None
            refund = await self.runner.run(REFUND_CHARGE, RefundChargeInput(
                intent_id=state.payment.intent_id if state.payment else None,
                amount=state.quote.total_due, currency=state.quote.currency,
                reason=cancel.reason or "change cancelled"))
        if refund is not None and refund.refund_id:
            assert state.quote is not None
            state.payment = (state.payment or PaymentRecord(
                method="card", amount=refund.amount, currency=state.quote.currency)
            ).model_copy(update={"refund_id": refund.refund_id})
            if not charged:  # the lifecycle never saw the charge succeed: mark it, then undo it
                state.lifecycle.fire(Trigger.CHARGE)
            trigger = Trigger.COMPENSATE
            outcome = f"cancelled; charge refunded ({refund.refund_id})"
        else:
            trigger, outcome = Trigger.CANCEL, "cancelled; nothing was charged or changed"
        self.cancels.succeeded(outcome)
        by = f" by {cancel.by}" if cancel.by else ""
        return await self.finish(trigger, state.result_of(
            ChangeStatus.CANCELLED, reason_code="cancelled",
            reason=f"cancelled{by}" + (f": {cancel.reason}" if cancel.reason else "")))

    async def close_sales_case(self, outcome: str, *, by: str | None = None, note: str = ""
                               ) -> None:
        state = self.state
        if state.decision is not None and outcome != "cancelled":
            by, note = state.decision.by, state.decision.note
        await self.runner.run(CLOSE_SALES_CASE, CloseSalesCaseInput(
            case_id=state.sales_case or "the change's sales case", outcome=outcome, by=by,
            note=note))
