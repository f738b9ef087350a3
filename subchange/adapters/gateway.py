"""The payment gateway: the Stripe API through the official SDK (localstripe in the embedded stack).

Charges are two-phase: a PaymentIntent is created unconfirmed, its id recorded in our database,
and only then confirmed. A crash at any point leaves either an unconfirmed intent (no money moved)
or a recorded one whose state the retry reads back; nothing relies on idempotency keys, which the
local server ignores. Each method is one request (at most limits.GATEWAY_REQUEST), so an activity
can heartbeat between them and keep its worst case inside its limits (workflows/steps.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe

from subchange.domain.limits import GATEWAY_REQUEST
from subchange.settings import Settings

# An intent in these states took no money and can be cancelled, so that a late confirm fails.
CANCELLABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


@dataclass(frozen=True)
class IntentState:
    id: str
    # requires_confirmation | processing | requires_action | succeeded | requires_payment_method
    # (declined) | canceled
    status: str
    charge_id: str | None
    decline_code: str | None
    decline_message: str | None
    method_id: str | None = None  # the payment method it was confirmed with


@dataclass(frozen=True)
class CardDetails:
    brand: str  # visa, mastercard, ...
    last4: str
    exp_month: int | None
    exp_year: int | None


def _decline_code(error: object) -> str | None:
    """A decline's most precise code: Stripe's `decline_code` (insufficient_funds, ...) when it
    gives one, else the error's `code` (card_declined, expired_card, ...)."""
    return getattr(error, "decline_code", None) or getattr(error, "code", None)


class CardDeclined(Exception):
    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code


