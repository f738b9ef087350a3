"""A change that waited (parked for support, or for a sales decision) is quoted again before it
is charged or applied: proration counts from the day it takes effect, not the day it was asked
for, so nobody pays for days already past; and a change whose billing period ended meanwhile is
rejected, nothing charged; and a terminated change started again later is charged its new quote,
the earlier run's charge refunded. Days pass on a time-skipping server of each test's own."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.admission import AdmissionActivities
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import ChangeStatus, RetryRequest, SalesDecision
from subchange.domain.money import to_minor_units
from subchange.domain.step_io import ApplyInput, ApplyOutput, DatedRequest
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    GOOD_CARD,
    SALES,
    SUPPORT,
    admin,
    unique_org,
)
from tests.helpers.driver import (
    ChangeDriver,
    request_for,
    wait_for_payment,
    wait_for_sales,
    wait_parked,
)
from tests.helpers.observers import (
    refunds_of,
    sales_case_row,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import own_clock
from workflows.subscription_change import SubscriptionChange

time_skipping_env = own_clock("function")  # its own clock: it skips days


async def load_suite_for(driver: ChangeDriver, org: str, today: date, *, card: str | None,
                         period_days: int = 40) -> None:
    await driver.load(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
        "card": card, "payment_method": "online" if card else "offline",
        "period_start": str(today - timedelta(days=5)),
        "period_end": str(today - timedelta(days=5) + timedelta(days=period_days))}])


def steps_run(view, name: str) -> int:
    return sum(1 for step in view.history if step.step == name and step.outcome == "ok")


async def test_a_charge_retried_days_later_is_for_the_days_left_then(driver, gateway):
    env = driver.env
    today = (await env.get_current_time()).date()
    org = unique_org("later")
    await load_suite_for(driver, org, today, card=DECLINED_ON_CHARGE_CARD)
    handle = await driver.start(org, seats=35)
    await wait_for_payment(handle)

    # Between its scheduled attempts (after 1 day, then 2 more): declined once more meanwhile.
    await env.sleep(timedelta(days=2, hours=12))
    await wait_for_payment(handle, declines=2)
    await load_suite_for(driver, org, today, card=GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert quote.change_date == (await env.get_current_time()).date() >= today + timedelta(days=2)
    assert quote.remaining_days == (today + timedelta(days=35) - quote.change_date).days
    [paid] = succeeded_charges(gateway, workflow_id=handle.id)
    assert paid.amount == to_minor_units(quote.total_due, quote.currency)
    assert result.payment.amount == quote.total_due
    assert result.invoice.amount == quote.total_due  # invoiced what was charged


async def test_an_approval_days_later_applies_the_change_as_of_that_day(driver):
    env = driver.env
    today = (await env.get_current_time()).date()
    org = unique_org("salesslow")
    await load_suite_for(driver, org, today, card=None)
    handle = await driver.start(org, seats=35)
    await wait_for_sales(handle)

    await env.sleep(timedelta(days=6))
    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.quote.change_date >= today + timedelta(days=6)
    assert result.payment.amount == result.quote.total_due == result.invoice.amount
    view = await driver.client.get_workflow_handle(handle.id).query(SubscriptionChange.status)
    assert steps_run(view, "quote_change") == 2


async def test_a_wait_past_the_end_of_the_billing_period_rejects_the_change(driver, gateway):
    env = driver.env
    today = (await env.get_current_time()).date()
    org = unique_org("pastend")
    await load_suite_for(driver, org, today, card=DECLINED_ON_CHARGE_CARD, period_days=8)
    handle = await driver.start(org, seats=35)
    await wait_for_payment(handle)

    # Its scheduled attempts price it again each time: the one on the period's last day finds
    # the period closed (three days left when it was declined; attempts after 1 and 3 days).
    await env.sleep(timedelta(days=5))

    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED,
                                                   "billing_period_closed")
    assert succeeded_charges(gateway, workflow_id=handle.id) == []


@pytest.mark.parametrize("step", ["validate_change", "quote_change"])
async def test_a_validation_or_quote_retried_days_later_prices_the_days_left_then(
        driver_with_stand_ins, deps, gateway, step):
    """The database was down when the change was validated (or quoted): it waited three days
    for support. Retried, it is judged and priced as of that day, not the day it was asked."""
    real = getattr(AdmissionActivities(deps), step)
    failed: list[DatedRequest] = []

    @activity.defn(name=step)
    def fails_the_first_time(dated: DatedRequest):
        if not failed:
            failed.append(dated)
            raise ApplicationError("the database is unreachable", type="Outage",
                                   non_retryable=True)
        return real(dated)

    driver = await driver_with_stand_ins(**{step: fails_the_first_time})
    env = driver.env
    today = (await env.get_current_time()).date()
    org = unique_org("redate")
    await load_suite_for(driver, org, today, card=GOOD_CARD)
    handle = await driver.start(org, seats=35)
    view = await wait_parked(handle)
    assert view.step == step

    await env.sleep(timedelta(days=3))
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert quote.change_date >= today + timedelta(days=3)
    assert quote.remaining_days == (today + timedelta(days=35) - quote.change_date).days
    [paid] = succeeded_charges(gateway, workflow_id=handle.id)
    assert paid.amount == to_minor_units(quote.total_due, quote.currency)


async def test_an_approval_after_the_billing_period_ended_rejects_and_closes_the_case(
        driver, deps):
    """Sales approved, but the period ended while they decided: the change is rejected, and its
    sales case no longer says approved for a change that never happened."""
    env = driver.env
    today = (await env.get_current_time()).date()
    org = unique_org("pastendoff")
    await load_suite_for(driver, org, today, card=None, period_days=8)
    handle = await driver.start(org, seats=35)
    await wait_for_sales(handle)

    await env.sleep(timedelta(days=5))
    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES))

    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED,
                                                   "billing_period_closed")
    case = sales_case_row(deps, handle.id)
    assert case.status == "cancelled"
    assert f"approved by {SALES}" in case.note and "rejected when priced again" in case.note
    assert subscription_row(deps, org, "one").seats == 30


async def test_a_terminated_change_started_again_later_is_charged_its_new_quote_once(
        driver_with_stand_ins, deps, gateway):
    """The same request started again after its first run was terminated (charged, never
    applied) is quoted as of the new day: the first run's charge is refunded and the new quote
    charged, so the change is paid once, at the price of the day it took effect."""
    applies: list[str] = []
    real = SubscriptionActivities(deps)

    @activity.defn(name="apply_change")
    def apply_failing_the_first_time(change: ApplyInput) -> ApplyOutput:
        applies.append(change.quote.change_date.isoformat())
        if len(applies) == 1:
            raise ApplicationError("database unreachable", type="DatabaseDown",
                                   non_retryable=True)
        return real.apply_change(change)

    driver = await driver_with_stand_ins(apply_change=apply_failing_the_first_time)
    env = driver.env
    today = (await env.get_current_time()).date()
    org = unique_org("rerun")
    await load_suite_for(driver, org, today, card=GOOD_CARD)
    request = request_for(org, seats=35)
    first = await driver.start_request(request)
    assert (await wait_parked(first)).step == "apply_change"
    await first.terminate(reason="operator cleanup")

    await env.sleep(timedelta(days=3))
    again = await driver.start_request(request)
    result = await driver.result(again)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.quote.change_date >= today + timedelta(days=3)
    charged = sorted(succeeded_charges(gateway, workflow_id=request.workflow_id),
                     key=lambda charge: charge.created)
    assert len(charged) == 2
    earlier, now = charged
    assert [r.amount for r in refunds_of(gateway, earlier.payment_intent)] == [earlier.amount]
    assert refunds_of(gateway, now.payment_intent) == []
    assert now.amount == to_minor_units(result.quote.total_due, result.quote.currency)
    assert result.payment.intent_id == now.payment_intent
