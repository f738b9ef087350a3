"""The inputs and outputs of the activities, one pair per step (SPEC section 3). Payloads between
the workflow and its activities; the public contract is in contracts.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from subchange.domain.contracts import (
    ChangeRequest,
    ChangeResult,
    Contract,
    PaymentRecord,
    Quote,
    Rejection,
    SubscriptionView,
)
from subchange.domain.facts import Organisation


class OpenChangeOutput(Contract):
    previous_result: ChangeResult | None = None


class Admission(Contract):
    """Output of authorize_admin and validate_change: admitted, or why not."""

    rejection: Rejection | None = None

    @property
    def admitted(self) -> bool:
        return self.rejection is None


class DatedRequest(Contract):
    """Input of validate_change and quote_change: the request, judged as of the change date:
    the organisation's calendar day at `as_of` (workflows from before `as_of` existed sent the
    UTC day as `change_date`)."""

    request: ChangeRequest
    change_date: date
    as_of: datetime | None = None

    def day_for(self, org: Organisation | None) -> date:
        """The change date in the organisation's time zone."""
        if self.as_of is None or org is None:
            return self.change_date
        return self.as_of.astimezone(ZoneInfo(org.time_zone)).date()


class QuoteOutcome(Admission):
    quote: Quote | None = None

    @property
    def admitted(self) -> bool:
        return self.rejection is None and self.quote is not None


class ChargeInput(Contract):
    request: ChangeRequest
    quote: Quote


class RefundChargeInput(Contract):
    intent_id: str | None = Field(
        description="the charged intent; None: look the change's charge up in the ledger")
    amount: Decimal
    currency: str
    reason: str


class RefundChargeOutput(Contract):
    refund_id: str | None = Field(description="None when the gateway holds no charge to refund")
    amount: Decimal


class SalesCaseInput(Contract):
    request: ChangeRequest
    quote: Quote


class SalesCaseOutput(Contract):
    case_id: str
    decision_timeout: timedelta


class CloseSalesCaseInput(Contract):
    case_id: str  # for the step's summary: the case is found by the change's workflow id
    outcome: Literal["approved", "rejected", "expired", "cancelled"]
    by: str | None = None
    note: str = ""


class ApplyInput(Contract):
    request: ChangeRequest
    quote: Quote
    payment: PaymentRecord


class ApplyOutput(Contract):
    subscription: SubscriptionView
    invoice_number: str


class AppliedOutcome(Contract):
    """Output of find_applied_change: what the database says the apply did, whatever the
    workflow saw of it (an attempt can commit after its timeout)."""

    applied: ApplyOutput | None = None


class RefundTicketInput(Contract):
    request: ChangeRequest
    quote: Quote
    invoice_number: str


class CloseChangeInput(Contract):
    result: ChangeResult


class ParkedChange(Contract):
    """Input of record_awaiting_support: the change parked for support, for the `park`-th time
    in this run, after `step` failed with `error`."""

    step: str
    error: str
    park: int


class Decline(Contract):
    """A declined charge, as the charge step judged it (subchange/domain/declines.json): soft
    declines are retried on the schedule, hard ones wait for a new card or support."""

    code: str | None = None
    decline_class: Literal["soft", "hard"] = "soft"
    method_id: str | None = Field(default=None, description="the card declined (pm_...)")
    message: str = ""


class AwaitingPayment(Contract):
    """Input of record_awaiting_payment: the change's `declines`-th declined charge, the first
    `since_first` ago."""

    org_id: str
    product: str
    decline: Decline
    declines: int = Field(ge=1)
    since_first: timedelta


class PaymentPlan(Contract):
    """Output of record_awaiting_payment: when to try the charge again (PAYMENT_RETRY_SCHEDULE),
    or how long to wait for a new card before support (a hard decline); neither: the schedule
    is exhausted, the change waits for support. `card_replaced`: the card on file is no longer
    the one declined, so the charge is tried again at once."""

    next_attempt_in: timedelta | None = None
    support_in: timedelta | None = None
    card_replaced: bool = False

    @property
    def exhausted(self) -> bool:
        return (self.next_attempt_in is None and self.support_in is None
                and not self.card_replaced)


class PaymentFailedNotice(Contract):
    """Input of email_payment_failed: the one notice of a change's declined payment."""

    request: ChangeRequest
    quote: Quote
    decline_code: str | None = None


class PrincipalCheck(Contract):
    """Input of authorize_principal: may `by` do `action` (an update) on this change?"""

    action: str
    by: str
    org_id: str
    requester: str | None
    update_id: str = Field(max_length=40, description="recorded once per update in the audit log")


class TemporalCancelRecord(Contract):
    """Input of record_temporal_cancel: a cancellation through Temporal, for the audit log (the
    activity asks the server who sent it)."""

    org_id: str
    reason: str = Field(max_length=1000)
    outcome: str = Field(max_length=32)


class PrincipalVerdict(Contract):
    refusal: str | None = None


class ScheduleInput(Contract):
    """Input of schedule_change: a period-end change, quoted, to wait for its period end."""

    request: ChangeRequest
    quote: Quote


class ScheduleOutcome(Admission):
    """Output of schedule_change: the slot taken (`replaced`: the scheduled change it took it
    from, to be told), or why not (another change is scheduled)."""

    replaced: str | None = None


class FireInput(Contract):
    """Input of fire_scheduled_change: the change, at the period end it waited for, judged as
    of `as_of`."""

    request: ChangeRequest
    scheduled_for: date
    as_of: datetime


class FireOutcome(QuoteOutcome):
    """Output of fire_scheduled_change: the quote to apply; or a rejection (a rule, or the
    subscription held by another change); or `replaced_by`: the slot is another change's."""

    replaced_by: str | None = None

    @property
    def admitted(self) -> bool:
        return super().admitted and self.replaced_by is None
