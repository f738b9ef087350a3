"""What the `SubscriptionChange` workflow answers: the `status` query and the `retry`, `cancel`
and `sales_decision` updates (SPEC sections 7 and 9). Each validator refuses what does not fit
the change's state; each handler asks the staff directory who is asking, then checks again."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subchange.domain.contracts import (
        CancelRequest,
        ChangeStatusView,
        RetryRequest,
        SalesDecision,
        UpdateAck,
    )
    from subchange.domain.principals import Action

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.cancellation import Cancellation
from workflows.principals import CHECK_PRINCIPALS, Principals, refused
from workflows.runner import StepRunner
from workflows.sales import SalesApproval
from workflows.state import ChangeRun
from workflows.versions import patched


class ChangeMessages:
    """The query and update handlers of the workflow class that inherits them."""

    change: ChangeRun
    cancellation: Cancellation
    steps: StepRunner
    sales: SalesApproval
    principals: Principals
    lock: asyncio.Lock

    @workflow.query(name="status")
    def status(self) -> ChangeStatusView:
        progress = self.change.progress
        return ChangeStatusView(
            workflow_id=workflow.info().workflow_id, state=self.change.lifecycle.current.value,
            step=progress.current_step, waiting_for=progress.waiting_for,
            history=progress.history, last_error=progress.last_error, result=self.change.result)

    @workflow.update(name="retry")
    async def retry(self, request: RetryRequest) -> UpdateAck:
        if await self.principals.authorize(Action.RETRY, request.by):
            self._validate_retry(request)  # the change may have moved on meanwhile
        self.steps.retry_requested = True
        by = f" (asked by {request.by})" if request.by else ""
        return UpdateAck(state=self.change.lifecycle.current.value,
                         message=f"retrying {self.change.progress.current_step}{by}")

    @retry.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        if (refusal := self.steps.retry_refusal()) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.RETRY, request.by)) is not None:
            raise refused(f"can't retry: {refusal}")

    @workflow.update(name="cancel")
    async def cancel(self, request: CancelRequest) -> UpdateAck:
        async with self.lock:
            self.cancellation.checking += 1  # the next step waits for the verdict
            try:
                if await self.principals.authorize(Action.CANCEL, request.by) or patched(
                        CHECK_PRINCIPALS):
                    # The change may have moved on while the directory answered, or while this
                    # cancel waited for the lock behind another one.
                    self._validate_cancel(request)
                self.cancellation.accept(request)
            finally:
                self.cancellation.checking -= 1
            await workflow.wait_condition(lambda: self.cancellation.outcome is not None)
            outcome = self.cancellation.outcome
            assert outcome is not None
            if not outcome.took_effect:  # accepted while a step ran that can't be undone
                raise refused(f"can't cancel: {outcome.message}")
            return UpdateAck(state=self.change.lifecycle.current.value, message=outcome.message)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if (refusal := self.cancellation.refusal(self.change.lifecycle,
                                                 self.steps.last_parked)) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.CANCEL, request.by)) is not None:
            raise refused(f"can't cancel: {refusal}")

    @workflow.update(name="sales_decision")
    async def sales_decision(self, decision: SalesDecision) -> UpdateAck:
        if await self.principals.authorize(Action.SALES_DECISION, decision.by):
            self._validate_sales_decision(decision)
        self.change.decision = decision
        verdict = "approved" if decision.approved else "rejected"
        return UpdateAck(state=self.change.lifecycle.current.value,
                         message=f"{self.change.sales_case} {verdict} by {decision.by}")

    @sales_decision.validator
    def _validate_sales_decision(self, decision: SalesDecision) -> None:
        if (refusal := self.sales.decision_refusal()) is not None:
            raise refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.SALES_DECISION,
                                                         decision.by)) is not None:
            raise refused(f"can't decide: {refusal}")

