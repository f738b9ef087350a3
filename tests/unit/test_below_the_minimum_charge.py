"""A change whose total is below the gateway's minimum charge, through the real activities, the
database and localstripe (which, like Stripe, refuses an intent below the minimum: `amount_too_small`,
subchange/dev/gateway_server.py): the charge refuses such an amount for good and moves no money,
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
from subchange.domain.contracts import ChangeRequest, Quote
from subchange.domain.gateway_minimums import GatewayMinimums
from subchange.domain.step_io import ChargeInput, DatedRequest
from subchange.store import changes, ledger
from tests.helpers.documents import admin, load_document, org_document, unique_org
from tests.helpers.observers import payment_intents_of, subscription_row
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


def last_day_change(deps: Dependencies, *, agents: int = 1) -> Change:
    """`agents` more on a USD standard desk of 3 whose 30-day period ends tomorrow, quoted by
    the real quote step as of today."""
    org = unique_org("tiny")
    load_document(deps, org_document(org, currency="USD", users=[admin(org)], subscriptions=[
        {"product": "desk", "plan": "standard", "seats": 3,
         "period_start": str(TODAY + timedelta(days=1) - timedelta(days=30)),
         "period_end": str(TODAY + timedelta(days=1))}]))
    request = ChangeRequest.model_validate({
        "request_id": f"req-{uuid.uuid4().hex[:12]}", "org_id": org, "product": "desk",
        "requested_by": f"admin@{org}.example", "change": {"kind": "seats", "seats": 3 + agents}})
    with deps.sessions() as session:  # as the workflow's first step does
        changes.open_change(session=session, workflow_id=request.workflow_id, request=request)
    outcome = environment(request.workflow_id).run(
        AdmissionActivities(deps).quote_change, DatedRequest(request=request, change_date=TODAY))
    assert outcome.quote is not None
    return Change(request.workflow_id, request, outcome.quote)


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
