"""Payment recovery (SPEC section 11): a declined card waits for payment instead of going straight
to support. A soft decline is tried again on PAYMENT_RETRY_SCHEDULE (1, 2, 2, 2 days), a new card
tries at once, a hard decline waits for a new card with no scheduled attempt, the billing contact
hears of it once, an exhausted schedule parks the change for support, and every attempt charges
at most once.

The local gateway declines 4000000000000341 on every charge with `card_declined` (soft: it gives
no finer code) and holds 4000002500003155 for the payer's 3-D Secure (`authentication_required`,
hard); the finer codes only the real gateway gives are judged by the table
(tests/unit/test_declines.py). Days pass on this module's own time-skipping server."""

from __future__ import annotations

from datetime import timedelta

from subchange.app.payments import wake_changes_waiting_for_payment
from subchange.domain.contracts import CancelRequest, ChangeStatus, RetryRequest
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    GOOD_CARD,
    SUPPORT,
    THREE_D_SECURE_CARD,
    admin,
    admin_email,
    org_document,
    unique_org,
)
from tests.helpers.driver import ChangeDriver, wait_for, wait_for_payment, wait_parked
from tests.helpers.observers import (
    assert_untouched,
    charges,
    mail_text,
    payment_notices,
    search_attributes,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import own_clock
from workflows.subscription_change import SubscriptionChange

time_skipping_env = own_clock()  # its own clock: it skips days


PERIODS: dict[str, tuple[str, str]] = {}


async def load_suite_paid_by(driver: ChangeDriver, org: str, card: str,
                             **org_fields: str) -> None:
    """A suite subscription whose period has weeks left whatever day the server's clock is at
    when it is first loaded, so a week of retries stays within it; loaded again (a new card),
    the same period, so only the card changes."""
    if org not in PERIODS:
        today = (await driver.env.get_current_time()).date()
        PERIODS[org] = (str(today - timedelta(days=2)), str(today + timedelta(days=28)))
    start, end = PERIODS[org]
    document = org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
        "card": card, "period_start": start, "period_end": end}])
    document["orgs"][0].update(org_fields)
    driver.reload(document)


async def replace_card(driver: ChangeDriver, deps, org: str, card: str = GOOD_CARD) -> list[str]:
    """What `starter.py load` does with a fixture holding a new card: load it, then tell the
    organisation's changes waiting for payment."""
    await load_suite_paid_by(driver, org, card)
    return await wake_changes_waiting_for_payment(driver.client, deps.sessions, org)


def failed_charges(view) -> int:
    return sum(1 for step in view.history if step.step == "charge" and step.outcome == "failed")


async def test_a_soft_decline_waits_a_day_then_the_second_attempt_charges_once(
        driver, deps, gateway, mailbox):
    org = unique_org("soft")
    await load_suite_paid_by(driver, org, DECLINED_ON_CHARGE_CARD)
    handle = await driver.start(org, seats=35)

    view = await wait_for_payment(handle)
    now = await driver.env.get_current_time()
    assert view.next_attempt_at is not None
    assert timedelta(hours=23) < view.next_attempt_at - now <= timedelta(days=1)
    assert "a new card" in view.waiting_for and "CardDeclined" in view.last_error
    expected = ("awaiting_payment", "running")
    assert await search_attributes(handle, expected) == expected
    [notice] = payment_notices(mailbox, org)
    assert "35" in mail_text(notice) and "retries the payment at once" in mail_text(notice)

    # The card issuer says yes the next day (the card on file works now; nobody told the change).
    await load_suite_paid_by(driver, org, GOOD_CARD)
    await driver.env.sleep(timedelta(days=1, minutes=1))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert paid.id == result.payment.charge_id
    assert len(payment_notices(mailbox, org)) == 1  # one notice, however many attempts
    assert result.invoice.emailed_to == f"billing@{org}.example"


