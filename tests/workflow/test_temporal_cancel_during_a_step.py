"""A cancellation through Temporal (the Web UI's *Request Cancellation*, `temporal workflow
cancel`) while a step runs is handled like the `cancel` update: the step's attempt is let finish
so its outcome is known, then a charge is refunded and the change ends `cancelled`; a change the
apply already reached is finished instead. Never "Activity cancelled" parked for support.

Stand-ins wrap the real charge and apply and hold them until the test has sent the cancel, a
moment the real parts can't be timed to; money, rows and emails are real. The attempt is let go only
once the workflow has recorded its request to cancel it: an attempt ending inside the workflow task
that handles the cancel makes the time-skipping server refuse that task (ACTIVITY_UNKNOWN), a race
of the test server, not of the service."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType

from activities.dependencies import Dependencies
from activities.payments import PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import ChangeStatus, PaymentRecord
from subchange.domain.step_io import ApplyInput, ApplyOutput, ChargeInput
from tests.helpers.documents import unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    wait_for,
    wait_for_event,
    wait_for_sales,
)
from tests.helpers.observers import (
    claim_of,
    refunds_of,
    sales_case_row,
    subscription_row,
    succeeded_charges,
)


def _until_cancelled() -> None:
    """Heartbeat until the workflow's request to cancel this attempt has reached it."""
    for _ in range(300):
        activity.heartbeat()
        if activity.is_cancelled():
            return
        time.sleep(0.05)
    raise AssertionError("the attempt was never cancelled")


@pytest.fixture
async def held(driver_with_stand_ins, deps: Dependencies
               ) -> tuple[ChangeDriver, threading.Event, threading.Event, threading.Event]:
    """A driver whose charge waits to be cancelled before (or, once `charge_first` is set, after)
    doing the real thing, and whose apply waits for `release` first. `charged` is set once the
    charge went through."""
    release, charge_first, charged = threading.Event(), threading.Event(), threading.Event()
    payments, subscriptions = PaymentActivities(deps), SubscriptionActivities(deps)

    @activity.defn(name="charge", no_thread_cancel_exception=True)
    def held_charge(charge: ChargeInput) -> PaymentRecord:
        if charge_first.is_set():
            record = payments.charge(charge)
            charged.set()
            _until_cancelled()
            return record
        _until_cancelled()
        return payments.charge(charge)

    @activity.defn(name="apply_change")
    def held_apply(change: ApplyInput) -> ApplyOutput:
        assert release.wait(timeout=15), "the test never released the apply"
        return subscriptions.apply_change(change)

    driver = await driver_with_stand_ins(charge=held_charge, apply_change=held_apply)
    return driver, release, charge_first, charged


async def test_temporal_cancel_before_the_charge_confirms_takes_no_money(held, deps, gateway,
                                                                        mailbox):
    driver, _release, _charge_first, _charged = held
    org = unique_org("tcharge")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    await wait_for(handle, lambda v: v.step == "charge", "the charge")

    await handle.cancel()

    result = await driver.settle(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert result.payment is None
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []
    assert subscription_row(deps, org, "one").seats == 30
    assert mailbox.messages(to=f"billing@{org}.example") == []
    assert claim_of(deps, org, "one") is None


async def test_temporal_cancel_after_the_charge_went_through_refunds_it(held, deps, gateway,
                                                                        mailbox):
    driver, _release, charge_first, charged = held
    charge_first.set()
    org = unique_org("tcharged")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    await wait_for(handle, lambda v: v.step == "charge", "the charge")
    # The step shows before its attempt starts; a cancel then would find nothing charged.
    assert await asyncio.to_thread(charged.wait, 15), "the charge never went through"

    await handle.cancel()

    result = await driver.settle(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    [refund] = refunds_of(gateway, paid.payment_intent)
    assert (refund.amount, refund.id) == (paid.amount, result.payment.refund_id)
    assert subscription_row(deps, org, "one").seats == 30
    assert mailbox.messages(to=f"billing@{org}.example") == []
    assert claim_of(deps, org, "one") is None


async def test_temporal_cancel_during_apply_finishes_the_applied_change(held, deps, gateway,
                                                                       mailbox):
    driver, release, _charge_first, _charged = held
    org = unique_org("tapply")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=28)
    await wait_for(handle, lambda v: v.step == "apply_change", "the apply")

    await handle.cancel()
    await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    release.set()

    result = await driver.settle(handle)
    assert result.status is ChangeStatus.COMPLETED
    assert subscription_row(deps, org, "one").seats == 28
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []
    assert claim_of(deps, org, "one") is None


async def test_temporal_cancel_while_sales_decides_cancels_the_change(held, deps, mailbox):
    driver, _release, _charge_first, _charged = held
    org = unique_org("tsales")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=35)
    await wait_for_sales(handle)

    await handle.cancel()

    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert sales_case_row(deps, handle.id).status == "cancelled"
    assert subscription_row(deps, org, "one").seats == 30
    assert mailbox.messages(to=f"billing@{org}.example") == []
    assert claim_of(deps, org, "one") is None
