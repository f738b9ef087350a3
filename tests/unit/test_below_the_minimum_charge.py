"""A change whose total is below the gateway's minimum charge, through the real activities, the
database and localstripe (which, like Stripe, refuses an intent below the minimum:
`amount_too_small`, subchange/dev/gateway_server.py): the charge refuses such an amount for good
and moves no money,
whether our table or the gateway finds it too small; the apply of a carried change records one
pending renewal item, however often it runs.

The case of issue 22: one agent more on a USD standard desk (14.00 a month) on the last day of a
30-day period, 0.47 due."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.admission import AdmissionActivities
from activities.dependencies import Dependencies
from activities.payments import LEDGER_CHARGE, PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import ChangeRequest, PaymentRecord, Quote
from subchange.domain.gateway_minimums import GatewayMinimums
from subchange.domain.step_io import ApplyInput, ApplyOutput, ChargeInput, DatedRequest
from subchange.store import changes, ledger, renewals
from subchange.store.tables import RenewalItem
from tests.helpers.documents import admin, load_document, org_document, unique_org
from tests.helpers.observers import (
    change_rows,
    payment_intents_of,
    refunds_of,
    subscription_row,
)
from workflows.steps import CHARGE

TODAY = date.today()


@dataclasses.dataclass
class Change:
    workflow_id: str
    request: ChangeRequest
    quote: Quote


def environment(workflow_id: str, attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, attempt=attempt)
    return env


def last_day_change(deps: Dependencies, *, agents: int = 1, currency: str = "USD",
                    unit_price: str | None = None, days_left: int = 1) -> Change:
    """`agents` more on a standard desk of 3 (USD: in the US; JPY: in Japan, taxed) whose 30-day
    period ends tomorrow (or in `days_left` days), at the catalog's price or a negotiated one,
    quoted by the real quote step as of today."""
    org = unique_org("tiny")
    end = TODAY + timedelta(days=days_left)
    load_document(deps, org_document(org, currency=currency, users=[admin(org)], subscriptions=[
        {"product": "desk", "plan": "standard", "seats": 3, "unit_price": unit_price,
         "period_start": str(end - timedelta(days=30)), "period_end": str(end)}]))
    request = ChangeRequest.model_validate({
        "request_id": f"req-{uuid.uuid4().hex[:12]}", "org_id": org, "product": "desk",
        "requested_by": f"admin@{org}.example", "change": {"kind": "seats", "seats": 3 + agents}})
    with deps.sessions() as session:  # as the workflow's first step does
        changes.open_change(session=session, workflow_id=request.workflow_id, request=request)
    return Change(request.workflow_id, request, quoted(deps, request, TODAY))


def quoted(deps: Dependencies, request: ChangeRequest, day: date) -> Quote:
    """The quote step's quote of the change as of `day`."""
    outcome = environment(request.workflow_id).run(
        AdmissionActivities(deps).quote_change, DatedRequest(request=request, change_date=day))
    assert outcome.quote is not None
    return outcome.quote


