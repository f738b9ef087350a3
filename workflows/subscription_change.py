"""The `SubscriptionChange` workflow: one seat or plan change, from request to invoice.

authorize admin → validate → quote → settle payment (charge, sales, or nothing) → apply → email
invoice → refund ticket. Business rejections end the workflow with status `rejected`; a step that
fails for good parks the change in `awaiting_support` until the `retry` or `cancel` update
(workflows/runner.py). The steps are in workflows/steps.py, the endings in workflows/endings.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeState, Trigger
    from subchange.domain.contracts import (
        WORKFLOW_TYPE,
        CancelRequest,
        ChangeRequest,
        ChangeResult,
        ChangeStatus,
        ChangeStatusView,
        PaymentRecord,
        Quote,
        RetryRequest,
        SalesDecision,
        UpdateAck,
        describe_validation_error,
    )
    from subchange.domain.principals import Action
    from subchange.domain.step_io import (
        ApplyInput,
        ApplyOutput,
        ChargeInput,
        RefundTicketInput,
    )

# The workflow's own modules run in the sandbox, which checks them for non-determinism.
from workflows.cancellation import CHECK_APPLY_BEFORE_CANCEL, Cancellation, CancelRequested
from workflows.endings import Endings
from workflows.principals import CHECK_PRINCIPALS, PrincipalRefused, Principals
from workflows.requote import QuoteNoLongerValid, Requote
from workflows.runner import StepRunner
from workflows.sales import SalesApproval
from workflows.state import ChangeRun
from workflows.steps import (
    APPLY_CHANGE,
    AUTHORIZE_ADMIN,
    CHARGE,
    EMAIL_INVOICE,
    FIND_APPLIED_CHANGE,
    OPEN_CHANGE,
    OPEN_REFUND_TICKET,
    QUOTE_CHANGE,
    VALIDATE_CHANGE,
)


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type="UpdateRefused")


@workflow.defn(name=WORKFLOW_TYPE)
class SubscriptionChange:
    def __init__(self) -> None:
        self.change = ChangeRun()
        self.cancellation = Cancellation()
        self.steps = StepRunner(self.change, self.cancellation)
        self.end = Endings(self.change, self.steps, self.cancellation)
        self.sales = SalesApproval(self.change, self.steps, self.cancellation, self.end)
        self.principals = Principals(self.change)
        self.requote = Requote(self.change, self.steps)
        self.lock = asyncio.Lock()

    @workflow.run
    async def run(self, *arguments: Any) -> ChangeResult:
        # The input is read here, untyped, not by the converter, so a bad one from any client
        # (not an object, no argument, two) ends as an `invalid_request` rejection instead of a
        # workflow task failing forever.
        if len(arguments) != 1:
            return await self.end.invalid(
                f"expected one argument, the change request, got {len(arguments)}")
        try:
            self.change.request = request = ChangeRequest.model_validate(arguments[0])
        except ValidationError as error:
            return await self.end.invalid(describe_validation_error(error))
        if request.workflow_id != workflow.info().workflow_id:
            return await self.end.invalid(
                f"workflow id must be {request.workflow_id!r} (change-<request_id>)")
        self.change.publish()
        try:
            try:
                return await self._change(request)
            except CancelRequested:
                return await self._cancelled()
            except QuoteNoLongerValid as rejected:
                return await self.end.rejected(rejected.rejection)
        except asyncio.CancelledError:
            return await self._on_temporal_cancel()

    # --- the story ----------------------------------------------------------------------------

    async def _change(self, request: ChangeRequest) -> ChangeResult:
        opened = await self.steps.run(OPEN_CHANGE, request)
        if opened.previous_result is not None:
            return await self.end.repeated(opened.previous_result)
        today = workflow.now().date()
        admission = await self.steps.run(AUTHORIZE_ADMIN, request)
        if not admission.admitted:
            return await self.end.rejected(admission.rejection)
        dated = self.requote.dated(request, today)
        admission = await self.steps.run(VALIDATE_CHANGE, dated)
        if not admission.admitted:
            return await self.end.rejected(admission.rejection)
        quoted = await self.steps.run(QUOTE_CHANGE, dated)
        if not quoted.admitted or quoted.quote is None:
            return await self.end.rejected(quoted.rejection)
        self.change.quote = quote = quoted.quote
        payment = await self._settle_payment(request, quote)
        if isinstance(payment, ChangeResult):  # sales rejected it, or did not decide in time
            return payment
        quote = self.change.quote  # quoted again if the charge waited for support
        if payment.method == "offline":  # sales took days, maybe: price the change as of now
            quote = await self.requote.quote_again(request, quote)
            payment = payment.model_copy(update={"amount": quote.amount_due})
        self.change.payment = payment
        self.change.applied = applied = await self.steps.run(
            APPLY_CHANGE, ApplyInput(request=request, quote=quote, payment=payment))
        self.cancellation.too_late("applied")
        return await self._deliver(request, quote, applied)

    async def _settle_payment(self, request: ChangeRequest, quote: Quote
                              ) -> PaymentRecord | ChangeResult:
        """Offline payers wait for sales (R9), card payers are charged what is due."""
        if quote.payment_method == "offline":
            return await self.sales.decide(request, quote)
        if quote.amount_due > 0:
            return await self.steps.run(CHARGE, ChargeInput(request=request, quote=quote),
                                        refresh=self.requote.charge_as_of_now)
        return PaymentRecord(method="none", currency=quote.currency)

    async def _deliver(self, request: ChangeRequest, quote: Quote, applied: ApplyOutput
                       ) -> ChangeResult:
        """Email the invoice (R10), open the refund ticket when one was asked for (R11)."""
        invoice = await self.steps.run(
            EMAIL_INVOICE, applied.invoice_number,
            advance=self.change.lifecycle.current is ChangeState.APPLIED)
        ticket = None
        if request.request_refund and quote.refundable_amount > 0:
            ticket = await self.steps.run(OPEN_REFUND_TICKET, RefundTicketInput(
                request=request, quote=quote, invoice_number=applied.invoice_number))
        return await self.end.finish(Trigger.COMPLETE, self.change.result_of(
            ChangeStatus.COMPLETED, invoice=invoice, refund_ticket=ticket,
            subscription=applied.subscription))

    async def _on_temporal_cancel(self) -> ChangeResult:
        """A cancellation through Temporal (Web UI, `temporal workflow cancel`) is handled like
        the `cancel` update, so the subscription is released and a charge refunded; a change
        already applied or decided is finished instead. Every step it repeats is idempotent."""
        change = self.change
        assert change.request is not None
        if change.lifecycle.is_parked:
            change.lifecycle.fire(Trigger.RESUME)
        if change.finishing is not None:
            return await self.end.finish(*change.finishing)
        if change.applied is not None:
            assert change.quote is not None
            return await self._deliver(change.request, change.quote, change.applied)
        self.cancellation.take_temporal_cancel()
        return await self._cancelled()

    async def _cancelled(self) -> ChangeResult:
        """A cancel takes effect, unless the database says a failed apply did commit: then the
        change is applied, the cancel is too late, and the change is finished."""
        change, parked = self.change, self.steps.last_parked
        if (parked is not None and parked.name == APPLY_CHANGE.name and change.applied is None
                and workflow.patched(CHECK_APPLY_BEFORE_CANCEL)):
            assert change.request is not None and change.quote is not None
            found = await self.steps.run(FIND_APPLIED_CHANGE, change.request)
            if found.applied is not None:
                change.applied = found.applied
                change.advance(Trigger.APPLY)
                self.cancellation.too_late("applied")
                return await self._deliver(change.request, change.quote, found.applied)
        return await self.end.cancelled()

    # --- query and updates --------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> ChangeStatusView:
        progress = self.change.progress
        return ChangeStatusView(
            workflow_id=workflow.info().workflow_id, state=self.change.lifecycle.current.value,
            step=progress.current_step, waiting_for=progress.waiting_for,
            history=progress.history, last_error=progress.last_error, result=self.change.result)

    @workflow.update(name="retry")
    async def retry(self, request: RetryRequest) -> UpdateAck:
        if await self._authorize(Action.RETRY, request.by, "retry"):
            self._validate_retry(request)  # the change may have moved on meanwhile
        self.steps.retry_requested = True
        by = f" (asked by {request.by})" if request.by else ""
        return UpdateAck(state=self.change.lifecycle.current.value,
                         message=f"retrying {self.change.progress.current_step}{by}")

    @retry.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        if (refusal := self.steps.retry_refusal()) is not None:
            raise _refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.RETRY, request.by)) is not None:
            raise _refused(f"can't retry: {refusal}")

    @workflow.update(name="cancel")
    async def cancel(self, request: CancelRequest) -> UpdateAck:
        async with self.lock:
            if await self._authorize(Action.CANCEL, request.by, "cancel") or workflow.patched(
                    CHECK_PRINCIPALS):
                # The change may have moved on while the directory answered, or while this
                # cancel waited for the lock behind another one.
                self._validate_cancel(request)
            self.cancellation.accept(request)
            await workflow.wait_condition(lambda: self.cancellation.outcome is not None)
            outcome = self.cancellation.outcome
            assert outcome is not None
            if not outcome.took_effect:  # accepted while a step ran that can't be undone
                raise _refused(f"can't cancel: {outcome.message}")
            return UpdateAck(state=self.change.lifecycle.current.value, message=outcome.message)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if (refusal := self.cancellation.refusal(self.change.lifecycle,
                                                 self.steps.last_parked)) is not None:
            raise _refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.CANCEL, request.by)) is not None:
            raise _refused(f"can't cancel: {refusal}")

    @workflow.update(name="sales_decision")
    async def sales_decision(self, decision: SalesDecision) -> UpdateAck:
        if await self._authorize(Action.SALES_DECISION, decision.by, "decide"):
            self._validate_sales_decision(decision)
        self.change.decision = decision
        verdict = "approved" if decision.approved else "rejected"
        return UpdateAck(state=self.change.lifecycle.current.value,
                         message=f"{self.change.sales_case} {verdict} by {decision.by}")

    @sales_decision.validator
    def _validate_sales_decision(self, decision: SalesDecision) -> None:
        if (refusal := self.sales.decision_refusal()) is not None:
            raise _refused(refusal)
        if (refusal := self.principals.immediate_refusal(Action.SALES_DECISION,
                                                         decision.by)) is not None:
            raise _refused(f"can't decide: {refusal}")

    async def _authorize(self, action: Action, by: str | None, verb: str) -> bool:
        """The staff directory's verdict on `by` (SPEC section 9); True when it was asked."""
        try:
            return await self.principals.check(action, by)
        except PrincipalRefused as refusal:
            raise _refused(f"can't {verb}: {refusal}") from None
