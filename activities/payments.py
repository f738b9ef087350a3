"""Charging the card on file (SPEC step 4) and refunding it when a charged change is cancelled.

Both run at least once, and a timed-out attempt can still be running beside its retry, so both go
through the change's ledger entries (subchange.store.ledger), moved by compare-and-set:

    charge:  started ──intent created──▶ created ──confirmed──▶ succeeded
                │                          │  └──processing / needs 3-D Secure──▶ pending ─▶ …
                └──▶ declined (intent forgotten: a retry after a card update makes a new one)
             any state but succeeded ──cancel (refund_charge)──▶ voided
    refund:  started ──refunded, or nothing to refund──▶ succeeded

An intent is confirmed only after it is recorded, and only by the attempt that holds the entry at
that moment: an older attempt that created a second intent finds the entry taken and cancels its
own, so at most one intent per change can take money. A cancel voids the entry and cancels an
unconfirmed intent at the gateway, so a confirm still in flight fails instead of charging a
cancelled change. Each gateway request is followed by a heartbeat, so an attempt whose worker died
is retried after the heartbeat timeout, and an attempt Temporal cancelled stops before it moves
money (workflows/steps.py has the time budget).
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from subchange.adapters.gateway import CANCELLABLE, AmountTooSmall, CardDeclined, IntentState
from subchange.domain.contracts import PaymentRecord, Quote
from subchange.domain.declines import AUTHENTICATION_REQUIRED, NO_PAYMENT_METHOD, classify
from subchange.domain.money import from_minor_units, round_money, to_minor_units
from subchange.domain.step_io import ChargeInput, RefundChargeInput, RefundChargeOutput
from subchange.domain.webhooks import money_of
from subchange.faults import pause_point
from subchange.store import changes, ledger, subscriptions
from subchange.store.outbox import NewEvent
from subchange.store.tables import GatewayCall

# Keys of the gateway-call ledger, one row per change and kind of call.
LEDGER_CHARGE, LEDGER_REFUND = "charge", "refund"
NO_INTENT = ("started", "declined")  # charge states in which no intent is recorded


class _Attempt:
    """One attempt of a ledger-backed step: its token, its moves of the entry and a checkpoint
    between gateway requests."""

    def __init__(self, deps: Dependencies, step: str, *, on_behalf_of: str | None = None
                 ) -> None:
        """`on_behalf_of`: the attempt works for that (ended) change, not the activity's own."""
        self.deps, self.step = deps, step
        if on_behalf_of is not None:
            self.workflow_id, self.token = on_behalf_of, f"takeover.{uuid.uuid4().hex[:16]}"
        else:
            info = activity.info()
            self.workflow_id = calling_workflow_id()
            self.token = f"{info.activity_id}.{info.attempt}.{uuid.uuid4().hex[:16]}"

    def take(self, **started) -> GatewayCall:
        with self.deps.sessions() as session:
            return ledger.take(session=session, workflow_id=self.workflow_id, step=self.step,
                               holder=self.token, **started)

    def entry(self) -> GatewayCall:
        with self.deps.sessions() as session:
            entry = ledger.gateway_call(session=session, workflow_id=self.workflow_id,
                                        step=self.step)
        assert entry is not None
        return entry

    def move(self, expected: tuple[str, ...], to: str, *, held: bool = True,
             event: NewEvent | None = None, **fields) -> bool:
        """`held`: only while this attempt holds the entry; otherwise it records what the gateway
        already did, which any attempt may. `event` reports the move (payment.succeeded, ...),
        recorded in its transaction only when the entry moves, so a retry records none."""
        with self.deps.sessions() as session:
            return ledger.move(session=session, workflow_id=self.workflow_id, step=self.step,
                               holder=self.token if held else ledger.ANY_HOLDER,
                               expected=expected, to=to, event=event, **fields)

    def event(self, type: str, **data: Any) -> NewEvent:
        return NewEvent(type, self.workflow_id, data)

    def hold(self, expected: tuple[str, ...], status: str) -> None:
        """Go on (the entry in `status`) only while this attempt still holds it in one of the
        `expected` states, the moment before money moves: otherwise a newer attempt or a cancel
        took it, and this one stops."""
        self.checkpoint()
        if not self.move(expected, status):
            raise self.lost()

    def lost(self) -> ApplicationError:
        if self.entry().status == "voided":
            return ApplicationError("the change was cancelled: its charge is void",
                                    type="ChargeVoided", non_retryable=True)
        return ApplicationError(f"a newer attempt of {self.step} holds the change's "
                                "ledger entry; this one stopped", type="AttemptSuperseded")

    @staticmethod
    def checkpoint() -> None:
        """Heartbeat; stop (before the next request) once Temporal cancelled the attempt or
        timed it out."""
        if not activity.in_activity():  # a command working on behalf of an ended change
            return
        activity.heartbeat()
        if activity.is_cancelled():
            raise CancelledError("the attempt was cancelled")


class PaymentActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="charge", no_thread_cancel_exception=True)
    def charge(self, charge: ChargeInput) -> PaymentRecord:
        """Charge the quoted amount once per change: create the intent, record it, confirm it."""
        gateway, settings = self.deps.gateway, self.deps.settings
        attempt = _Attempt(self.deps, LEDGER_CHARGE)
        entry = attempt.take(amount=charge.quote.total_due, currency=charge.quote.currency)
        if entry.status == "voided":
            raise attempt.lost()
        quote = charge.quote
        if entry.status == "succeeded":
            assert entry.external_id is not None
            if _same_amount(entry, quote) or self._applied(attempt.workflow_id):
                return self._record(entry, gateway.intent_state(entry.external_id))
            entry = self._refund_an_earlier_run(attempt, entry)
        if entry.external_id is not None and entry.amount is not None and (round_money(
                entry.amount, quote.currency) != quote.total_due
                or self._card_replaced(charge, entry.external_id)):
            entry = self._supersede(attempt, entry)
        intent_id = entry.external_id
        if entry.status in NO_INTENT or intent_id is None:
            intent_id = self._create_intent(attempt, entry, charge)
        attempt.checkpoint()
        state = gateway.intent_state(intent_id)
        if state.status == "requires_confirmation":
            attempt.hold(("created", "pending"), "created")
            pause_point(settings, "charge.before_confirm")
            state = gateway.confirm_intent(intent_id)
        pause_point(settings, "charge.after_confirm")
        return self._settle(attempt, entry, state, charge)

    def _card_replaced(self, charge: ChargeInput, intent_id: str) -> bool:
        """The intent was made for a card that is no longer the one on file (a new card came
        while the change waited for payment, or for the payer's 3-D Secure): a new intent is
        made for the new card, once this one is cancelled, if it took nothing."""
        with self.deps.sessions() as session:
            card = subscriptions.card_on_file(session=session, org_id=charge.request.org_id,
                                              product=charge.request.product)
        if card is None:
            return False
        _Attempt.checkpoint()
        return self.deps.gateway.intent_state(intent_id).method_id not in (
            None, card.payment_method_id)

    def _applied(self, workflow_id: str) -> bool:
        with self.deps.sessions() as session:
            return subscriptions.is_applied(session=session, workflow_id=workflow_id)

    def _refund_an_earlier_run(self, attempt: _Attempt, entry: GatewayCall) -> GatewayCall:
        """An earlier run of this workflow id (terminated before its apply, then started again)
        was charged for another quote: that charge is refunded, once, under its own ledger entry,
        and this quote gets an intent of its own."""
        assert entry.external_id is not None
        earlier = _Attempt(self.deps, f"{LEDGER_REFUND}.{entry.generation}",
                           on_behalf_of=attempt.workflow_id)
        refund = earlier.take(currency=entry.currency)
        if refund.status != "succeeded":
            attempt.checkpoint()
            made = self.deps.gateway.existing_refund(entry.external_id)
            if made is None:
                attempt.checkpoint()
                earlier.hold(("started",), "started")
                made = self.deps.gateway.refund_intent(
                    entry.external_id,
                    idempotency_key=f"{attempt.workflow_id}:refund:{entry.generation}",
                    metadata={"workflow_id": attempt.workflow_id,
                              "reason": "charged by an earlier run for another quote"})
            currency = entry.currency or ""
            amount = from_minor_units(made[1], currency)
            earlier.move(("started",), "succeeded", held=False, external_id=made[0],
                         amount=amount, currency=currency, event=earlier.event(
                             "payment.refunded", refund=_refund_data(made[0], amount, currency,
                                                                     entry.external_id),
                             reason="charged by an earlier run for another quote"))
        attempt.move(("succeeded",), "declined", external_id=None,
                     generation=entry.generation + 1)
        return attempt.entry()

    def _supersede(self, attempt: _Attempt, entry: GatewayCall) -> GatewayCall:
        """The change was quoted again (the day moved while it waited), or its card replaced:
        an intent of the old amount or card that took nothing is cancelled, and the new amount
        or card gets a new one."""
        assert entry.external_id is not None
        attempt.checkpoint()
        state = self.deps.gateway.intent_state(entry.external_id)
        if state.status not in CANCELLABLE:
            return entry  # it took (or is taking) the money: that intent decides
        attempt.checkpoint()
        if self.deps.gateway.cancel_intent(entry.external_id).status != "canceled":
            return entry  # it went through meanwhile (the payer authenticated): it decides
        attempt.move(("created", "pending"), "declined", external_id=None,
                     generation=entry.generation + 1)
        return attempt.entry()

    def _create_intent(self, attempt: _Attempt, entry: GatewayCall, charge: ChargeInput) -> str:
        """A new unconfirmed intent, recorded as the change's charge while this attempt holds
        the entry; an intent it could not record is cancelled."""
        quote, request, gateway = charge.quote, charge.request, self.deps.gateway
        if self.deps.minimums.below_minimum(quote.total_due, quote.currency):
            # The workflow carries such an amount to the renewal invoice and never asks; should
            # it ask, the gateway would refuse it for good: say so, before any request.
            raise _below_minimum(quote, "below the gateway's minimum charge of "
                                 f"{self.deps.minimums.minimum_charge(quote.currency)} "
                                 f"{quote.currency}")
        with self.deps.sessions() as session:
            card = subscriptions.card_on_file(session=session, org_id=request.org_id,
                                              product=request.product)
            version = subscriptions.version_of(session=session, org_id=request.org_id,
                                               product=request.product)
        if version != quote.subscription_version:  # the apply would refuse it: charge nothing
            raise ApplicationError(
                f"the {request.product} subscription of {request.org_id} changed after it was "
                f"quoted (quoted version {quote.subscription_version}, now {version}): nothing "
                "was charged; cancel the change and request it again", type="StaleSubscription",
                non_retryable=True)
        if card is None:
            raise ApplicationError(
                f"{request.org_id} has no card on file for {request.product}",
                _decline_details(NO_PAYMENT_METHOD, None), type="NoPaymentMethod",
                non_retryable=True)
        attempt.checkpoint()
        if not gateway.card_attached(customer_id=card.customer_id,
                                     method_id=card.payment_method_id):
            attempt.checkpoint()
            try:
                gateway.attach_card(customer_id=card.customer_id,
                                    method_id=card.payment_method_id)
            except CardDeclined as declined:
                # The entry moves to declined once: a retry declined again reports nothing new.
                if not attempt.move(("started",), "declined", event=_failed(
                        attempt, charge, None, declined.code, str(declined))):
                    attempt.move(("declined",), "declined")
                raise _card_declined(declined.code, str(declined),
                                     card.payment_method_id) from None
        attempt.checkpoint()
        try:
            intent_id = gateway.create_intent(
                amount_minor=to_minor_units(quote.total_due, quote.currency),
                currency=quote.currency, customer_id=card.customer_id,
                method_id=card.payment_method_id,
                metadata={"workflow_id": attempt.workflow_id, "org_id": request.org_id,
                          "product": request.product},
                idempotency_key=f"{attempt.workflow_id}:charge:{entry.generation}")
        except AmountTooSmall as refused:  # the gateway's minimum is above our table's
            raise _below_minimum(quote, f"the gateway refused it: {refused}") from None
        if attempt.move(NO_INTENT, "created", external_id=intent_id, amount=quote.total_due,
                        currency=quote.currency):
            return intent_id
        if attempt.entry().external_id != intent_id:  # (real Stripe returns the same for a key)
            gateway.cancel_intent(intent_id)
        raise attempt.lost()

    def _settle(self, attempt: _Attempt, entry: GatewayCall, state: IntentState,
                charge: ChargeInput) -> PaymentRecord:
        """Record the intent's outcome (any attempt may: it is the gateway's fact)."""
        if state.status == "succeeded":
            attempt.move(("created", "pending"), "succeeded", held=False,
                         event=attempt.event("payment.succeeded", payment={
                             "method": "card", "charge_id": state.charge_id,
                             "intent_id": state.id, **money_of(charge.quote)}))
            activity.metric_meter().create_counter("subchange_charges", "cards charged").add(
                1, {"currency": charge.quote.currency})
            activity.logger.info("charged %s %s (intent %s)", charge.quote.total_due,
                                 charge.quote.currency, state.id)
            return self._record(attempt.entry(), state)
        if state.status == "processing":
            attempt.move(("created",), "pending", held=False)
            raise ApplicationError(f"the gateway is still processing intent {state.id}; a "
                                   "retry reads its outcome", type="ChargeProcessing")
        if state.status == "requires_action":
            attempt.move(("created",), "pending", held=False)
            raise ApplicationError(
                f"the card needs the payer's authentication (3-D Secure) for intent {state.id}: "
                "retry once they completed it, replace the card, or cancel the change (the "
                "intent is then voided)",
                _decline_details(AUTHENTICATION_REQUIRED, state.method_id),
                type="CardNeedsAuthentication", non_retryable=True)
        if state.status == "canceled":
            raise attempt.lost()
        # Declined: the intent moved no money. Forget it, so a retry after a card update makes
        # a new one (under the next idempotency key).
        attempt.move(("created", "pending"), "declined", held=False, external_id=None,
                     generation=entry.generation + 1, event=_failed(
                         attempt, charge, state.id, state.decline_code,
                         state.decline_message or state.status))
        raise _card_declined(state.decline_code, state.decline_message or state.status,
                             state.method_id)

    @staticmethod
    def _record(entry: GatewayCall, state: IntentState) -> PaymentRecord:
        assert entry.amount is not None
        return PaymentRecord(method="card", amount=entry.amount, currency=entry.currency or "",
                             charge_id=state.charge_id, intent_id=state.id)

    @activity.defn(name="refund_charge", no_thread_cancel_exception=True)
    def refund_charge(self, refund: RefundChargeInput) -> RefundChargeOutput:
        """Compensation for a change cancelled before it was applied: void its charge, or refund
        the charge that went through (the amount the gateway refunded)."""
        return self._compensate(_Attempt(self.deps, LEDGER_REFUND), refund)

    def compensate_abandoned(self, workflow_id: str, *, reason: str) -> RefundChargeOutput | None:
        """The compensation a change that ended without closing (terminated, timed out) never
        ran, done for it by whoever takes its subscription over: its charge voided, or refunded
        when it went through. None when it was applied (the money is the change's) or charged
        nothing."""
        with self.deps.sessions() as session:
            # Withdrawn first, charged or not: an apply attempt of the ended change that is
            # still running can no longer commit and give the subscription away.
            if not changes.withdraw(session=session, workflow_id=workflow_id):
                return None
            charge = ledger.gateway_call(session=session, workflow_id=workflow_id,
                                         step=LEDGER_CHARGE)
            if charge is None:
                return None
        outcome = self._compensate(
            _Attempt(self.deps, LEDGER_REFUND, on_behalf_of=workflow_id),
            RefundChargeInput(intent_id=None, amount=charge.amount or 0,
                              currency=charge.currency or "JPY", reason=reason),
            generation=charge.generation)
        with self.deps.sessions() as session:  # the same request may be started again
            ledger.retire(session=session, workflow_id=workflow_id,
                          generation=charge.generation)
        return outcome if outcome.refund_id is not None else None

    def _compensate(self, attempt: _Attempt, refund: RefundChargeInput,
                    generation: int | None = None) -> RefundChargeOutput:
        """`generation`: the charge entry's as the compensation of an ended change read it; when
        another compensation of that change retired it meanwhile (the sweep and a takeover at
        once), this one voids nothing of the next generation's and finds nothing to refund."""
        gateway = self.deps.gateway
        entry = attempt.take(currency=refund.currency)
        if entry.status == "succeeded":
            return RefundChargeOutput(refund_id=entry.external_id, amount=entry.amount or 0)
        with self.deps.sessions() as session:  # from here on, an apply can't commit
            if not changes.withdraw(session=session, workflow_id=attempt.workflow_id):
                raise ApplicationError("the change is applied to the subscription: its charge "
                                       "stays (a refund would give the change away)",
                                       type="ChangeApplied", non_retryable=True)
        intent_id = refund.intent_id or self._void_charge(attempt, generation)
        state = None
        if intent_id is not None:
            attempt.checkpoint()
            state = gateway.intent_state(intent_id)
            if state.status in CANCELLABLE:
                attempt.checkpoint()
                state = gateway.cancel_intent(intent_id)
        if state is None or state.status != "succeeded":
            if state is not None and state.status == "processing":
                raise ApplicationError(f"the gateway is still processing intent {state.id}; "
                                       "it can be refunded once it is decided",
                                       type="ChargeProcessing")
            return self._refunded(attempt, refund, None, 0)  # nothing was taken
        attempt.checkpoint()
        made = gateway.existing_refund(state.id)
        if made is None:
            attempt.hold(("started",), "started")
            made = gateway.refund_intent(
                state.id, idempotency_key=f"{attempt.workflow_id}:refund",
                metadata={"workflow_id": attempt.workflow_id, "reason": refund.reason[:200]})
        return self._refunded(attempt, refund, *made)

    def _void_charge(self, attempt: _Attempt, generation: int | None = None) -> str | None:
        """Void the change's charge entry unless it succeeded (and, given a `generation`, only
        while it is that one), so no attempt still running records or confirms an intent; the
        intent to cancel or refund, if any."""
        with self.deps.sessions() as session:
            ledger.take(session=session, workflow_id=attempt.workflow_id, step=LEDGER_CHARGE,
                        holder=attempt.token, status="voided")
            ledger.move(session=session, workflow_id=attempt.workflow_id, step=LEDGER_CHARGE,
                        holder=attempt.token, expected=("started", "created", "pending",
                                                        "declined"), to="voided",
                        at_generation=generation)
            charge = ledger.gateway_call(session=session, workflow_id=attempt.workflow_id,
                                         step=LEDGER_CHARGE)
        assert charge is not None
        if generation is not None and charge.generation != generation:
            return None  # retired by the other compensation: its refund is the change's
        return charge.external_id

    def _refunded(self, attempt: _Attempt, refund: RefundChargeInput, refund_id: str | None,
                  amount_minor: int) -> RefundChargeOutput:
        amount = round_money(from_minor_units(amount_minor, refund.currency), refund.currency)
        event = None if refund_id is None else attempt.event(
            "payment.refunded", refund=_refund_data(refund_id, amount, refund.currency,
                                                    refund.intent_id),
            reason=refund.reason)
        attempt.move(("started",), "succeeded", held=False, external_id=refund_id, amount=amount,
                     currency=refund.currency, event=event)
        if refund_id is not None and activity.in_activity():
            activity.metric_meter().create_counter("subchange_refunds", "charges refunded").add(
                1, {"currency": refund.currency})
            activity.logger.info("refunded %s %s (%s)", amount, refund.currency, refund_id)
        return RefundChargeOutput(refund_id=refund_id, amount=amount)