def refusal(call: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        call()
    return raised.value


def charge(deps: Dependencies, todo: Change) -> Any:
    return environment(todo.workflow_id).run(PaymentActivities(deps).charge,
                                             ChargeInput(request=todo.request, quote=todo.quote))


# --- the charge ---------------------------------------------------------------------------------

def test_the_last_day_agent_is_quoted_as_carried(deps):
    todo = last_day_change(deps)

    assert (todo.quote.remaining_days, todo.quote.period_days) == (1, 30)
    assert todo.quote.total_due == Decimal("0.47") and todo.quote.carried_to_renewal


def test_the_charge_refuses_an_amount_below_the_minimum_for_good_and_asks_no_gateway(
        deps, gateway):
    todo = last_day_change(deps)

    refused = refusal(lambda: charge(deps, todo))

    assert refused.type == "BelowMinimumCharge" and refused.non_retryable
    assert "0.47 USD" in refused.message and "nothing was taken" in refused.message
    assert payment_intents_of(gateway, todo.workflow_id) == []
    # Parked, the change owes no refund: nothing moved, and the retry policy stops at once.
    assert not CHARGE.policy.may_have_moved_money("BelowMinimumCharge")
    assert "BelowMinimumCharge" in CHARGE.policy.retry.non_retryable_error_types


def test_the_gateways_amount_too_small_is_the_same_refusal(deps, gateway):
    """Our table lacks the currency (say the gateway raised its minimum before the table
    followed): the intent is asked for, Stripe answers `amount_too_small`, and the charge says
    so as the same non-retryable, money-safe refusal, not as an error to retry forever."""
    behind = dataclasses.replace(deps, minimums=GatewayMinimums(gateway="stripe", minimums={}))
    todo = last_day_change(behind)
    assert not todo.quote.carried_to_renewal  # by that table, it is charged

    refused = refusal(lambda: charge(behind, todo))

    assert refused.type == "BelowMinimumCharge" and refused.non_retryable
    assert "the gateway refused it" in refused.message
    assert payment_intents_of(gateway, todo.workflow_id) == []
    with deps.sessions() as session:
        entry = ledger.gateway_call(session=session, workflow_id=todo.workflow_id,
                                    step=LEDGER_CHARGE)
    assert entry is not None and entry.external_id is None  # no intent to void or refund


def test_an_amount_at_the_minimum_is_charged(deps, gateway):
    """Two agents on the last day: 0.93, above the minimum, charged as ever."""
    todo = last_day_change(deps, agents=2)
    assert todo.quote.total_due == Decimal("0.93") and not todo.quote.carried_to_renewal

    paid = charge(deps, todo)

    [intent] = payment_intents_of(gateway, todo.workflow_id)
    assert (intent.status, intent.amount, paid.method) == ("succeeded", 93, "card")
    assert subscription_row(deps, todo.request.org_id, "desk").seats == 3  # not applied yet


def test_a_rerun_below_the_minimum_refunds_the_earlier_runs_charge_before_carrying(
        deps, gateway):
    """The first run of a change was charged 1.40 (3 days left) and terminated before its
    apply; the same request started again two days later is quoted 0.47. Carried at once, the
    1.40 would stay taken besides. So while that intent is on record the quote is not carried:
    the charge refunds the earlier run's charge and refuses the 0.47 (money-safe, parked);
    quoted again later, with nothing left on record, the change is carried."""
    first = last_day_change(deps, days_left=3)
    assert first.quote.total_due == Decimal("1.40")
    paid = charge(deps, first)

    again = dataclasses.replace(first, quote=quoted(deps, first.request, TODAY + timedelta(2)))
    assert again.quote.total_due == Decimal("0.47") and not again.quote.carried_to_renewal

    assert refusal(lambda: charge(deps, again)).type == "BelowMinimumCharge"
    [refund] = refunds_of(gateway, paid.intent_id)
    assert refund.amount == 140
    assert [intent.amount for intent in payment_intents_of(gateway, first.workflow_id)] == [140]
    assert quoted(deps, first.request, TODAY + timedelta(2)).carried_to_renewal


# --- the apply of a carried change --------------------------------------------------------------

def carried(quote: Quote) -> PaymentRecord:
    """The payment the workflow settles a carried change with."""
    return PaymentRecord(method="carried", amount=quote.total_due, currency=quote.currency)


def apply(deps: Dependencies, todo: Change, payment: PaymentRecord, attempt: int = 1
          ) -> ApplyOutput:
    """One attempt of the apply step, as a worker runs it."""
    return environment(todo.workflow_id, attempt).run(
        SubscriptionActivities(deps).apply_change,
        ApplyInput(request=todo.request, quote=todo.quote, payment=payment))


def items_of(deps: Dependencies, org: str) -> list[RenewalItem]:
    with deps.sessions() as session:
        return renewals.renewal_items(session=session, org_id=org, status=None)


def test_a_carried_change_applied_twice_leaves_one_pending_renewal_item(deps, gateway):
    """A Japanese desk at a negotiated 1,350 yen: one agent for the last of 30 days is 45 yen,
    49 with its tax, below the 50 yen minimum. The apply runs again (a retry after a timeout):
    the change, its invoice and its renewal item are there once, with the tax apart."""
    todo = last_day_change(deps, currency="JPY", unit_price="1350")
    assert (todo.quote.amount_due, todo.quote.tax.tax, todo.quote.total_due) == (
        Decimal(45), Decimal(4), Decimal(49))
    assert todo.quote.carried_to_renewal

    first = apply(deps, todo, carried(todo.quote))
    again = apply(deps, todo, carried(todo.quote), attempt=2)

    assert again == first and first.subscription.seats == 4
    org = todo.request.org_id
    [item] = items_of(deps, org)
    assert (item.workflow_id, item.product, item.status, item.invoice_number) == (
        todo.workflow_id, "desk", "pending", first.invoice_number)
    assert item.subscription_id == subscription_row(deps, org, "desk").id
    assert (item.amount, item.tax, item.total, item.currency) == (
        Decimal(45), Decimal(4), Decimal(49), "JPY")
    assert change_rows(deps, todo.workflow_id) == {
        "change_record": 1, "applied_change": 1, "invoice": 1, "refund_ticket": 0}
    assert payment_intents_of(gateway, todo.workflow_id) == []


def test_an_apply_that_loses_to_a_stale_quote_leaves_no_renewal_item(deps):
    """The item is the apply's: an apply refused (the subscription moved since the quote) rolls
    it back with the rest."""
    todo = last_day_change(deps)
    org = todo.request.org_id
    stale = dataclasses.replace(todo, quote=todo.quote.model_copy(
        update={"subscription_version": todo.quote.subscription_version + 1}))

    with pytest.raises(ApplicationError, match="changed after it was quoted"):
        apply(deps, stale, carried(stale.quote))

    assert items_of(deps, org) == []
    assert subscription_row(deps, org, "desk").seats == 3


def test_a_charged_change_has_no_renewal_item(deps):
    todo = last_day_change(deps, agents=2)

    apply(deps, todo, charge(deps, todo))

    assert items_of(deps, todo.request.org_id) == []
