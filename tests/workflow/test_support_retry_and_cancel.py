"""What support staff see when a change does not go straight through (SPEC sections 3, 7 and 11): a
declined card waits for payment, where support's `retry` after the card is replaced charges
once and `cancel` changes nothing; `cancel` refunds a charge whose change can't be applied
(compensation), and a cancellation through Temporal (the Web UI's "Request cancellation") ends
it like the update.

Everything runs through the real workflow and activities, localstripe and the SMTP server."""

from __future__ import annotations

from subchange.domain.contracts import (
    CancelRequest,
    ChangeStatus,
    RetryRequest,
    SalesDecision,
)
from tests.helpers.documents import GOOD_CARD, SALES, SUPPORT, THREE_D_SECURE_CARD, unique_org
from tests.helpers.driver import (
    load_suite,
    refused,
    start_declined_change,
    wait_for_payment,
)
from tests.helpers.observers import (
    assert_untouched,
    charges,
    is_payment_notice,
    payment_intent,
    payment_intents_of,
    search_attributes,
    subscription_row,
    succeeded_charges,
)
from workflows.subscription_change import SubscriptionChange


def failed_charge_attempts(view) -> int:
    return sum(1 for step in view.history if step.step == "charge" and step.outcome == "failed")

# --- declined card: awaiting_payment, cancel and retry -----------------------------------------

async def test_declined_card_waits_for_payment_and_cancel_changes_nothing(driver, deps, gateway,
                                                                          mailbox):
    org = unique_org("decl")
    handle = await start_declined_change(driver, org)

    view = await wait_for_payment(handle)
    assert view.step == "charge" and "declined" in view.last_error
    assert "support may retry or cancel" in view.waiting_for
    expected = ("awaiting_payment", "running")
    assert await search_attributes(handle, expected) == expected
    assert [c.status for c in charges(gateway, subscription_row(deps, org, "one"))] == ["failed"]
    assert "no sales decision is awaited" in await refused(
        handle, "sales_decision", SalesDecision(approved=True, by=SALES))

    ack = await handle.execute_update(SubscriptionChange.cancel,
                                      CancelRequest(by=SUPPORT, reason="card expired"))

    assert "nothing was charged" in ack.message
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert SUPPORT in result.reason and "card expired" in result.reason
    assert result.subscription is None and result.invoice is None
    assert_untouched(deps, gateway, mailbox, org)
    expected = ("cancelled", "cancelled")
    assert await search_attributes(handle, expected) == expected


async def test_retry_after_the_card_is_replaced_charges_once(driver, deps, gateway, mailbox):
    org = unique_org("retry")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)

    # A retry with the same card waits for payment again, with the decline as the last error.
    ack = await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    assert "charge" in ack.message
    view = await wait_for_payment(handle, declines=2)
    assert "declined" in view.last_error
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []

    await load_suite(driver, org, card=GOOD_CARD)  # the customer updated the card on file
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert paid.id == result.payment.charge_id and paid.amount == int(result.quote.total_due)
    assert result.subscription.seats == subscription_row(deps, org, "one").seats == 35
    billing = mailbox.messages(to=f"billing@{org}.example")
    assert sorted(is_payment_notice(m) for m in billing) == [False, True]  # invoice, notice


# --- cancelled through Temporal -------------------------------------------------------------------

async def test_a_cancellation_through_temporal_releases_the_subscription(driver, deps, gateway,
                                                                        mailbox):
    """The Web UI's "Request cancellation" ends the change like the cancel update: the
    subscription is free for the next change and nothing was charged."""
    org = unique_org("tcancel")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)

    await handle.cancel()

    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert "through Temporal" in result.reason
    assert_untouched(deps, gateway, mailbox, org)
    await load_suite(driver, org, card=GOOD_CARD)
    after = await driver.run(org, seats=33)
    assert after.status is ChangeStatus.COMPLETED, after.reason


# --- a card that needs the payer's 3-D Secure ----------------------------------------------------

async def test_a_card_needing_3d_secure_waits_and_a_cancel_voids_its_intent(driver, deps, gateway,
                                                                           mailbox):
    """A hard decline: the intent waits for the payer's authentication, so it is kept (a retry
    after they authenticated reads it again) and a cancel voids it, so it can't charge later."""
    org = unique_org("3ds")
    await load_suite(driver, org, card=THREE_D_SECURE_CARD)
    handle = await driver.start(org, seats=35)

    view = await wait_for_payment(handle)
    assert view.step == "charge" and "3-D Secure" in view.last_error
    assert failed_charge_attempts(view) == 1  # not retried on its own: the payer must act
    [intent] = payment_intents_of(gateway, handle.id)
    assert intent.status == "requires_action"

    await handle.execute_update(SubscriptionChange.cancel,
                                CancelRequest(by=SUPPORT, reason="payer unreachable"))

    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert payment_intent(gateway, intent.id).status == "canceled"
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []
    assert subscription_row(deps, org, "one").seats == 30
    assert all(is_payment_notice(m) for m in mailbox.messages(to=f"billing@{org}.example"))
