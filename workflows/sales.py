"""Offline payers (R9): the change waits durably for the sales team's decision on a sales case,
and expires when none comes in time (SALES_DECISION_TIMEOUT)."""

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

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.cancellation import CANCEL_BEATS_DECISION, Cancellation, CancelRequested
from workflows.endings import Endings
from workflows.progress import describe_duration
from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import OPEN_SALES_CASE
from workflows.versions import patched


class SalesApproval:
    def __init__(self, change: ChangeRun, steps: StepRunner, cancellation: Cancellation,
                 end: Endings) -> None:
        self.change = change
        self.steps = steps
        self.cancellation = cancellation
        self.end = end
        self.deadline_passed = False

    def decision_refusal(self) -> str | None:
        """Why the `sales_decision` update is refused now, or None when it is accepted."""
        current = self.change.lifecycle.current
        if current is not ChangeState.AWAITING_SALES:
            return f"no sales decision is awaited: the change is {current.value}"
        if self.change.decision is not None or self.cancellation.requested:
            return "the sales decision has already been made"
        if self.deadline_passed:  # expiring: closing the case and the change takes a moment
            return "the sales decision deadline has passed: the change expires"
        return None

    async def decide(self, request: ChangeRequest, quote: Quote) -> PaymentRecord | ChangeResult:
        """The offline payment sales approved, or the ending: rejected or expired."""
        change = self.change
        case = await self.steps.run(OPEN_SALES_CASE, SalesCaseInput(request=request, quote=quote))
        change.sales_case = case.case_id
        deadline = describe_duration(case.decision_timeout)
        change.progress.wait(workflow.now(), "sales_decision",
                             f"a sales decision on {case.case_id} (expires after {deadline})")
        change.publish()
        try:
            await workflow.wait_condition(
                lambda: change.decision is not None or self.cancellation.requested,
                timeout=case.decision_timeout, timeout_summary="sales decision deadline")
        except TimeoutError:
            self.deadline_passed = True  # a decision still in its directory check is refused
            change.progress.done(workflow.now(), "expired")
            await self.end.close_sales_case("expired")
            return await self.end.finish(Trigger.EXPIRE, change.result_of(
                ChangeStatus.EXPIRED, reason_code="sales_decision_timeout",
                reason=f"no sales decision on {case.case_id} within {deadline}"))
        decision = change.decision
        # A cancel accepted together with a decision (in one workflow task) wins: the case is
        # closed as cancelled, not approved on a change that then gets cancelled.
        if decision is None or (self.cancellation.requested
                                and patched(CANCEL_BEATS_DECISION)):
            change.decision = None
            change.progress.done(workflow.now(), "cancelled")
            raise CancelRequested
        verdict = "approved" if decision.approved else "rejected"
        note = f": {decision.note}" if decision.note else ""
        change.progress.done(workflow.now(), verdict, f"by {decision.by}{note}")
        await self.end.close_sales_case(verdict)
        if not decision.approved:
            return await self.end.finish(Trigger.REJECT, change.result_of(
                ChangeStatus.REJECTED, reason_code="sales_rejected",
                reason=f"sales rejected the change ({decision.by}){note}"))
        change.advance(Trigger.SALES_APPROVE)
        return PaymentRecord(method="offline", amount=quote.total_due, currency=quote.currency,
                             sales_case=case.case_id, approved_by=decision.by)
