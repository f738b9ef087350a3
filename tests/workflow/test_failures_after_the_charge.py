"""Workflow logic with stand-ins for failures the real components can't be made to produce on
demand. Each stand-in wraps the real activity, so money, rows and emails are real; only the
failure is simulated:

- a charge step that takes the money and then fails for good (the database went away right after
  the gateway confirmed): the workflow can't know whether money moved, so a cancel looks the
  charge up and refunds it;
- the subscription changed by another channel between the charge and the apply (a fixture load at
  that moment): applying fails for good, and a cancel refunds the charge (compensation);
- a close step that fails once after the change was decided: cancel is refused (there is nothing
  left to cancel), retry finishes it.
"""

from __future__ import annotations

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.admission import AdmissionActivities
from activities.payments import PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import CancelRequest, ChangeStatus, PaymentRecord, RetryRequest
from subchange.domain.step_io import ApplyInput, ApplyOutput, ChargeInput, CloseChangeInput
from tests.helpers.documents import SUPPORT, admin, org_document, unique_org
from tests.helpers.driver import load_suite, wait_parked
from tests.helpers.observers import (
    refunds_of,
    search_attributes,
    subscription_row,
    succeeded_charges,
)
from workflows.subscription_change import SubscriptionChange


async def test_cancel_after_a_charge_with_unknown_outcome_refunds_it(
        driver_with_stand_ins, deps, gateway, mailbox):
    real = PaymentActivities(deps)

    @activity.defn(name="charge")
    def charge_then_lose_the_answer(charge: ChargeInput) -> PaymentRecord:
        real.charge(charge)
        raise ApplicationError("database unreachable after the gateway confirmed",
                               type="DatabaseGone", non_retryable=True)

    driver = await driver_with_stand_ins(charge=charge_then_lose_the_answer)
    org = unique_org("lost")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    view = await wait_parked(handle)
    assert view.step == "charge" and "DatabaseGone" in view.last_error
    # The money moved; the workflow doesn't know.
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))

    ack = await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))

    assert "refunded" in ack.message
    result = await driver.result(handle)
    assert result.status is ChangeStatus.CANCELLED
    [refund] = refunds_of(gateway, paid.payment_intent)
    assert (refund.amount, refund.id) == (paid.amount, result.payment.refund_id)
    assert subscription_row(deps, org, "one").seats == 30
    assert mailbox.messages(to=f"billing@{org}.example") == []


async def test_a_decided_change_parked_while_closing_refuses_cancel_and_retries(
        driver_with_stand_ins, deps):
    real, calls = AdmissionActivities(deps), []

    @activity.defn(name="close_change")
    def close_change_failing_once(close: CloseChangeInput) -> None:
        """Fails for good on its first run (the database is down), then works."""
        calls.append(close)
        if len(calls) == 1:
            raise ApplicationError("database unreachable", type="DatabaseGone",
                                   non_retryable=True)
        return real.close_change(close)

    driver = await driver_with_stand_ins(close_change=close_change_failing_once)
    org = unique_org("closing")
    await load_suite(driver, org, seats=30)
    handle = await driver.start(org, seats=30)
    view = await wait_parked(handle)
    assert view.step == "close_change"

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    assert "retry it instead" in str(refused.value.cause)

    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "no_change")


async def test_charged_change_that_cannot_be_applied_is_refunded_on_cancel(
        driver_with_stand_ins, load, deps, gateway, mailbox):
    """Compensation: the card is charged, then applying fails for good because the
    subscription was changed elsewhere meanwhile; cancelling refunds the charge."""
    real = SubscriptionActivities(deps)

    @activity.defn(name="apply_change")
    def apply_after_another_channel(change: ApplyInput) -> ApplyOutput:
        org = change.request.org_id
        load(org_document(org, users=[admin(org)], subscriptions=[{
            "product": "one", "plan": "enterprise", "seats": 31,
            "pricing_model": "flexible_user"}]))
        return real.apply_change(change)

    driver = await driver_with_stand_ins(apply_change=apply_after_another_channel)
    org = unique_org("comp")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    view = await wait_parked(handle)
    assert view.step == "apply_change" and "StaleSubscription" in view.last_error
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))  # money moved

    ack = await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))

    assert "refunded" in ack.message
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert result.payment.charge_id == paid.id and result.payment.refund_id
    [refund] = refunds_of(gateway, result.payment.intent_id)
    assert refund.id == result.payment.refund_id
    assert (refund.amount, refund.status) == (paid.amount, "succeeded")
    assert result.payment.amount == result.quote.total_due  # the gateway's refunded amount
    sub = subscription_row(deps, org, "one")
    assert (sub.seats, sub.version) == (31, 2)  # what the other channel set, nothing more
    assert mailbox.messages(to=f"billing@{org}.example") == []
    expected = ("compensated", "cancelled")
    assert await search_attributes(handle, expected) == expected
