"""Pydantic contracts, the public ones of SPEC section 7: the workflow's input and result, its
query and updates. The activities' inputs and outputs are in step_io.py; rows live in
subchange/store/tables.py; these are payloads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from subchange.domain.catalog import PRODUCT_IDS
from subchange.domain.money import round_money

WORKFLOW_TYPE = "SubscriptionChange"  # the workflow type of SPEC section 7
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class Contract(BaseModel):
    # A validation error names the field and what is wrong, never the value given: the SDK
    # logs an activity that could not read its input with that error, and the values hold
    # email addresses (requested_by, by), which no log line may (docs/operations.md).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


def _whole_number(value: object) -> object:
    """JSON has one kind of number, and JSON Schema's `integer` takes 35.0 as 35: so does a
    count. Strings, booleans and fractions stay refused (StrictInt)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class SeatChange(Contract):
    kind: Literal["seats"]
    seats: Annotated[StrictInt, Field(ge=0, description="the new number of seats"),
                     BeforeValidator(_whole_number)]


class PlanChange(Contract):
    kind: Literal["plan"]
    plan: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


def _lower_email(value: str) -> str:
    return value.strip().lower()


class ChangeInput(Contract):
    """What a change asks for: the section 7 input without its request id. The HTTP API's body,
    whose request id is its Idempotency-Key header, and a quote's question."""

    org_id: Annotated[str, Field(pattern=IDENTIFIER, description="the organisation's id")]
    # An enum in the JSON schema (and so in the OpenAPI document), checked by the validator below.
    product: str = Field(description=f"one of {', '.join(PRODUCT_IDS)}",
                         json_schema_extra={"enum": list(PRODUCT_IDS)})
    requested_by: EmailStr = Field(
        description="the requester: a user of the organisation; a deliverable address (not of "
                    "a special-use domain such as .test, .local or .invalid)")
    change: Annotated[SeatChange | PlanChange, Field(discriminator="kind")]
    request_refund: StrictBool = Field(
        default=False, description="open a refund ticket for a decrease's unused value (R11)")
    # SPEC section 10: when the change takes effect. Old inputs without these fields are
    # changes that take effect now.
    effective: Literal["now", "period_end"] = Field(
        default="now", description="now (prorated, charged now) or period_end (at the end of "
                                   "the current billing period, nothing charged now)")
    # Without period_end it has nothing to replace: ignored, as the JSON schema (which can't
    # tie two fields together) lets every client send it (the CLI refuses the pair).
    replace_scheduled: StrictBool = Field(
        default=False, description="with effective=period_end: cancel the subscription's pending "
                                   "period-end change and take its place (ignored for an "
                                   "immediate change, which never drops a scheduled one)")

    @field_validator("product")
    @classmethod
    def _known_product(cls, value: str) -> str:
        if value not in PRODUCT_IDS:
            raise ValueError(f"unknown product {value!r}; expected one of {', '.join(PRODUCT_IDS)}")
        return value

    @field_validator("requested_by", mode="after")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return _lower_email(value)

    def with_request_id(self, request_id: str) -> ChangeRequest:
        return ChangeRequest(request_id=request_id, **self.model_dump(exclude={"request_id"}))

    def describe(self) -> str:
        what = (f"seats → {self.change.seats}" if isinstance(self.change, SeatChange)
                else f"plan → {self.change.plan}")
        when = " at the period end" if self.effective == "period_end" else ""
        return f"{self.org_id}/{self.product}: {what}{when}"


class ChangeRequest(ChangeInput):
    """Input of the `SubscriptionChange` workflow (SPEC section 7)."""

    request_id: Annotated[str, Field(pattern=IDENTIFIER)]

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.request_id)


def workflow_id_for(request_id: str) -> str:
    return f"change-{request_id}"


class ChangeStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Rejection(Contract):
    reason_code: str
    reason: str


class QuoteTax(Contract):
    """The consumption tax of a quote (SPEC section 14), rounded once on the whole amount: the
    card is charged `total`; a decrease's refundable amount is tax-inclusive, since a refund
    returns both."""

    country: str | None = Field(description="whose consumption tax applies (ISO 3166-1)")
    rate: Decimal = Field(description="0.10 for 10%; 0 when no tax applies")
    tax: Decimal = Field(description="tax on amount_due")
    total: Decimal = Field(description="amount_due + tax: what is charged")
    refundable_tax: Decimal = Field(description="tax on refundable_amount")
    refundable_total: Decimal = Field(description="refundable_amount + refundable_tax")
    note: str | None = Field(default=None, description="why no tax applies, when none does")