def _failed(attempt: _Attempt, charge: ChargeInput, intent_id: str | None, code: str | None,
            message: str) -> NewEvent:
    return attempt.event("payment.failed", payment={
        "method": "card", "intent_id": intent_id, **money_of(charge.quote)},
        decline_code=code, reason=message)


def _refund_data(refund_id: str, amount, currency: str, intent_id: str | None) -> dict:
    """A refund as the gateway made it: its amount, tax included, and the charge it returns."""
    return {"refund_id": refund_id, "amount": str(amount), "currency": currency,
            "intent_id": intent_id}


def _same_amount(entry: GatewayCall, quote) -> bool:
    return (entry.amount is not None and entry.currency == quote.currency
            and round_money(entry.amount, quote.currency) == quote.total_due)


def _below_minimum(quote: Quote, why: str) -> ApplicationError:
    """Nothing was or will be charged: no intent exists for this amount, and a retry can't
    change the gateway's minimum (a quote made again may: it is then carried)."""
    return ApplicationError(
        f"{quote.total_due} {quote.currency} is not charged: {why}; nothing was taken. Cancel "
        "the change, or correct subchange/domain/gateway_minimums.json and retry it on another "
        "day (quoted again, it is carried to the next renewal invoice)",
        type="BelowMinimumCharge", non_retryable=True)


def _card_declined(code: str | None, message: str, method_id: str | None) -> ApplicationError:
    return ApplicationError(f"card declined ({code or 'unknown'}): {message}",
                            _decline_details(code, method_id), type="CardDeclined",
                            non_retryable=True)


def _decline_details(code: str | None, method_id: str | None) -> dict[str, Any]:
    """What payment recovery needs of a decline (workflows/payment_recovery.py): its code, soft
    or hard by the table (subchange/domain/declines.json; judged here, so the history keeps the
    verdict and a changed table never changes a replay), and the card it was declined on."""
    return {"decline_code": code, "decline_class": classify(code).value, "method_id": method_id}