async def test_a_new_card_tries_at_once_and_takes_the_money_once(driver, deps, gateway, mailbox):
    org = unique_org("newcard")
    await load_suite_paid_by(driver, org, DECLINED_ON_CHARGE_CARD)
    handle = await driver.start(org, seats=35)
    await wait_for_payment(handle)

    assert await replace_card(driver, deps, org) == [handle.id]

    result = await driver.result(handle)  # no time passes: the card woke it
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.quote.change_date == (await driver.env.get_current_time()).date()
    sub = subscription_row(deps, org, "one")
    assert [c.status for c in charges(gateway, sub)] == ["failed", "succeeded"]
    assert sub.seats == 35
    # Once ended, a change is not told of later cards.
    assert await replace_card(driver, deps, org, DECLINED_ON_CHARGE_CARD) == []


async def test_an_exhausted_schedule_parks_for_support_whose_retry_charges(
        driver, deps, gateway, mailbox):
    org = unique_org("exhaust")
    await load_suite_paid_by(driver, org, DECLINED_ON_CHARGE_CARD)
    handle = await driver.start(org, seats=35)
    await wait_for_payment(handle)

    await driver.env.sleep(timedelta(days=7, hours=1))  # 1 + 2 + 2 + 2 days: four more tries

    view = await wait_parked(handle)
    assert failed_charges(view) == 5 and "support" in view.waiting_for
    expected = ("awaiting_support", "running")
    assert await search_attributes(handle, expected) == expected
    assert len(payment_notices(mailbox, org)) == 1
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []

    await load_suite_paid_by(driver, org, GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert len(succeeded_charges(gateway, subscription_row(deps, org, "one"))) == 1


async def test_a_hard_decline_waits_for_a_new_card_without_scheduled_attempts(
        driver, deps, gateway, mailbox):
    """The payer's 3-D Secure never came: no attempt on a schedule would help. A new card makes
    a new intent; the one waiting for the payer is cancelled, so it can't charge later."""
    org = unique_org("hard")
    await load_suite_paid_by(driver, org, THREE_D_SECURE_CARD)
    handle = await driver.start(org, seats=35)
    view = await wait_for_payment(handle)
    assert view.next_attempt_at is None and "hard decline" in view.waiting_for

    await driver.env.sleep(timedelta(days=3))
    view = await wait_for(handle, lambda v: v.state == "awaiting_payment", "still waiting")
    assert failed_charges(view) == 1  # nothing tried on its own

    assert await replace_card(driver, deps, org) == [handle.id]

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    sub = subscription_row(deps, org, "one")
    assert [c.status for c in succeeded_charges(gateway, sub)] == ["succeeded"]
    assert len(payment_notices(mailbox, org)) == 1


async def test_support_retries_and_the_requester_cancels_while_it_waits_for_payment(
        driver, deps, gateway, mailbox):
    org = unique_org("waitcancel")
    await load_suite_paid_by(driver, org, DECLINED_ON_CHARGE_CARD)
    handle = await driver.start(org, seats=35)
    await wait_for_payment(handle)

    ack = await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    assert "charge" in ack.message
    view = await wait_for_payment(handle, declines=2)  # declined again: the next wait is 2 days
    now = await driver.env.get_current_time()
    assert timedelta(days=1, hours=23) < view.next_attempt_at - now <= timedelta(days=2)

    ack = await handle.execute_update(SubscriptionChange.cancel,
                                      CancelRequest(by=admin_email(org), reason="not now"))
    assert "nothing was charged" in ack.message
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert_untouched(deps, gateway, mailbox, org)
    assert len(payment_notices(mailbox, org)) == 1
    assert await replace_card(driver, deps, org) == []  # a cancelled change is not retried



async def test_an_organisation_with_its_own_schedule_is_retried_on_it(driver, deps, gateway,
                                                                     mailbox):
    """Retry rules per customer: this one's waits are 2 hours, once (its fixture's
    payment_retry_schedule), not the default week."""
    org = unique_org("ownsched")
    await load_suite_paid_by(driver, org, DECLINED_ON_CHARGE_CARD, payment_retry_schedule="PT2H")
    handle = await driver.start(org, seats=35)

    view = await wait_for_payment(handle)
    now = await driver.env.get_current_time()
    assert timedelta(hours=1) < view.next_attempt_at - now <= timedelta(hours=2)

    await driver.env.sleep(timedelta(hours=3))
    view = await wait_parked(handle)  # its one retry declined too: support
    assert failed_charges(view) == 2
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []
    assert len(payment_notices(mailbox, org)) == 1
