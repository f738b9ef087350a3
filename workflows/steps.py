"""The steps of a change, one registry entry each: the activity it runs (called by name, so the
workflow imports no activity code), its timeouts and retries, the lifecycle trigger it fires when
it succeeds, whether a cancel may interrupt it, and the summary the Web UI's timeline shows.

A step whose retries run out does not fail the workflow: the change parks in awaiting_support
(workflows/runner.py). Error types listed as non-retryable are outcomes a retry can't change. The
steps that move money heartbeat, and their timeouts come from their time budget
(subchange.domain.limits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import Trigger
    from subchange.domain import limits
    from subchange.domain.contracts import (
        ChangeRequest,
        InvoiceRecord,
        PaymentRecord,
        RefundTicketRecord,
    )
    from subchange.domain.step_io import (
        Admission,
        AppliedOutcome,
        ApplyInput,
        ApplyOutput,
        AwaitingPayment,
        ChargeInput,
        CloseChangeInput,
        CloseSalesCaseInput,
        DatedRequest,
        FireInput,
        FireOutcome,
        OpenChangeOutput,
        ParkedChange,
        PaymentFailedNotice,
        PaymentPlan,
        PrincipalCheck,
        PrincipalVerdict,
        QuoteOutcome,
        RefundChargeInput,
        RefundChargeOutput,
        RefundTicketInput,
        SalesCaseInput,
        SalesCaseOutput,
        ScheduleInput,
        ScheduleOutcome,
        TemporalCancelRecord,
    )

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class StepPolicy:
    budget: limits.Budget  # the worst attempt, which the timeouts are set from
    retry: RetryPolicy
    heartbeats: bool = False  # between requests, so a silent attempt is retried sooner
    # Failures that prove no money moved; any other failure of a step that moves money may have.
    money_safe: tuple[str, ...] | None = None  # None: the step moves no money

    @property
    def start_to_close(self) -> timedelta:
        return self.budget.worst_attempt

    @property
    def heartbeat(self) -> timedelta | None:
        return self.budget.heartbeat if self.heartbeats else None

    def may_have_moved_money(self, error_type: str | None) -> bool:
        return self.money_safe is not None and error_type not in self.money_safe


def policy(budget: limits.Budget, attempts: int, max_interval: int, *non_retryable: str,
           heartbeats: bool = False, money_safe: tuple[str, ...] | None = None) -> StepPolicy:
    return StepPolicy(
        budget=budget,
        retry=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=max_interval),
                          maximum_attempts=attempts,
                          non_retryable_error_types=list(non_retryable)),
        heartbeats=heartbeats, money_safe=money_safe)


def database(transactions: int, attempts: int = 6, max_interval: int = 15,
             *non_retryable: str) -> StepPolicy:
    """A step of a few database transactions and nothing else. Each of them is one transaction,
    and one more when a concurrent attempt inserted the same key first (store/once.py)."""
    return policy(limits.Budget(transactions=transactions), attempts, max_interval,
                  *non_retryable)


@dataclass(frozen=True)
class Step(Generic[ArgT, ResultT]):
    name: str  # the activity type, the step of `status` and the metrics label
    result_type: type[ResultT] | None
    policy: StepPolicy
    summary: Callable[[ArgT], str]
    advances: Trigger | None = None  # fired when the step succeeds and admits the change
    cancellable: bool = True  # False: it finishes a change already decided
    # A short step of database reads and writes only: run by the worker as a local activity,
    # recorded as a marker instead of three events and a round trip through the server.
    local: bool = False


OPEN_CHANGE: Step[ChangeRequest, OpenChangeOutput] = Step(
    "open_change", OpenChangeOutput, database(2),
    lambda request: f"open the change record of {request.request_id}", local=True)
AUTHORIZE_ADMIN: Step[ChangeRequest, Admission] = Step(
    "authorize_admin", Admission, database(2),
    lambda request: f"is {request.requested_by} an active admin of {request.org_id}?",
    advances=Trigger.AUTHORIZE, local=True)
VALIDATE_CHANGE: Step[DatedRequest, Admission] = Step(
    "validate_change", Admission,
    # claim the subscription (2); taking over the claim of a change that ended without closing
    # runs that change's compensation too: the refund step's budget. That makes a long attempt,
    # so it heartbeats: the attempt of a worker that died in it is retried within the heartbeat
    # timeout, not after the whole budget (3 minutes).
    policy(limits.Budget(gateway_requests=5, transactions=2 + 11), 6, 15, heartbeats=True),
    lambda dated: f"check {dated.request.describe()} against the seat and plan rules",
    advances=Trigger.VALIDATE)
QUOTE_CHANGE: Step[DatedRequest, QuoteOutcome] = Step(
    "quote_change", QuoteOutcome, database(2),
    lambda dated: f"price the change as of {dated.change_date}", advances=Trigger.QUOTE,
    local=True)
OPEN_SALES_CASE: Step[SalesCaseInput, SalesCaseOutput] = Step(
    "open_sales_case", SalesCaseOutput, database(2),
    lambda case: f"ask sales to approve {case.quote.total_due} {case.quote.currency} "
                 "(offline payer)",
    advances=Trigger.ROUTE_TO_SALES)
CLOSE_SALES_CASE: Step[CloseSalesCaseInput, None] = Step(
    "close_sales_case", None, database(2),
    lambda close: f"close {close.case_id} as {close.outcome}", cancellable=False)
CHARGE: Step[ChargeInput, PaymentRecord] = Step(
    "charge", PaymentRecord,
    # card attached?, attach, create the intent, read it, confirm, read back a refused confirm;
    # take the entry (insert, or read and take over: 3), read the card, record the intent, hold
    # it before confirming, record the outcome, read the entry when the attempt lost. A rerun
    # of a workflow id charged by an earlier run for another quote first refunds that charge:
    # find its refund, refund; is it applied?, take the refund entry (3), hold, record, move.
    policy(limits.Budget(gateway_requests=8, transactions=15), 5, 20, "CardDeclined",
           "NoPaymentMethod", "CardNeedsAuthentication", "ChargeVoided", "StaleSubscription",
           "BelowMinimumCharge", heartbeats=True,
           money_safe=("CardDeclined", "NoPaymentMethod", "ChargeVoided", "StaleSubscription",
                       "BelowMinimumCharge")),
    lambda charge: f"charge {charge.quote.total_due} {charge.quote.currency} to the card",
    advances=Trigger.CHARGE)
REFUND_CHARGE: Step[RefundChargeInput, RefundChargeOutput] = Step(
    "refund_charge", RefundChargeOutput,
    # read the intent, cancel it (or read it back), find an existing refund, refund; take the
    # refund entry (3), is the change applied?, void the charge entry (3), hold it before
    # refunding, record the refund, read the entry when the attempt lost.
    policy(limits.Budget(gateway_requests=5, transactions=11), 8, 60, heartbeats=True),
    lambda _refund: "refund the charge of a cancelled change", cancellable=False)
APPLY_CHANGE: Step[ApplyInput, ApplyOutput] = Step(
    "apply_change", ApplyOutput, database(2, 6, 15, "StaleSubscription", "ChangeWithdrawn"),
    lambda apply: f"{apply.quote.old_plan}×{apply.quote.old_seats} → "
                  f"{apply.quote.new_plan}×{apply.quote.new_seats}",
    advances=Trigger.APPLY)
FIND_APPLIED_CHANGE: Step[ChangeRequest, AppliedOutcome] = Step(
    "find_applied_change", AppliedOutcome, database(2),
    lambda request: f"did {request.request_id}'s failed apply commit after all?",
    cancellable=False)
EMAIL_INVOICE: Step[str, InvoiceRecord] = Step(
    "email_invoice", InvoiceRecord,
    # read the invoice, take the lease and read it back, renew it before sending, mark it sent;
    # the SMTP greeting, EHLO, MAIL, RCPT, DATA, the message, QUIT (and a spare RCPT).
    policy(limits.Budget(transactions=5, mail_commands=8), 8, 60, heartbeats=True),
    lambda invoice_number: f"email invoice {invoice_number} with its PDF",
    advances=Trigger.INVOICE)
OPEN_REFUND_TICKET: Step[RefundTicketInput, RefundTicketRecord] = Step(
    "open_refund_ticket", RefundTicketRecord, database(2),
    lambda ticket: f"ask for a refund of {ticket.quote.refundable_total} "
                   f"{ticket.quote.currency}")
CLOSE_CHANGE: Step[CloseChangeInput, None] = Step(
    "close_change", None, database(2, 10, 60),
    lambda _close: "close_change", cancellable=False, local=True)
# Tells webhook subscribers that the change parked (change.awaiting_support). A database
# outage can't lose the event: it is retried until the database answers, the change meanwhile
# parked as it would be (the patch awaiting_support_event, workflows/versions.py).
RECORD_AWAITING_SUPPORT: Step[ParkedChange, None] = Step(
    "record_awaiting_support", None, database(2, 0, 60),
    lambda parked: f"tell webhook subscribers that {parked.step} waits for support",
    cancellable=False, local=True)

# Payment recovery (SPEC section 11, workflows/payment_recovery.py): the change waits for payment,
# recorded so a new card wakes it, with its change.awaiting_payment event; retried until the
# database answers, like the park's record. And the one notice to the billing contact.
RECORD_AWAITING_PAYMENT: Step[AwaitingPayment, PaymentPlan] = Step(
    "record_awaiting_payment", PaymentPlan, database(3, 0, 60),
    lambda waiting: f"wait for payment after decline {waiting.declines} "
                    f"({waiting.decline.code or 'no code'}, {waiting.decline.decline_class})",
    cancellable=False, local=True)
EMAIL_PAYMENT_FAILED: Step[PaymentFailedNotice, None] = Step(
    "email_payment_failed", None,
    # is it sent? and read the organisation, take the lease (and read it back), renew it while
    # sending, mark it sent; the SMTP session.
    policy(limits.Budget(transactions=5, mail_commands=8), 8, 60, heartbeats=True),
    lambda notice: f"tell the billing contact that {notice.quote.total_due} "
                   f"{notice.quote.currency} was declined")

RECORD_TEMPORAL_CANCEL: Step[TemporalCancelRecord, None] = Step(
    "record_temporal_cancel", None,
    # ask the server who sent the cancel (one request, counted as a gateway's), record it (2)
    policy(limits.Budget(gateway_requests=1, transactions=2), 6, 15),
    lambda record: f"record the cancellation through Temporal ({record.outcome})",
    cancellable=False)

# A change at the period end (SPEC section 10). Taking the slot asks the server whether its
# holder still runs (one request, counted as a gateway's), then one transaction (slot, event,
# claim freed).
SCHEDULE_CHANGE: Step[ScheduleInput, ScheduleOutcome] = Step(
    "schedule_change", ScheduleOutcome,
    policy(limits.Budget(gateway_requests=1, transactions=3), 6, 15),
    lambda step: f"schedule for {step.quote.effective_date}: wait for the period end",
    advances=Trigger.SCHEDULE)
# At the period end: claim the subscription (taking over a dead holder's claim runs its
# compensation: validate_change's budget), then the slot and the rules, and the next period's
# quote.
FIRE_SCHEDULED_CHANGE: Step[FireInput, FireOutcome] = Step(
    "fire_scheduled_change", FireOutcome,
    policy(limits.Budget(gateway_requests=5, transactions=2 + 11), 6, 15, heartbeats=True),
    lambda step: f"the period end {step.scheduled_for} came: check {step.request.describe()} "
                 "again and price the next period",
    advances=Trigger.FALL_DUE)

# Not a step of the story: an update's check of who asks, run by the handler.
AUTHORIZE_PRINCIPAL: Step[PrincipalCheck, PrincipalVerdict] = Step(
    "authorize_principal", PrincipalVerdict, database(2, 3, 2),
    lambda check: f"may {check.by} {check.action}?", cancellable=False)

STEPS: tuple[Step, ...] = (
    OPEN_CHANGE, AUTHORIZE_ADMIN, VALIDATE_CHANGE, QUOTE_CHANGE, OPEN_SALES_CASE,
    CLOSE_SALES_CASE, CHARGE, REFUND_CHARGE, APPLY_CHANGE, FIND_APPLIED_CHANGE, EMAIL_INVOICE,
    OPEN_REFUND_TICKET, CLOSE_CHANGE, RECORD_AWAITING_SUPPORT, RECORD_AWAITING_PAYMENT,
    EMAIL_PAYMENT_FAILED, RECORD_TEMPORAL_CANCEL, AUTHORIZE_PRINCIPAL, SCHEDULE_CHANGE,
    FIRE_SCHEDULED_CHANGE)
