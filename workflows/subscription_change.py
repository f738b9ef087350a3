"""The `SubscriptionChange` workflow: one seat or plan change, from request to invoice.

authorize admin → validate → quote → charge or route to sales → apply → email invoice → refund
ticket. Business rejections end the workflow with status `rejected`; a step that fails for good
parks the change in `awaiting_support` until the `retry` or `cancel` update.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.admission import AdmissionActivities
    from activities.invoicing import InvoiceActivities
    from activities.payments import PaymentActivities
    from activities.sales import SalesActivities
    from activities.subscriptions import SubscriptionActivities
    from activities.tickets import TicketActivities
    from state_machines.lifecycle import ChangeLifecycle, ChangeState
    from subchange.domain.contracts import (
        CancelRequest,
        ChangeRequest,
        ChangeResult,
        ChangeStatus,
        ChangeStatusView,
        PaymentRecord,
        Quote,
        Rejection,
        RetryRequest,
        SalesDecision,
        UpdateAck,
        describe_validation_error,
    )
    from subchange.domain.search_attributes import search_attribute_updates
    from subchange.domain.step_io import (
        ApplyInput,
        ApplyOutput,
        ChargeInput,
        CloseChangeInput,
        CloseSalesCaseInput,
        DatedRequest,
        RefundChargeInput,
        RefundTicketInput,
        SalesCaseInput,
    )
    from workflows.policies import STEPS
    from workflows.progress import Progress, describe_duration


class CancelRequested(Exception):
    """Raised at a step boundary once support or the requester asked to cancel."""


@workflow.defn(name="SubscriptionChange")
class SubscriptionChange:
    def __init__(self) -> None:
        self.lifecycle = ChangeLifecycle()
        self.progress = Progress()
        self.request: ChangeRequest | None = None
        self.quote: Quote | None = None
        self.payment: PaymentRecord | None = None
        self.sales_case: str | None = None
        self.retry_requested = False
        self.cancel_request: CancelRequest | None = None
        self.cancel_outcome: str | None = None
        self.decision: SalesDecision | None = None
        self.result: ChangeResult | None = None
        self.lock = asyncio.Lock()
        self.parked_cancellable = True
        self.charge_outcome_unknown = False
        self.applied: ApplyOutput | None = None
        self.finishing: tuple[str, ChangeResult] | None = None

    @workflow.run
    async def run(self, raw_request: dict[str, Any]) -> ChangeResult:
        # The input is validated here, not by the converter, so a bad request from any client
        # ends as a clear `invalid_request` rejection instead of a workflow task failing forever.
        workflow_id = workflow.info().workflow_id
        try:
            self.request = request = ChangeRequest.model_validate(raw_request)
        except ValidationError as error:
            return await self._end_invalid(describe_validation_error(error))
        if request.workflow_id != workflow_id:
            return await self._end_invalid(
                f"workflow id must be {request.workflow_id!r} (change-<request_id>)")
        self._publish()
        opened = await self._step("open_change", AdmissionActivities.open_change, request,
                                  summary=f"open the change record of {request.request_id}")
        if opened.previous_result is not None:
            # An earlier run of this workflow id already ended: report its result.
            self.result = opened.previous_result
            self._publish()
            return opened.previous_result
        try:
            try:
                return await self._pipeline(request)
            except CancelRequested:
                return await self._cancel()
        except asyncio.CancelledError:
            return await self._on_temporal_cancel()

    async def _pipeline(self, request: ChangeRequest) -> ChangeResult:
        today = workflow.now().date()
        decision = await self._step(
            "authorize_admin", AdmissionActivities.authorize_admin, request,
            summary=f"is {request.requested_by} an active admin of {request.org_id}?")
        if decision.rejection:
            return await self._reject(decision.rejection)
        self._move("authorize")
        step_input = DatedRequest(request=request, change_date=today)
        decision = await self._step(
            "validate_change", AdmissionActivities.validate_change, step_input,
            summary=f"check {request.describe()} against the seat and plan rules")
        if decision.rejection:
            return await self._reject(decision.rejection)
        self._move("validate")
        quoted = await self._step("quote_change", AdmissionActivities.quote_change, step_input,
                                  summary=f"price the change as of {today}")
        if quoted.rejection or quoted.quote is None:
            return await self._reject(quoted.rejection or Rejection(
                reason_code="quote_failed", reason="the change could not be quoted"))
        self.quote = quote = quoted.quote
        self._move("quote")

        if quote.payment_method == "offline":
            outcome = await self._await_sales(request, quote)
            if outcome is not None:
                return outcome
        elif quote.amount_due > 0:
            self.payment = await self._step(
                "charge", PaymentActivities.charge, ChargeInput(request=request, quote=quote),
                summary=f"charge {quote.amount_due} {quote.currency} to the card")
            self._move("charge")
        else:
            self.payment = PaymentRecord(method="none", currency=quote.currency)

        assert self.payment is not None
        applied = await self._step(
            "apply_change", SubscriptionActivities.apply_change,
            ApplyInput(request=request, quote=quote, payment=self.payment),
            summary=f"{quote.old_plan}×{quote.old_seats} → {quote.new_plan}×{quote.new_seats}")
        self.applied = applied
        self._move("apply")
        self._refuse_late_cancel("applied")
        return await self._after_apply(request, quote, applied)

    async def _after_apply(self, request: ChangeRequest, quote: Quote,
                           applied: ApplyOutput) -> ChangeResult:
        invoice = await self._step("email_invoice", InvoiceActivities.email_invoice,
                                   applied.invoice_number,
                                   summary=f"email invoice {applied.invoice_number} with its PDF")
        if self.lifecycle.current is ChangeState.APPLIED:
            self._move("invoice")
        ticket = None
        if request.request_refund and quote.refundable_amount > 0:
            ticket = await self._step(
                "open_refund_ticket", TicketActivities.open_refund_ticket,
                RefundTicketInput(request=request, quote=quote,
                                  invoice_number=applied.invoice_number),
                summary=f"ask for a refund of {quote.refundable_amount} {quote.currency}")
        return await self._finish("complete", self._result(
            ChangeStatus.COMPLETED, invoice=invoice, refund_ticket=ticket,
            subscription=applied.subscription))

    # --- offline payers: sales decides (R9) -------------------------------------------------

    async def _await_sales(self, request: ChangeRequest, quote: Quote) -> ChangeResult | None:
        case = await self._step("open_sales_case", SalesActivities.open_sales_case,
                                SalesCaseInput(request=request, quote=quote),
                                summary=f"ask sales to approve {quote.amount_due} "
                                        f"{quote.currency} (offline payer)")
        self.sales_case = case.case_id
        self._move("route_to_sales")
        self.progress.wait(workflow.now(), "sales_decision",
                           f"a sales decision on {case.case_id} (expires after "
                           f"{describe_duration(case.decision_timeout)})")
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: self.decision is not None or self.cancel_request is not None,
                timeout=case.decision_timeout, timeout_summary="sales decision deadline")
        except TimeoutError:
            self.progress.done(workflow.now(), "expired")
            await self._close_sales_case("expired")
            return await self._finish("expire", self._result(
                ChangeStatus.EXPIRED, reason_code="sales_decision_timeout",
                reason=f"no sales decision on {case.case_id} within {describe_duration(case.decision_timeout)}"))
        if self.decision is None:
            self.progress.done(workflow.now(), "cancelled")
            raise CancelRequested
        decision = self.decision
        self.progress.done(workflow.now(), "approved" if decision.approved else "rejected",
                           f"by {decision.by}" + (f": {decision.note}" if decision.note else ""))
        await self._close_sales_case("approved" if decision.approved else "rejected")
        if not decision.approved:
            return await self._finish("reject", self._result(
                ChangeStatus.REJECTED, reason_code="sales_rejected",
                reason=f"sales rejected the change ({decision.by})"
                       + (f": {decision.note}" if decision.note else "")))
        self._move("sales_approve")
        self.payment = PaymentRecord(method="offline", amount=quote.amount_due,
                                     currency=quote.currency, sales_case=case.case_id,
                                     approved_by=decision.by)
        return None

    async def _close_sales_case(self, outcome: str) -> None:
        assert self.sales_case is not None
        by = self.decision.by if self.decision else (
            self.cancel_request.by if self.cancel_request else None)
        note = self.decision.note if self.decision else ""
        await self._step("close_sales_case", SalesActivities.close_sales_case,
                         CloseSalesCaseInput(case_id=self.sales_case, outcome=outcome, by=by,
                                             note=note),
                         summary=f"close {self.sales_case} as {outcome}", cancellable=False)

    # --- running a step ---------------------------------------------------------------------

    async def _step(self, name: str, method: Any, arg: Any, *, summary: str | None = None,
                    cancellable: bool = True) -> Any:
        """Run one activity; when it fails for good, park until support retries or cancels."""
        policy = STEPS[name]
        while True:
            if cancellable:
                self._check_cancel()
            self.progress.begin(workflow.now(), name)
            started = workflow.now()
            self._publish()
            try:
                result = await workflow.execute_activity_method(
                    method, arg, start_to_close_timeout=policy.start_to_close,
                    retry_policy=policy.retry, summary=summary or name)
            except ActivityError as error:
                message = _failure_message(error)
                _step_duration(name, "failed", workflow.now() - started)
                # A charge that failed for another reason than a decline may have taken money.
                self.charge_outcome_unknown = name == "charge" and not message.startswith(
                    ("CardDeclined", "NoPaymentMethod"))
                self.parked_cancellable = cancellable
                self.progress.fail(workflow.now(), message)
                self.lifecycle.park()
                self.progress.wait(workflow.now(), "support",
                                   f"support to retry {name} or cancel the change")
                self._publish()
                await workflow.wait_condition(
                    lambda: self.retry_requested
                    or (cancellable and self.cancel_request is not None))
                self.progress.done(workflow.now(), "retry" if self.retry_requested else "cancel")
                self.retry_requested = False
                self.lifecycle.resume()
                continue
            self.progress.done(workflow.now(), "ok")
            _step_duration(name, "ok", workflow.now() - started)
            return result

    def _check_cancel(self) -> None:
        if self.cancel_request is not None and self.lifecycle.cancel_refusal() is None:
            raise CancelRequested

    def _refuse_late_cancel(self, reached: str) -> None:
        if self.cancel_request is not None and self.cancel_outcome is None:
            self.cancel_outcome = f"too late: the change was {reached} before the cancel took effect"

    # --- endings ----------------------------------------------------------------------------

    async def _on_temporal_cancel(self) -> ChangeResult:
        """A cancellation through Temporal (Web UI, `temporal workflow cancel`) is handled like
        the `cancel` update, so the subscription is released and a charge refunded; a change
        already applied or decided is finished instead. Every step it repeats is idempotent."""
        assert self.request is not None
        if self.lifecycle.is_parked:
            self.lifecycle.resume()
        if self.finishing is not None:
            return await self._finish(*self.finishing)
        if self.applied is not None:
            assert self.quote is not None
            return await self._after_apply(self.request, self.quote, self.applied)
        if self.cancel_request is None:
            self.cancel_request = CancelRequest(reason="cancellation requested through Temporal")
        return await self._cancel()

    async def _cancel(self) -> ChangeResult:
        cancel = self.cancel_request
        assert cancel is not None
        if self.sales_case and self.decision is None:
            await self._close_sales_case("cancelled")
        charged = self.lifecycle.effective is ChangeState.CHARGED and self.payment is not None
        refund = None
        if charged or self.charge_outcome_unknown:
            assert self.quote is not None
            refund = await self._step(
                "refund_charge", PaymentActivities.refund_charge,
                RefundChargeInput(intent_id=self.payment.intent_id if self.payment else None,
                                  amount=self.quote.amount_due, currency=self.quote.currency,
                                  reason=cancel.reason or "change cancelled"),
                cancellable=False, summary="refund the charge of a cancelled change")
        if refund is not None and refund.refund_id:
            self.payment = (self.payment or PaymentRecord(
                method="card", amount=refund.amount, currency=self.quote.currency)
            ).model_copy(update={"refund_id": refund.refund_id})
            if not charged:  # the lifecycle never saw the charge succeed: mark it, then undo it
                self.lifecycle.charge()
            trigger, outcome = "compensate", f"cancelled; charge refunded ({refund.refund_id})"
        else:
            trigger, outcome = "cancel", "cancelled; nothing was charged or changed"
        by = f" by {cancel.by}" if cancel.by else ""
        self.cancel_outcome = outcome
        return await self._finish(trigger, self._result(
            ChangeStatus.CANCELLED, reason_code="cancelled",
            reason=f"cancelled{by}" + (f": {cancel.reason}" if cancel.reason else "")))

    async def _reject(self, rejection: Rejection) -> ChangeResult:
        return await self._finish("reject", self._result(ChangeStatus.REJECTED,
                                               reason_code=rejection.reason_code,
                                               reason=rejection.reason))

    async def _end_invalid(self, reason: str) -> ChangeResult:
        self._move("reject")
        result = ChangeResult(workflow_id=workflow.info().workflow_id, request_id="",
                              status=ChangeStatus.REJECTED, reason_code="invalid_request",
                              reason=f"invalid request: {reason}")
        if self.request is not None:
            result.request_id = self.request.request_id
        self.result = result
        self._publish()
        return result

    async def _finish(self, trigger: str, result: ChangeResult) -> ChangeResult:
        """Record the result and release the subscription, then take the final transition."""
        self.finishing = (trigger, result)
        await self._step("close_change", AdmissionActivities.close_change,
                         CloseChangeInput(result=result), cancellable=False)
        getattr(self.lifecycle, trigger)()
        self._refuse_late_cancel(result.status.value)
        self.result = result
        self._publish()
        assert self.request is not None
        workflow.metric_meter().create_counter(
            "subchange_changes", "changes ended, by status").add(
            1, {"status": result.status.value, "product": self.request.product,
                "kind": self.request.change.kind})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _result(self, status: ChangeStatus, **fields: Any) -> ChangeResult:
        assert self.request is not None
        return ChangeResult(workflow_id=workflow.info().workflow_id,
                            request_id=self.request.request_id, status=status, quote=self.quote,
                            payment=self.payment, **fields)

    # --- visibility -------------------------------------------------------------------------

    def _move(self, trigger: str) -> None:
        getattr(self.lifecycle, trigger)()
        self._publish()

    def _publish(self) -> None:
        """Keep search attributes and the Web UI's current details in step with the state."""
        status = self.result.status if self.result else ChangeStatus.RUNNING
        workflow.upsert_search_attributes(search_attribute_updates(
            request=self.request, state=self.lifecycle.current.value, status=status.value))
        workflow.set_current_details(self.progress.describe(self.lifecycle.current.value))

    # --- query and updates ------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> ChangeStatusView:
        return ChangeStatusView(
            workflow_id=workflow.info().workflow_id, state=self.lifecycle.current.value,
            step=self.progress.current_step, waiting_for=self.progress.waiting_for,
            history=self.progress.history, last_error=self.progress.last_error,
            result=self.result)

    @workflow.update(name="retry")
    async def retry(self, request: RetryRequest) -> UpdateAck:
        step = self.progress.current_step
        self.retry_requested = True
        by = f" (asked by {request.by})" if request.by else ""
        return UpdateAck(state=self.lifecycle.current.value, message=f"retrying {step}{by}")

    @retry.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        if not self.lifecycle.is_parked:
            raise ApplicationError(
                f"nothing to retry: the change is {self.lifecycle.current.value}; retry applies "
                "only to a change awaiting support", type="UpdateRefused")
        if self.retry_requested:
            raise ApplicationError("a retry is already under way", type="UpdateRefused")

    @workflow.update(name="cancel")
    async def cancel(self, request: CancelRequest) -> UpdateAck:
        async with self.lock:
            self.cancel_request = request
            await workflow.wait_condition(lambda: self.cancel_outcome is not None)
            outcome = self.cancel_outcome or ""
            if outcome.startswith("too late"):  # accepted while a step ran that can't be undone
                raise ApplicationError(f"can't cancel: {outcome}", type="UpdateRefused")
            return UpdateAck(state=self.lifecycle.current.value, message=outcome)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self.cancel_request is not None:
            raise ApplicationError("a cancel is already under way", type="UpdateRefused")
        if self.lifecycle.is_parked and not self.parked_cancellable:
            raise ApplicationError(
                f"can't cancel: {self.progress.current_step} finishes a change that has already "
                "been decided; retry it instead", type="UpdateRefused")
        refusal = self.lifecycle.cancel_refusal()
        if refusal is not None:
            raise ApplicationError(f"can't cancel: {refusal}", type="UpdateRefused")

    @workflow.update(name="sales_decision")
    async def sales_decision(self, decision: SalesDecision) -> UpdateAck:
        self.decision = decision
        verdict = "approved" if decision.approved else "rejected"
        return UpdateAck(state=self.lifecycle.current.value,
                         message=f"{self.sales_case} {verdict} by {decision.by}")

    @sales_decision.validator
    def _validate_sales_decision(self, decision: SalesDecision) -> None:
        if self.lifecycle.current is not ChangeState.AWAITING_SALES:
            raise ApplicationError(
                f"no sales decision is awaited: the change is {self.lifecycle.current.value}",
                type="UpdateRefused")
        if self.decision is not None or self.cancel_request is not None:
            raise ApplicationError("the sales decision has already been made",
                                   type="UpdateRefused")


def _failure_message(error: ActivityError) -> str:
    cause = error.cause
    while cause is not None and cause.cause is not None and not isinstance(cause,
                                                                          ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        kind = f"{cause.type}: " if cause.type else ""
        return f"{kind}{cause.message}"
    return str(cause or error)


def _step_duration(step: str, outcome: str, duration: timedelta) -> None:
    """Time in each step (Prometheus histogram, replay-safe: the SDK skips it on replay)."""
    workflow.metric_meter().create_histogram_timedelta(
        "subchange_step_duration", "time spent in a step of a change", "ms").record(
        duration, {"step": step, "outcome": outcome})
