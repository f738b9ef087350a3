"""Offline payers (R9: a customer who pays by invoice is not charged; the sales team approves the
change first): the change waits durably for the sales team's decision on a sales case, and
expires when none comes in time (SALES_DECISION_TIMEOUT)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeState, Trigger
    from subchange.domain.contracts import (
        ChangeRequest,
        ChangeResult,
        ChangeStatus,
        PaymentRecord,
        Quote,
    )
    from subchange.domain.step_io import SalesCaseInput

from workflows.cancellation import Cancellation, CancelRequested
from workflows.endings import Endings
from workflows.progress import describe_duration
from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import OPEN_SALES_CASE


class SalesApproval:
    def __init__(self, state: ChangeRun, runner: StepRunner, cancels: Cancellation,
                 end: Endings) -> None:
        self.state = state
        self.runner = runner
        self.cancels = cancels
        self.end = end

    def decision_refusal(self) -> str | None:
        """Why the `sales_decision` update is refused now, or None when it is accepted."""
        current = self.state.lifecycle.current
        if current is not ChangeState.AWAITING_SALES:
            return f"no sales decision is awaited: the change is {current.value}"
        if self.state.decision is not None or self.state.cancel is not None:
            return "the sales decision has already been made"
        if self.state.sales_deadline_passed:  # expiring: closing the case and the change
            return "the sales decision deadline has passed: the change expires"
        return None

    async def decide(self, request: ChangeRequest, quote: Quote) -> PaymentRecord | ChangeResult:
        """The offline payment sales approved, or the ending: rejected or expired."""
        state = self.state
        case = await self.runner.run(OPEN_SALES_CASE, SalesCaseInput(request=request, quote=quote))
        state.sales_case = case.case_id
        deadline = describe_duration(case.decision_timeout)
        state.progress.wait(workflow.now(), "sales_decision",
                            f"a sales decision on {case.case_id} (expires after {deadline})")
        state.publish()
        try:
            await self.cancels.wait(lambda: state.decision is not None,
                                    timeout=case.decision_timeout,
                                    timeout_summary="sales decision deadline")
        except TimeoutError:
            state.sales_deadline_passed = True  # a decision still in its directory check is refused
            state.progress.done(workflow.now(), "expired")
            await self.end.close_sales_case("expired")
            return await self.end.finish(Trigger.EXPIRE, state.result_of(
                ChangeStatus.EXPIRED, reason_code="sales_decision_timeout",
                reason=f"no sales decision on {case.case_id} within {deadline}"))
        except CancelRequested:
            # A cancel accepted together with a decision (in one workflow task) wins: the case
            # is closed as cancelled, not approved on a change that then gets cancelled.
            state.decision = None
            state.progress.done(workflow.now(), "cancelled")
            raise
        decision = state.decision
        assert decision is not None
        verdict = "approved" if decision.approved else "rejected"
        note = f": {decision.note}" if decision.note else ""
        state.progress.done(workflow.now(), verdict, f"by {decision.by}{note}")
        await self.end.close_sales_case(verdict)
        if not decision.approved:
            return await self.end.finish(Trigger.REJECT, state.result_of(
                ChangeStatus.REJECTED, reason_code="sales_rejected",
                reason=f"sales rejected the change ({decision.by}){note}"))
        state.advance(Trigger.SALES_APPROVE)
        return PaymentRecord(method="offline", amount=quote.total_due, currency=quote.currency,
                             sales_case=case.case_id, approved_by=decision.by)
