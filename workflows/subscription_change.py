"""The `SubscriptionChange` workflow: one seat or plan change, from request to invoice.

authorize admin → validate → quote → settle payment (charge, sales, or nothing) → apply → email
invoice → refund ticket. Business rejections end the workflow with status `rejected`; a step that
fails for good parks the change in `awaiting_support` until the `retry` or `cancel` update
(workflows/runner.py). The steps are in workflows/steps.py, the endings in workflows/endings.py,
the query and the updates in workflows/messages.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeState, Trigger
    from subchange.domain.contracts import (
        WORKFLOW_TYPE,
        ChangeRequest,
        ChangeResult,
        ChangeStatus,
        PaymentRecord,
        Quote,
        describe_validation_error,
    )
    from subchange.domain.step_io import (
        ApplyInput,
        ApplyOutput,
        ChargeInput,
        RefundTicketInput,
    )

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.cancellation import CHECK_APPLY_BEFORE_CANCEL, Cancellation, CancelRequested
from workflows.endings import Endings
from workflows.messages import ChangeMessages
from workflows.principals import Principals
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
from workflows.versions import patched, take_at_start


@workflow.defn(name=WORKFLOW_TYPE)
class SubscriptionChange(ChangeMessages):
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
        take_at_start()  # which version of this code the run follows (workflows/versions.py)
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
        self.cancellation.opened = True
        today = workflow.now().date()
        admission = await self.steps.run(AUTHORIZE_ADMIN, request)
        if not admission.admitted:
            return await self.end.rejected(admission.rejection)
        self.change.dated = self.requote.dated(request, today)
        admission = await self.steps.run(VALIDATE_CHANGE, self.change.dated,
                                         refresh=self.requote.as_of_now)
        if not admission.admitted:
            return await self.end.rejected(admission.rejection)
        quoted = await self.steps.run(QUOTE_CHANGE, self.change.dated,
                                      refresh=self.requote.as_of_now)
        if not quoted.admitted or quoted.quote is None:
            return await self.end.rejected(quoted.rejection)
        self.change.quote = quote = quoted.quote
        payment = await self._settle_payment(request, quote)
        if isinstance(payment, ChangeResult):  # sales rejected it, or did not decide in time
            return payment
        quote = self.change.quote  # quoted again if the charge waited for support
        if payment.method == "offline":  # sales took days, maybe: price the change as of now
            quote = await self.requote.quote_again(request, quote)
            payment = payment.model_copy(update={"amount": quote.total_due})
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
                and patched(CHECK_APPLY_BEFORE_CANCEL)):
            assert change.request is not None and change.quote is not None
            found = await self.steps.run(FIND_APPLIED_CHANGE, change.request)
            if found.applied is not None:
                change.applied = found.applied
                change.advance(Trigger.APPLY)
                self.cancellation.too_late("applied")
                return await self._deliver(change.request, change.quote, found.applied)
        return await self.end.cancelled()
