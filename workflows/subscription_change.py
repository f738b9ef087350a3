"""The `SubscriptionChange` workflow: one seat or plan change, from request to invoice.

authorize admin → validate → quote → settle payment (charge, sales, or nothing) → apply → email
invoice → refund ticket. Business rejections end the workflow with status `rejected`; a step that
fails for good parks the change in `awaiting_support` until the `retry` or `cancel` update
(workflows/runner.py); a declined card waits for payment first (workflows/payment_recovery.py).
The steps are in workflows/steps.py, the endings in workflows/endings.py, the query and the
updates in workflows/messages.py.
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
        TemporalCancelRecord,
    )

from workflows.cancellation import Cancellation, CancelRequested, Cost
from workflows.endings import Endings
from workflows.messages import ChangeMessages
from workflows.payment_recovery import PaymentRecovery
from workflows.period_end import PeriodEnd
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
    RECORD_TEMPORAL_CANCEL,
    VALIDATE_CHANGE,
)
from workflows.versions import take_at_start


@workflow.defn(name=WORKFLOW_TYPE)
class SubscriptionChange(ChangeMessages):
    @workflow.init
    def __init__(self, *arguments: Any) -> None:
        """The request is read before anything else runs, the update handlers of the first
        workflow task included (a requester cancelling their own change is known as such)."""
        self.state = ChangeRun(patches=take_at_start())  # the version of this code it follows
        self.state.request, self.state.invalid = _read(arguments)
        self.cancels = Cancellation(self.state)
        self.runner = StepRunner(self.state, self.cancels)
        self.end = Endings(self.state, self.runner, self.cancels)
        self.sales = SalesApproval(self.state, self.runner, self.cancels, self.end)
        self.principals = Principals(self.state)
        self.requote = Requote(self.state, self.runner)
        self.payments = PaymentRecovery(self.state, self.runner, self.cancels)
        self.period_end = PeriodEnd(self.state, self.runner, self.cancels)

    @workflow.run
    async def run(self, *arguments: Any) -> ChangeResult:
        request = self.state.request
        if request is None or self.state.invalid is not None:
            return await self.end.invalid(self.state.invalid or "no change request")
        self.state.publish()
        # Once per run: the SDK does not record a workflow's metrics again on replay.
        workflow.metric_meter().create_counter("subchange_changes_started", "changes started").add(
            1, {"product": request.product, "kind": request.change.kind})
        try:
            try:
                return await self._change(request)
            except QuoteNoLongerValid as rejected:
                return await self.end.rejected(rejected.rejection)
        # The `cancel` update taking effect, or a cancellation through Temporal (the Web UI,
        # `temporal workflow cancel`), wherever the change was.
        except (CancelRequested, asyncio.CancelledError):
            return await self._cancelled()

    # --- the story ----------------------------------------------------------------------------

    async def _change(self, request: ChangeRequest) -> ChangeResult:
        opened = await self.runner.run(OPEN_CHANGE, request)
        if opened.previous_result is not None:
            return await self.end.repeated(opened.previous_result)
        self.state.opened = True
        admission = await self.runner.run(AUTHORIZE_ADMIN, request)
        if not admission.admitted:
            return await self.end.rejected(admission.rejection)
        admission, dated = await self.runner.run_refreshed(
            VALIDATE_CHANGE, self.requote.dated(request), refresh=self.requote.as_of_now)
        if not admission.admitted:
            return await self.end.rejected(admission.rejection)
        quoted, _ = await self.runner.run_refreshed(QUOTE_CHANGE, dated,
                                                    refresh=self.requote.as_of_now)
        if not quoted.admitted or quoted.quote is None:
            return await self.end.rejected(quoted.rejection)
        self.state.quote = quoted.quote
        if request.effective == "period_end":  # SPEC section 10: nothing charged now
            settled: tuple[PaymentRecord, Quote] | ChangeResult = (
                await self.period_end.wait_and_fire(request, quoted.quote))
        else:
            settled = await self._settle_payment(request, quoted.quote)
        if isinstance(settled, ChangeResult):  # sales rejected it, or did not decide in time
            return settled
        payment, quote = settled
        self.state.payment = payment
        self.state.applied = applied = await self.runner.run(
            APPLY_CHANGE, ApplyInput(request=request, quote=quote, payment=payment))
        self.cancels.too_late("applied")
        return await self._deliver(request, quote, applied)

    async def _settle_payment(self, request: ChangeRequest, quote: Quote
                              ) -> tuple[PaymentRecord, Quote] | ChangeResult:
        """The payment and the quote it is for: offline payers wait for sales (R9), then the
        change is priced again as of the approval (sales may take days); card payers are charged
        what is due, priced again if the charge waited for support, unless that quote is below
        the gateway's minimum charge: then it is carried to the next renewal invoice."""
        if quote.payment_method == "offline":
            decided = await self.sales.decide(request, quote)
            if isinstance(decided, ChangeResult):
                return decided
            self.state.quote = quote = await self.requote.quote_again(request, quote)
            return decided.model_copy(update={"amount": quote.total_due}), quote
        if quote.amount_due > 0:
            if quote.carried_to_renewal:  # below the gateway's minimum: nothing to send it
                return _carried(quote), quote
            try:
                payment, charged = await self.runner.run_refreshed(
                    CHARGE, ChargeInput(request=request, quote=quote), refresh=self._charge_again,
                    recover=self.payments.after_failure)
            except _CarriedAfterAWait as waited:
                return _carried(waited.quote), waited.quote
            return payment, charged.quote
        return PaymentRecord(method="none", currency=quote.currency), quote

    async def _charge_again(self, charge: ChargeInput) -> ChargeInput:
        """The charge to try after support's retry: priced as of now, and the change's quote
        (what a cancel refunds, what the result shows) with it; a price now below the gateway's
        minimum is carried instead of charged (nothing was taken, or it would not be priced
        again)."""
        charge = await self.requote.charge_as_of_now(charge)
        self.state.quote = charge.quote
        if charge.quote.carried_to_renewal:
            raise _CarriedAfterAWait(charge.quote)
        return charge

    async def _deliver(self, request: ChangeRequest, quote: Quote, applied: ApplyOutput
                       ) -> ChangeResult:
        """Email the invoice (R10), open the refund ticket when one was asked for (R11)."""
        invoice = await self.runner.run(
            EMAIL_INVOICE, applied.invoice_number,
            advance=self.state.lifecycle.current is ChangeState.APPLIED)
        ticket = None
        if request.request_refund and quote.refundable_amount > 0:
            ticket = await self.runner.run(OPEN_REFUND_TICKET, RefundTicketInput(
                request=request, quote=quote, invoice_number=applied.invoice_number))
        return await self.end.finish(Trigger.COMPLETE, self.state.result_of(
            ChangeStatus.COMPLETED, invoice=invoice, refund_ticket=ticket,
            subscription=applied.subscription))

    # --- a cancel -----------------------------------------------------------------------------

    async def _cancelled(self) -> ChangeResult:
        """The one compensation of a cancel, by what it costs (workflows/cancellation.py). Every
        step it runs is idempotent, so a Temporal cancel arriving while it runs starts it again."""
        while True:
            try:
                return await self._compensate()
            except asyncio.CancelledError:
                continue

    async def _compensate(self) -> ChangeResult:
        state = self.state
        assert state.request is not None
        if state.lifecycle.is_parked:  # a Temporal cancel woke a change waiting for support
            state.lifecycle.fire(Trigger.RESUME)
        cost = self.cancels.cost()
        if cost is Cost.MAYBE_APPLIED:  # did the apply commit after all?
            found = await self.runner.run(FIND_APPLIED_CHANGE, state.request)
            if found.applied is not None:  # it did: too late to cancel, the change is finished
                state.applied = found.applied
                state.advance(Trigger.APPLY)
                self.cancels.too_late("applied")
            cost = Cost.APPLIED if found.applied else self.cancels.cost_in_money()
        if self.cancels.temporal_cancel_unrecorded():
            await self.runner.run(RECORD_TEMPORAL_CANCEL, TemporalCancelRecord(
                org_id=state.request.org_id, reason=workflow.cancellation_reason() or "",
                outcome=cost.value))
            state.temporal_cancel_recorded = True
        if cost is Cost.ENDING_DECIDED:
            assert state.finishing is not None
            return await self.end.finish(*state.finishing)
        if cost is Cost.APPLIED:
            assert state.quote is not None and state.applied is not None
            return await self._deliver(state.request, state.quote, state.applied)
        self.cancels.take_temporal_cancel()
        return await self.end.cancelled()


class _CarriedAfterAWait(Exception):
    """Priced again after a wait, the charge is below the gateway's minimum: it is carried."""

    def __init__(self, quote: Quote) -> None:
        super().__init__("below the gateway's minimum charge")
        self.quote = quote


def _carried(quote: Quote) -> PaymentRecord:
    """The payment of a change below the gateway's minimum charge: its total, tax included,
    carried to the next renewal invoice (the apply records it pending), nothing charged now."""
    return PaymentRecord(method="carried", amount=quote.total_due, currency=quote.currency)


def _read(arguments: tuple[Any, ...]) -> tuple[ChangeRequest | None, str | None]:
    """The change request, and why it can't be run (None when it can). Read here, untyped, not
    by the converter, so a bad input from any client (not an object, no argument, two) ends as
    an `invalid_request` rejection instead of a workflow task failing forever."""
    if len(arguments) != 1:
        return None, f"expected one argument, the change request, got {len(arguments)}"
    try:
        request = ChangeRequest.model_validate(arguments[0])
    except ValidationError as error:
        return None, describe_validation_error(error)
    if request.workflow_id != workflow.info().workflow_id:
        return request, f"workflow id must be {request.workflow_id!r} (change-<request_id>)"
    return request, None
