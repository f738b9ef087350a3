"""A change whose total is below the gateway's minimum charge (issue 22, item 5), end to end with
the real workflow, activities, database, localstripe (which refuses such an intent, as Stripe
does) and SMTP server: the change is applied without asking the gateway for anything, its total
is a pending item of the next renewal invoice, the invoice says so, and the result's payment is
`carried`. A charge that waited for support and is priced again below the minimum is carried
too, instead of being refused for good."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from subchange.app.wiring import build_worker
from subchange.domain.contracts import ChangeStatus, RetryRequest
from subchange.store import renewals
from subchange.store.tables import RenewalItem
from tests.helpers.documents import DECLINED_ON_CHARGE_CARD, GOOD_CARD, SUPPORT, unique_org
from tests.helpers.driver import ChangeDriver, load_desk, wait_for_payment
from tests.helpers.observers import (
    mail_text,
    payment_intents_of,
    pdf_attachments,
    pdf_text,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import time_skipping_server
from workflows.subscription_change import SubscriptionChange


def items_of(deps, org: str) -> list[RenewalItem]:
    with deps.sessions() as session:
        return renewals.renewal_items(session=session, org_id=org)


async def test_one_agent_more_on_the_last_day_is_applied_and_carried_to_renewal(
        driver, deps, gateway, mailbox):
    org = unique_org("tiny")
    today = (await driver.env.get_current_time()).date()
    await load_desk(driver, org, today, days_left=1)

    result = await driver.run(org, "desk", seats=4)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert (quote.remaining_days, quote.period_days, quote.total_due) == (1, 30, Decimal("0.47"))
    assert quote.carried_to_renewal
    assert (result.payment.method, result.payment.amount, result.payment.currency) == (
        "carried", Decimal("0.47"), "USD")
    assert result.payment.charge_id is None and result.payment.intent_id is None
    # Nothing was asked of the gateway: no intent, no charge.
    assert payment_intents_of(gateway, result.workflow_id) == []
    assert succeeded_charges(gateway, subscription_row(deps, org, "desk")) == []
    # The change is applied, and its total waits for the next renewal invoice, once.
    assert result.subscription.seats == 4 == subscription_row(deps, org, "desk").seats
    [item] = items_of(deps, org)
    assert (item.workflow_id, item.product, item.status) == (result.workflow_id, "desk", "pending")
    assert (item.amount, item.tax, item.total, item.currency) == (
        Decimal("0.47"), Decimal(0), Decimal("0.47"), "USD")
    assert item.invoice_number == result.invoice.number
    # The invoice bills the change and says it is carried, in the email and in its PDF.
    assert result.invoice.amount == Decimal("0.47")
    [mail] = mailbox.messages(to=f"billing@{org}.example")
    [pdf] = pdf_attachments(mail)
    for shown in (mail_text(mail), pdf_text(pdf.get_payload(decode=True)).replace("\n", "")):
        assert "Total: $0.47" in shown
        assert "Carried to your next renewal invoice: $0.47" in shown
        assert "Not charged now: $0.47" in shown and "Paid by card" not in shown
    # The status query (`starter.py status`) shows no charge step, and the carried payment.
    view = await driver.client.get_workflow_handle(result.workflow_id).query(
        SubscriptionChange.status)
    assert "charge" not in [step.step for step in view.history]
    assert view.result is not None and view.result.payment.method == "carried"


async def test_two_agents_on_the_last_day_are_charged_as_ever(driver, deps, gateway):
    org = unique_org("edge")
    today = (await driver.env.get_current_time()).date()
    await load_desk(driver, org, today, days_left=1)

    result = await driver.run(org, "desk", seats=5)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.quote.total_due == Decimal("0.93") and not result.quote.carried_to_renewal
    [paid] = succeeded_charges(gateway, workflow_id=result.workflow_id)
    assert (paid.amount, result.payment.method) == (93, "card")
    assert items_of(deps, org) == []


@pytest.fixture
async def later(deps, load) -> AsyncIterator[tuple[ChangeDriver, WorkflowEnvironment]]:
    """A time-skipping server of this test's own: its days pass without moving the session's."""
    async with time_skipping_server() as env, build_worker(
            env.client, deps, task_queue=f"tq-{uuid.uuid4().hex[:10]}",
            fail_workflows_on_bugs=True) as worker:
        yield ChangeDriver(env.client, worker.task_queue, env, load), env


async def test_a_charge_priced_again_below_the_minimum_after_a_wait_is_carried(
        later, deps, gateway):
    """Three days left, one agent more: 1.40, charged, and the card declines it. Support retries
    two days later, with a new card: priced again for the one day left, 0.47, below the minimum,
    so it is carried instead of charged (or refused at the gateway for good)."""
    driver, env = later
    today = (await env.get_current_time()).date()
    org = unique_org("waited")
    await load_desk(driver, org, today, days_left=3, card=DECLINED_ON_CHARGE_CARD)
    handle = await driver.start(org, "desk", seats=4)
    waiting = await wait_for_payment(handle)
    assert waiting.step == "charge" and "CardDeclined" in (waiting.last_error or "")

    await env.sleep(timedelta(days=2))
    await wait_for_payment(handle, declines=2)  # its attempt after a day: 0.93, declined too
    await load_desk(driver, org, today, days_left=3, card=GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert quote.change_date == today + timedelta(days=2) and quote.remaining_days == 1
    assert quote.total_due == Decimal("0.47") and quote.carried_to_renewal
    assert (result.payment.method, result.payment.amount) == ("carried", Decimal("0.47"))
    assert succeeded_charges(gateway, workflow_id=handle.id) == []
    # The declined intents of 1.40 and, a day later, 0.93: none was asked for 0.47.
    assert sorted(pi.amount for pi in payment_intents_of(gateway, handle.id)) == [93, 140]
    [item] = items_of(deps, org)
    assert (item.workflow_id, item.total) == (handle.id, Decimal("0.47"))
    assert result.subscription.seats == 4