class AmountTooSmall(Exception):
    """The gateway refused to create an intent below its minimum charge (`amount_too_small`):
    no intent exists, nothing was taken."""


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=0,  # Temporal owns retries
            # The steps' timeouts are budgeted in these (subchange.domain.limits).
            http_client=stripe.RequestsClient(timeout=GATEWAY_REQUEST.total_seconds()),
        )

    # -- set-up of customers (fixture loader) ------------------------------------------------

    def create_customer(self, *, email: str, name: str, org_id: str) -> str:
        customer = self.client.v1.customers.create(
            params={"email": email, "name": name, "metadata": {"org_id": org_id}})
        return customer.id

    def customer_exists(self, customer_id: str) -> bool:
        try:
            customer = self.client.v1.customers.retrieve(customer_id)
        except stripe.InvalidRequestError:
            return False
        return not getattr(customer, "deleted", False)

    def create_test_card(self, card_number: str) -> tuple[str, str]:
        """A PaymentMethod for a gateway test card number; returns (id, last4)."""
        try:
            method = self.client.v1.payment_methods.create(params={
                "type": "card",
                "card": {"number": card_number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            })
        except stripe.CardError as error:
            raise CardDeclined(error.code, error.user_message or str(error)) from None
        return method.id, card_number[-4:]

    def attach_test_card(self, *, customer_id: str, method_id: str) -> None:
        """Attach the card at set-up, so a card the gateway declines is refused when loaded."""
        try:
            self._attach(customer_id=customer_id, method_id=method_id)
        except stripe.CardError as error:
            raise CardDeclined(error.code, error.user_message or str(error)) from None

    def delete_customer(self, customer_id: str) -> None:
        self.client.v1.customers.delete(customer_id)

    def payment_method_last4(self, method_id: str) -> str | None:
        card = self.card_details(method_id)
        return card.last4 if card is not None else None

    def card_details(self, method_id: str) -> CardDetails | None:
        """What the gateway shows of a payment method's card (never its number); None when the
        gateway has no such method or it is not a card. Other gateway errors pass through."""
        try:
            method = self.client.v1.payment_methods.retrieve(method_id)
        except stripe.InvalidRequestError:
            return None
        card = method.card
        if not card:
            return None
        return CardDetails(brand=card.brand, last4=card.last4,
                           exp_month=getattr(card, "exp_month", None),
                           exp_year=getattr(card, "exp_year", None))

    def use_card(self, *, customer_id: str, method_id: str) -> str:
        """Attach a payment method the vendor's card form created (HTTP API, SPEC 12) to the
        customer and make it the default; its last four digits. stripe's errors pass through:
        InvalidRequestError for an unknown method, CardError for a declined one."""
        self._attach(customer_id=customer_id, method_id=method_id)
        self.client.v1.customers.update(customer_id, params={
            "invoice_settings": {"default_payment_method": method_id}})
        method = self.client.v1.payment_methods.retrieve(method_id)
        return method.card.last4 if method.card else ""

    # -- charging ----------------------------------------------------------------------------

    def _attach(self, *, customer_id: str, method_id: str) -> None:
        method = self.client.v1.payment_methods.retrieve(method_id)
        if method.customer != customer_id:
            self.client.v1.payment_methods.attach(method_id, params={"customer": customer_id})

    def card_attached(self, *, customer_id: str, method_id: str) -> bool:
        """Whether the card is attached to the customer already (one request)."""
        return self.client.v1.payment_methods.retrieve(method_id).customer == customer_id

    def attach_card(self, *, customer_id: str, method_id: str) -> None:
        """Attach the card to the customer (the gateway may decline it here)."""
        try:
            self.client.v1.payment_methods.attach(method_id, params={"customer": customer_id})
        except stripe.CardError as error:
            raise CardDeclined(_decline_code(getattr(error, "error", None)) or error.code,
                               error.user_message or str(error)) from None

    def create_intent(self, *, amount_minor: int, currency: str, customer_id: str,
                      method_id: str, metadata: dict[str, str], idempotency_key: str) -> str:
        """An unconfirmed intent; `idempotency_key` makes a repeated request return the same one
        (real Stripe; the local server ignores keys). AmountTooSmall when the gateway's minimum
        charge is above the amount."""
        try:
            intent = self.client.v1.payment_intents.create(params={
                "amount": amount_minor, "currency": currency.lower(), "customer": customer_id,
                "payment_method": method_id, "metadata": metadata,
            }, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as error:
            if error.code == "amount_too_small":
                raise AmountTooSmall(error.user_message or str(error)) from None
            raise
        return intent.id

    def confirm_intent(self, intent_id: str) -> IntentState:
        """Confirm the intent; its state afterwards, read back when the gateway refused (a decline,
        or an intent cancelled meanwhile)."""
        try:
            return self._state(self.client.v1.payment_intents.confirm(intent_id))
        except (stripe.CardError, stripe.InvalidRequestError):
            return self.intent_state(intent_id)

    def cancel_intent(self, intent_id: str) -> IntentState:
        """Cancel an intent that took no money, so a confirm still in flight fails; its state
        afterwards (read back when the gateway refused because it succeeded meanwhile)."""
        try:
            return self._state(self.client.v1.payment_intents.cancel(intent_id))
        except stripe.InvalidRequestError:
            return self.intent_state(intent_id)

    def intent_state(self, intent_id: str) -> IntentState:
        return self._state(self.client.v1.payment_intents.retrieve(intent_id))

    @staticmethod
    def _state(intent: stripe.PaymentIntent) -> IntentState:
        charge = intent.latest_charge
        charge_id = charge if isinstance(charge, str) or charge is None else charge.id
        error = intent.last_payment_error
        method = intent.payment_method
        return IntentState(
            id=intent.id, status=intent.status, charge_id=charge_id,
            decline_code=_decline_code(error) if error else None,
            decline_message=getattr(error, "message", None) if error else None,
            method_id=method if isinstance(method, str) or method is None else method.id,
        )

    # -- refunds (compensation) --------------------------------------------------------------

    def existing_refund(self, intent_id: str) -> tuple[str, int] | None:
        """The refund of the intent already made (its id and amount in minor units), if any."""
        existing = self.client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 1})
        return (existing.data[0].id, existing.data[0].amount) if existing.data else None

    def refund_intent(self, intent_id: str, *, metadata: dict[str, str],
                      idempotency_key: str) -> tuple[str, int]:
        """Refund an intent in full; its id and the amount refunded in minor units."""
        refund = self.client.v1.refunds.create(
            params={"payment_intent": intent_id, "metadata": metadata},
            options={"idempotency_key": idempotency_key})
        return refund.id, refund.amount
