"""The API's own bodies and answers. The change, its quote, status and result are the contracts
of SPEC section 7 (subchange/domain/contracts.py), the same on every surface."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from subchange.domain.contracts import (
    ChangeOutcome,
    ChangeResult,
    ChangeSummary,
    Quote,
    Rejection,
    StepRecord,
)
from subchange.domain.webhooks import EVENT_TYPES, URL_MAX

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]  # a Literal of a tuple's values


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class StartedChange(BaseModel):
    workflow_id: str = Field(description="change-<request_id>")
    request_id: str = Field(description="the Idempotency-Key the change was started with")


class QuoteAnswer(BaseModel):
    """What the change would cost today, or which rule refuses it (nothing is changed)."""

    quote: Quote | None
    rejection: Rejection | None


class ChangeView(BaseModel):
    """The `status` query (SPEC section 7) with the result once ended. `status` is how the change
    stands: running, its result's status, or how its workflow was ended from outside
    (terminated, timed_out), when `result` stays null and `last_state` says where it was."""

    workflow_id: str
    status: ChangeOutcome
    state: str
    last_state: str | None = None
    step: str | None
    waiting_for: str | None
    history: list[StepRecord]
    last_error: str | None
    result: ChangeResult | None = None
    next_attempt_at: datetime | None = Field(
        default=None, description="waiting for payment (a declined card): when the charge is "
                                  "tried again; null for a hard decline, which waits for a new "
                                  "card")


class ChangeList(BaseModel):
    items: list[ChangeSummary]
    next_page_token: str | None = Field(
        description="pass as page_token for the next page; null on the last one")


class RetryBody(Body):
    pass


class CancelBody(Body):
    reason: str | None = Field(default=None, max_length=1000)


class SalesDecisionBody(Body):
    approved: StrictBool
    note: str = Field(default="", max_length=2000)


class UpdateAnswer(BaseModel):
    state: str = Field(description="the change's lifecycle state when it accepted the update")
    message: str
    by: str = Field(description="the principal: the API key's owner")


class CardBody(Body):
    payment_method: str = Field(pattern=r"^pm_[A-Za-z0-9_]{1,250}$",
                                description="a payment method your card form created at the "
                                            "gateway (Stripe.js / Elements)")


class CardAnswer(BaseModel):
    org_id: str
    payment_method: str
    card_payers: list[str] = Field(description="the products now paid by this card")
    retried_changes: list[str] = Field(
        default_factory=list,
        description="the organisation's changes that were waiting for payment (a declined "
                    "card) and now try their charge again, at once (SPEC section 11)")


PORT = r"(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})"
# Printable ASCII after the host (anything else is percent-encoded in a URL): \S would let
# control characters through, which the app refuses as it refuses spaces.
ENDPOINT_URL = rf"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:{PORT})?([/?#][!-~]*)?$"


class WebhookEndpointBody(Body):
    url: str = Field(max_length=URL_MAX, pattern=ENDPOINT_URL,
                     description="http(s)://host[:port]/path where events are POSTed")
    events: list[EventType] = Field(
        default_factory=list, max_length=len(EVENT_TYPES),
        description="the event types to send; empty: every type")


class WebhookEndpointView(BaseModel):
    id: str
    url: str
    events: list[str] = Field(description="empty: every type")
    status: Literal["active", "failing", "disabled"]
    created_at: str | None
    previous_secret_until: str | None = Field(
        description="while a rotation's previous secret still signs too, until when")


class WebhookEndpointCreated(WebhookEndpointView):
    secret: str = Field(description="whsec_...: verify the webhook-signature with it; shown "
                                    "this once")


class WebhookEndpointList(BaseModel):
    endpoints: list[WebhookEndpointView]


class RotatedSecret(BaseModel):
    id: str
    secret: str = Field(description="the new whsec_ secret; shown this once")
    previous_secret_until: str | None


class FailedEvent(BaseModel):
    event_id: str
    type: str
    workflow_id: str
    created_at: str | None
    endpoint_id: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    failed_at: str | None


class FailedEventList(BaseModel):
    failed: list[FailedEvent]


class ReplayedEvent(BaseModel):
    event_id: str
    replayed_to: list[str] = Field(description="the endpoints it is sent to again")
