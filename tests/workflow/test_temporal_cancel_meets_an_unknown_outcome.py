"""A cancellation through Temporal (the Web UI's *Request Cancellation*, `temporal workflow
cancel`) that meets a step whose outcome the workflow does not know: a charge that may have taken
the money, an apply that may have committed. The one compensation asks before it acts, so the
money is refunded or the change is finished, never left half-settled; and every Temporal cancel
is in the audit log with the identity the server recorded.

Stand-ins wrap the real refund and apply to produce a gateway outage and an apply whose answer is
lost, moments the real parts can't be timed to; money, rows and emails are real."""

from __future__ import annotations

import asyncio
import threading

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError

from activities.dependencies import Dependencies
from activities.payments import PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import CancelRequest, ChangeStatus
from subchange.domain.step_io import (
    ApplyInput,
    ApplyOutput,
    RefundChargeInput,
    RefundChargeOutput,
)
from tests.helpers.documents import SUPPORT, THREE_D_SECURE_CARD, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    wait_for,
    wait_for_event,
    wait_parked,
)
from tests.helpers.observers import (
    audit_entries,
    claim_of,
    payment_intent,
    payment_intents_of,
    refunds_of,
    subscription_row,
    succeeded_charges,
)
from workflows.subscription_change import SubscriptionChange


class Held:
    def __init__(self) -> None:
        self.gateway_back = threading.Event()  # the refund fails until it is set
        self.release_apply = threading.Event()  # the apply waits for it, commits, then fails


@pytest.fixture
async def held(driver_with_stand_ins, deps: Dependencies) -> tuple[ChangeDriver, Held]:
    held = Held()
    payments, subscriptions = PaymentActivities(deps), SubscriptionActivities(deps)

    @activity.defn(name="refund_charge")
    def refund_while_the_gateway_is_paused(refund: RefundChargeInput) -> RefundChargeOutput:
        if not held.gateway_back.is_set():
            raise ApplicationError("the gateway is paused", type="GatewayPaused",
                                   non_retryable=True)
        return payments.refund_charge(refund)

    @activity.defn(name="apply_change")
    def apply_then_lose_the_answer(change: ApplyInput) -> ApplyOutput:
        assert held.release_apply.wait(timeout=15), "the test never released the apply"
        subscriptions.apply_change(change)
        # Non-retryable as the real server makes it: it retries no attempt of an activity
        # whose cancellation was requested (the time-skipping server would).
        raise ApplicationError("the attempt timed out while the database committed it",
                               type="AnswerLost", non_retryable=True)

    driver = await driver_with_stand_ins(refund_charge=refund_while_the_gateway_is_paused,
                                         apply_change=apply_then_lose_the_answer)
    return driver, held


async def test_a_temporal_cancel_while_a_refund_waits_still_voids_the_unknown_charge(
        held, deps, gateway, mailbox):
    """The charge needs the payer's 3-D Secure (its outcome is open: they may still authenticate
    it), support cancels, the refund meets a paused gateway and waits for support; then someone
    cancels through Temporal. The refund is run again, so the intent is voided and can't charge
    later, instead of the change ending "nothing was charged" with the intent still open."""
    driver, moments = held
    org = unique_org("tcrefund")
    await load_suite(driver, org, card=THREE_D_SECURE_CARD)
    handle = await driver.start(org, "one", f"admin@{org}.example", {"kind": "seats",
                                                                      "seats": 35})
    view = await wait_parked(handle)
    assert view.step == "charge" and "3-D Secure" in (view.last_error or "")
    support_cancel = asyncio.create_task(handle.execute_update(
        SubscriptionChange.cancel, CancelRequest(by=SUPPORT, reason="payer unreachable")))
    view = await wait_for(handle, lambda v: v.state == "awaiting_support"
                          and v.step == "refund_charge", "the refund waiting for support")
    assert "GatewayPaused" in (view.last_error or "")

    moments.gateway_back.set()
    await handle.cancel()

    result = await driver.result(handle)
    ack = await asyncio.wait_for(support_cancel, 30)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert ack.message.startswith("cancelled")
    [intent] = payment_intents_of(gateway, handle.id)
    assert payment_intent(gateway, intent.id).status == "canceled"
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []
    assert subscription_row(deps, org, "one").seats == 30
    assert mailbox.messages(to=f"billing@{org}.example") == []
    assert claim_of(deps, org, "one") is None
    [recorded] = [e for e in audit_entries(deps, workflow_id=handle.id)
                  if e.action == "temporal_cancel"]
    assert (recorded.org_id, recorded.outcome) == (org, "refund first")


@pytest.mark.parametrize("seats", [35, 28], ids=["charged-increase", "uncharged-decrease"])
async def test_a_temporal_cancel_meeting_an_apply_that_committed_finishes_the_change(
        held, deps, gateway, mailbox, time_skipping_env, seats):
    """The apply's attempt commits, but its answer is lost, and the server does not retry an
    attempt whose change is being cancelled: the database is asked, the change is finished
    (invoice sent, charge kept, claim released), never parked on a refund of an applied change
    nor reported unchanged."""
    driver, moments = held
    org = unique_org("tcapply")
    await load_suite(driver, org)
    handle = await driver.start(org, "one", f"admin@{org}.example", {"kind": "seats",
                                                                      "seats": seats})
    await wait_for(handle, lambda v: v.step == "apply_change", "the apply")

    await handle.cancel()
    await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    moments.release_apply.set()

    result = await driver.settle(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert subscription_row(deps, org, "one").seats == seats
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    for paid in succeeded_charges(gateway, subscription_row(deps, org, "one")):
        assert refunds_of(gateway, paid.payment_intent) == []
    assert claim_of(deps, org, "one") is None
    [recorded] = [e for e in audit_entries(deps, workflow_id=handle.id)
                  if e.action == "temporal_cancel"]
    assert recorded.actor == f"temporal:{time_skipping_env.client.identity}"
    assert recorded.outcome == "too late: applied"
