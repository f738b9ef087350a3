"""Charging the card on file (SPEC step 4) and refunding it when a charged change is cancelled."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dependencies import Dependencies
from subchange.adapters.gateway import CardDeclined
from subchange.domain.contracts import PaymentRecord
from subchange.domain.money import to_minor_units
from subchange.domain.step_io import ChargeInput, RefundChargeInput, RefundChargeOutput
from subchange.faults import pause_point
from subchange.store import ledger, subscriptions
from subchange.store.tables import GatewayCall

# Keys of the gateway-call ledger, one row per change and kind of call.
LEDGER_CHARGE, LEDGER_REFUND = "charge", "refund"


class PaymentActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def _save(self, call: GatewayCall) -> None:
        with self.deps.sessions() as session:
            ledger.save_gateway_call(session=session, call=call)

    @activity.defn(name="charge")
    def charge(self, charge: ChargeInput) -> PaymentRecord:
        """Charge the quoted amount once per change: create the intent, record it, confirm it."""
        workflow_id = activity.info().workflow_id
        quote, request = charge.quote, charge.request
        gateway, settings = self.deps.gateway, self.deps.settings
        with self.deps.sessions() as session:
            call = ledger.gateway_call(session=session, workflow_id=workflow_id,
                                       step=LEDGER_CHARGE)
            card = subscriptions.card_on_file(session=session, org_id=request.org_id,
                                              product=request.product)
        if call is not None and call.status == "succeeded":
            return self._record(call)
        if call is None or call.external_id is None:
            if card is None:
                raise ApplicationError(f"{request.org_id} has no card on file for "
                                       f"{request.product}", type="NoPaymentMethod",
                                       non_retryable=True)
            call = GatewayCall(workflow_id=workflow_id, step=LEDGER_CHARGE, status="started",
                               amount=quote.amount_due, currency=quote.currency)
            self._save(call)
            try:
                call.external_id = gateway.create_intent(
                    amount_minor=to_minor_units(quote.amount_due, quote.currency),
                    currency=quote.currency, customer_id=card.customer_id,
                    method_id=card.payment_method_id,
                    metadata={"workflow_id": workflow_id, "org_id": request.org_id,
                              "product": request.product})
            except CardDeclined as declined:
                self._declined(call, declined.code, str(declined))
            call.status = "created"
            self._save(call)
        pause_point(settings, "charge.before_confirm")
        state = gateway.intent_state(call.external_id)
        if state.status == "requires_confirmation":
            state = gateway.confirm_intent(state.id)
        pause_point(settings, "charge.after_confirm")
        if state.status != "succeeded":
            self._declined(call, state.decline_code, state.decline_message or state.status)
        call.status = "succeeded"
        self._save(call)
        activity.metric_meter().create_counter("subchange_charges", "cards charged").add(
            1, {"currency": quote.currency})
        activity.logger.info("charged %s %s (intent %s)", quote.amount_due, quote.currency,
                             call.external_id)
        return self._record(call)

    def _declined(self, call: GatewayCall, code: str | None, message: str) -> None:
        # A declined intent moved no money: forget it so a retry after a card update starts anew.
        call.status, call.external_id = "declined", None
        self._save(call)
        raise ApplicationError(f"card declined ({code or 'unknown'}): {message}",
                               {"decline_code": code}, type="CardDeclined", non_retryable=True)

    def _record(self, call: GatewayCall) -> PaymentRecord:
        assert call.external_id is not None and call.amount is not None
        charge_id = self.deps.gateway.intent_state(call.external_id).charge_id
        return PaymentRecord(method="card", amount=call.amount, currency=call.currency or "",
                             charge_id=charge_id, intent_id=call.external_id)

    @activity.defn(name="refund_charge")
    def refund_charge(self, refund: RefundChargeInput) -> RefundChargeOutput:
        """Compensation: refund a charged change that was cancelled before it was applied."""
        workflow_id = activity.info().workflow_id
        with self.deps.sessions() as session:
            call = ledger.gateway_call(session=session, workflow_id=workflow_id,
                                       step=LEDGER_REFUND)
        if call is not None and call.status == "succeeded" and call.external_id:
            return RefundChargeOutput(refund_id=call.external_id, amount=call.amount or 0)
        with self.deps.sessions() as session:
            if subscriptions.is_applied(session=session, workflow_id=workflow_id):
                raise ApplicationError("the change is applied to the subscription: its charge "
                                       "stays (a refund would give the change away)",
                                       type="ChangeApplied", non_retryable=True)
        intent_id = refund.intent_id or self._charged_intent(workflow_id)
        if intent_id is None:
            return RefundChargeOutput(refund_id=None, amount=0)
        call = call or GatewayCall(workflow_id=workflow_id, step=LEDGER_REFUND,
                                   status="started")
        self._save(call)
        refund_id, _ = self.deps.gateway.refund_intent(
            intent_id, metadata={"workflow_id": workflow_id, "reason": refund.reason[:200]})
        call.external_id, call.status = refund_id, "succeeded"
        call.amount, call.currency = refund.amount, refund.currency
        self._save(call)
        activity.metric_meter().create_counter("subchange_refunds", "charges refunded").add(
            1, {"currency": refund.currency})
        activity.logger.info("refunded intent %s (%s)", intent_id, refund_id)
        return RefundChargeOutput(refund_id=refund_id, amount=refund.amount)

    def _charged_intent(self, workflow_id: str) -> str | None:
        """The intent of this change that took money, when the charge step's outcome is unknown
        to the workflow (it failed for good after the gateway may have confirmed)."""
        with self.deps.sessions() as session:
            call = ledger.gateway_call(session=session, workflow_id=workflow_id,
                                       step=LEDGER_CHARGE)
        if call is None or call.external_id is None:
            return None
        state = self.deps.gateway.intent_state(call.external_id)
        return state.id if state.status == "succeeded" else None
