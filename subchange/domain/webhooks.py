"""Events for backends (SPEC section 13): the event types an endpoint may subscribe to, what an
endpoint's URL and event list must be, the `data` of each event, and the contract of the relay
workflow that delivers them (one per endpoint, `WebhookRelay`).

An event's payload is `{"type", "timestamp", "data"}`; `data` holds the change's workflow id,
request id, org and product, and the section 7 result or status with its tax fields, and never a
card number, a gateway secret or a key (`scrubbed`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from subchange.domain.contracts import ChangeResult, Contract, Quote

EVENT_TYPES = (
    "change.scheduled", "change.awaiting_sales", "change.awaiting_payment",
    "change.awaiting_support", "change.completed", "change.rejected", "change.cancelled",
    "change.expired", "payment.succeeded", "payment.failed", "payment.refunded",
)
URL_MAX = 2000
EndpointStatus = Literal["active", "failing", "disabled"]

RELAY_WORKFLOW = "WebhookRelay"
WAKE_SIGNAL = "wake"


def relay_workflow_id(endpoint_id: str) -> str:
    return f"webhook-endpoint-{endpoint_id}"


class EndpointRefused(ValueError):
    """An endpoint that can't be added: `field` (url, events) and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def endpoint_url(url: str) -> str:
    """The URL events are POSTed to: http or https, with a host."""
    url = url.strip()
    if not url or len(url) > URL_MAX:
        raise EndpointRefused("url", f"a URL of 1 to {URL_MAX} characters is needed "
                                     f"(got {len(url)})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError as error:
        raise EndpointRefused("url", f"not a URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise EndpointRefused("url", "must start with https:// or http:// (got "
                                     f"{parts.scheme + ':' if parts.scheme else 'no scheme'})")
    if not parts.hostname:
        raise EndpointRefused("url", "has no host: expected e.g. https://hooks.example.com/subchange")
    if any(c.isspace() for c in url):
        raise EndpointRefused("url", "must not contain spaces")
    return url


def event_types(types: list[str]) -> list[str]:
    """The event types an endpoint receives, each once, in the order of EVENT_TYPES; an empty
    list means every type."""
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise EndpointRefused("events", f"unknown event type {unknown[0]!r}; expected some of "
                                        f"{', '.join(EVENT_TYPES)}")
    return [t for t in EVENT_TYPES if t in types]


def subscribes_to(events: list[str], event_type: str) -> bool:
    return not events or event_type in events


# --- what an event's data may not hold ----------------------------------------------------

# Secrets by their well-known prefixes: gateway keys, webhook secrets, the HTTP API's keys.
SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9+/=]+"
                    r"|\bsck_[0-9a-f]{12}_[A-Za-z0-9_-]+")
CARD_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _without_secrets(text: str) -> str:
    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return "[card]" if _luhn(digits) else match.group()

    return CARD_CANDIDATE.sub(card, SECRET.sub("[secret]", text))


def scrubbed(value: Any) -> Any:
    """`value` (JSON data) with anything shaped like a card number (13-19 digits passing the
    Luhn check) or a secret key taken out of its strings."""
    if isinstance(value, str):
        return _without_secrets(value)
    if isinstance(value, dict):
        return {key: scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrubbed(item) for item in value]
    return value


# --- the data of each event -----------------------------------------------------------------

def change_ref(*, workflow_id: str, request_id: str, org_id: str, product: str
               ) -> dict[str, str]:
    return {"workflow_id": workflow_id, "request_id": request_id, "org_id": org_id,
            "product": product}


def ended_event(result: ChangeResult) -> str:
    return f"change.{result.status.value}"


def ended_data(result: ChangeResult, *, org_id: str, product: str) -> dict[str, Any]:
    """change.completed / rejected / cancelled / expired: the section 7 result."""
    return {**result.model_dump(mode="json"), "org_id": org_id, "product": product}


def money_of(quote: Quote) -> dict[str, Any]:
    """What is charged for a quote, with its tax (section 14): the tax-exclusive amount, the
    rate, the tax and the total."""
    tax = quote.tax
    return {"currency": quote.currency, "subtotal": str(quote.amount_due),
            "tax_rate": str(tax.rate) if tax else None, "tax": str(tax.tax) if tax else None,
            "total": str(quote.total_due)}


def awaiting_sales_data(ref: dict[str, str], *, sales_case: str, quote: Quote,
                        decision_timeout: timedelta) -> dict[str, Any]:
    return {**ref, "state": "awaiting_sales", "sales_case": sales_case,
            "waiting_for": f"a sales decision on {sales_case}",
            "decision_timeout_seconds": int(decision_timeout.total_seconds()),
            "quote": quote.model_dump(mode="json")}


def scheduled_data(ref: dict[str, str], *, quote: Quote) -> dict[str, Any]:
    """change.scheduled: the change waits for its period end (SPEC section 10)."""
    return {**ref, "state": "scheduled", "effective_date": str(quote.effective_date),
            "effective_at": quote.effective_at.isoformat() if quote.effective_at else None,
            "waiting_for": f"the period end: it takes effect on {quote.effective_date}",
            "quote": quote.model_dump(mode="json")}


def awaiting_support_data(ref: dict[str, str], *, step: str, error: str) -> dict[str, Any]:
    return {**ref, "state": "awaiting_support", "step": step, "last_error": f"{step}: {error}",
            "waiting_for": f"support to retry {step} or cancel the change"}


# --- the relay workflow's contract ---------------------------------------------------------

class RelayInput(Contract):
    """Input of the WebhookRelay workflow (and of each run it continues as)."""

    endpoint_id: str


class RelayOutcome(Contract):
    endpoint_id: str
    ended: str = Field(description="why the relay stopped: the endpoint was removed or disabled")


class PendingInput(Contract):
    endpoint_id: str
    limit: int = 20


class PendingDeliveries(Contract):
    """Output of webhook_pending: the endpoint's undelivered events, oldest first."""

    endpoint_status: Literal["active", "failing", "disabled", "removed"]
    event_ids: list[str] = Field(default_factory=list)
    poll_every: timedelta = timedelta(seconds=30)


class DeliveryInput(Contract):
    endpoint_id: str
    event_id: str


class DeliveryOutcome(Contract):
    """Output of webhook_deliver: delivered; failed (its retries exhausted); stopped (the
    endpoint is gone or disabled: the relay ends); or skipped (no longer pending)."""

    outcome: Literal["delivered", "failed", "stopped", "skipped"]