class Quote(Contract):
    """Every input of the proration formula, so anyone can recompute the amount (SPEC section 5),
    and its tax (section 14)."""

    org_id: str
    product: str
    kind: Literal["seats", "plan"]
    pricing_model: str
    billing_period: Literal["monthly", "yearly"]
    currency: str
    payment_method: Literal["online", "offline"]
    old_plan: str
    new_plan: str
    old_seats: int
    new_seats: int
    old_unit_price: Decimal
    new_unit_price: Decimal
    period_start: date
    period_end: date
    change_date: date
    remaining_days: int
    period_days: int
    amount: Decimal = Field(description="signed: positive is due now, negative is unused value")
    amount_due: Decimal
    refundable_amount: Decimal
    new_period_start: date
    new_period_end: date
    starts_new_period: bool = False
    features_switched_off: list[str] = []
    subscription_version: int
    # None only in quotes made before tax was computed (changes in flight since then).
    tax: QuoteTax | None = None
    # False in quotes made before the gateway's minimum was known (changes in flight since then).
    carried_to_renewal: bool = Field(
        default=False,
        description="a card payer's total due is above zero but below the gateway's minimum "
                    "charge (subchange/domain/gateway_minimums.json): it is not charged now but "
                    "carried, tax included, to the organisation's next renewal invoice")
    # SPEC section 10: a change at the period end is not prorated and charges nothing now; it
    # takes effect at the start of `effective_date` (the period end) in the organisation's
    # time zone, and the next period costs `next_period_amount` (tax excluded).
    effective: Literal["now", "period_end"] = "now"
    effective_date: date | None = Field(
        default=None, description="the day the new terms hold from (a period-end change)")
    effective_at: datetime | None = Field(
        default=None, description="the start of effective_date in the organisation's time zone")
    next_period_amount: Decimal | None = Field(
        default=None, description="new_seats × new_unit_price: the next period's price, tax "
                                  "excluded (a period-end change)")

    @property
    def total_due(self) -> Decimal:
        """What the payer is charged: the amount due with its tax."""
        return self.tax.total if self.tax is not None else self.amount_due

    @property
    def refundable_total(self) -> Decimal:
        """What a refund of the unused value returns, tax included."""
        return self.tax.refundable_total if self.tax is not None else self.refundable_amount


class MoneyRecord(Contract):
    """A record with an `amount` in `currency`, kept at the currency's minor unit (JPY 4352,
    not 4352.00, however the database column stores it)."""

    if TYPE_CHECKING:  # each record declares its own (its place among the fields is its own)
        currency: str

    @model_validator(mode="after")
    def _minor_unit(self):
        amount = getattr(self, "amount", None)
        if isinstance(amount, Decimal):
            object.__setattr__(self, "amount", round_money(amount, self.currency))
        return self


class PaymentRecord(MoneyRecord):
    # carried: below the gateway's minimum charge, `amount` (tax included) is not charged now but
    # pending on the organisation's next renewal invoice (Quote.carried_to_renewal)
    method: Literal["card", "offline", "none", "carried"]
    amount: Decimal = Decimal(0)
    currency: str
    charge_id: str | None = None
    intent_id: str | None = None
    sales_case: str | None = None
    approved_by: str | None = None
    refund_id: str | None = None


class InvoiceRecord(MoneyRecord):
    number: str
    amount: Decimal  # the total, tax included
    currency: str
    emailed_to: str
    subtotal: Decimal | None = None  # tax-exclusive (None: issued before tax was shown)
    tax: Decimal | None = None


class RefundTicketRecord(MoneyRecord):
    id: str
    amount: Decimal  # tax-inclusive: a refund returns the tax too
    currency: str
    tax: Decimal | None = None  # the tax within amount (None: opened before tax was shown)
    invoice_number: str
    change_link: str


class SubscriptionView(Contract):
    plan: str
    seats: int
    pricing_model: str
    period_start: date
    period_end: date
    disabled_features: list[str] = []


class ChangeResult(Contract):
    """Result of the `SubscriptionChange` workflow."""

    workflow_id: str
    request_id: str
    status: ChangeStatus
    reason_code: str | None = None
    reason: str | None = None
    quote: Quote | None = None
    payment: PaymentRecord | None = None
    invoice: InvoiceRecord | None = None
    refund_ticket: RefundTicketRecord | None = None
    subscription: SubscriptionView | None = None


class StepRecord(Contract):
    step: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    detail: str | None = None


# How a change stands on every surface: running, how its result says it ended, or how it was
# ended from outside without a result of its own (terminated, timed out, failed).
ChangeOutcome = Literal["running", "completed", "rejected", "cancelled", "expired",
                        "terminated", "timed_out", "failed"]
CHANGE_OUTCOMES: tuple[str, ...] = get_args(ChangeOutcome)


class ChangeSummary(BaseModel):
    """One change in a list (the API's GET /v1/changes, `subchange list`), from Temporal
    visibility and the change's search attributes: no query, so a list is cheap."""

    workflow_id: str
    request_id: str
    org_id: str | None
    product: str | None
    kind: str | None
    step: str | None = Field(description="the lifecycle state the change is in (ChangeStep)")
    status: ChangeOutcome
    started_at: datetime | None
    closed_at: datetime | None


class ChangeStatusView(Contract):
    """Answer of the `status` query."""

    workflow_id: str
    state: str
    step: str | None
    waiting_for: str | None
    history: list[StepRecord]
    last_error: str | None
    result: ChangeResult | None = None
    next_attempt_at: datetime | None = Field(
        default=None, description="awaiting payment: when the declined charge is tried again")


# --- updates ---------------------------------------------------------------------------------

class RetryRequest(Contract):
    by: str | None = Field(default=None, max_length=200)


class CancelRequest(Contract):
    by: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)


class SalesDecision(Contract):
    approved: StrictBool
    by: EmailStr
    note: str = Field(default="", max_length=2000)


class RescheduleRequest(Contract):
    """Staging and demos only (ALLOW_RESCHEDULE): fire a scheduled change at `at` (now when
    None) instead of its period end; audited with who asked."""

    by: str | None = Field(default=None, max_length=200)
    at: datetime | None = Field(default=None, description="when it fires (timezone-aware)")

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("needs a time zone, e.g. 2026-12-01T00:00:00+09:00")
        return value


class ScheduledReplaced(Contract):
    """The signal a scheduled change gets when another took its slot (replace_scheduled)."""

    by: str = Field(max_length=80, description="the workflow id of the replacing change")


class UpdateAck(Contract):
    state: str
    message: str


def describe_validation_error(error: ValidationError, *, env_names: bool = False) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "input"
        if env_names:
            field = field.upper()
        lines.append(f"{field}: {item['msg']}")
    return "; ".join(lines)
