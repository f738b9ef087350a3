"""A cancellation through Temporal (the Web UI's *Request Cancellation*, `temporal workflow
cancel`) that meets a step whose outcome the workflow does not know: a charge that may have taken
the money, an apply that may have committed. The one compensation asks before it acts, so the
money is refunded or the change is finished, never left half-settled; and every Temporal cancel
is in the audit log with the identity the server recorded.

Stand-ins wrap the real refund and apply to produce a gateway outage and an apply whose answer is
lost, moments the real parts can't be timed to; money, rows and emails are real."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.dependencies import Dependencies
from activities.payments import PaymentActivities
from activities.registry import all_activities
from activities.sales import SalesActivities
from activities.subscriptions import SubscriptionActivities
from subchange.adapters.workflows import ChangeWorkflows
from subchange.app.wiring import workflow_runner
from subchange.domain.contracts import CancelRequest, ChangeStatus, PaymentRecord
from subchange.domain.step_io import (
    ApplyInput,
    ApplyOutput,
    ChargeInput,
    RefundChargeInput,
    RefundChargeOutput,
    SalesCaseInput,
    SalesCaseOutput,
)
from tests.helpers.documents import SUPPORT, THREE_D_SECURE_CARD, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    wait_for,
    wait_for_event,
    wait_for_payment,
)
from tests.helpers.observers import (
    audit_entries,
    claim_of,
    is_payment_notice,
    payment_intent,
    payment_intents_of,
    refunds_of,
    sales_case_row,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import dev_server
from workflows.steps import STEPS
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
    view = await wait_for_payment(handle)  # a hard decline: it waits for a new card
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
    assert all(is_payment_notice(m) for m in mailbox.messages(to=f"billing@{org}.example"))
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


@pytest.fixture(scope="module")
async def real_server() -> AsyncIterator[WorkflowEnvironment]:
    """The dev server: the time-skipping one refuses the cancel of an activity that completed in
    the same workflow task (ACTIVITY_UNKNOWN), a race of the test server that the real resolves."""
    async with dev_server() as env:
        yield env


@pytest.mark.parametrize("step", ["charge", "open_sales_case"])
async def test_a_temporal_cancel_arriving_with_a_steps_end_undoes_what_the_step_did(
        real_server, deps, load, gateway, mailbox, task_queue, step):
    """The cancel and a step's end reach the workflow in one workflow task, as they do when its
    worker lags behind (here it is down while both happen). The SDK then raises the cancel and
    keeps the step's outcome from the workflow: what the step may have done is undone anyway.
    A 3-D Secure charge (the intent waits for the payer) is voided, never left open; an
    offline payer's sales case is closed as cancelled, never left open for sales."""
    client = real_server.client
    deps = dataclasses.replace(deps, workflows=ChangeWorkflows(client,
                                                               asyncio.get_running_loop()))
    payments, sales, release = PaymentActivities(deps), SalesActivities(deps), threading.Event()

    @activity.defn(name="charge", no_thread_cancel_exception=True)
    def charge_once_released(charge: ChargeInput) -> PaymentRecord:
        assert release.wait(timeout=15), "the test never released the charge"
        return payments.charge(charge)

    @activity.defn(name="open_sales_case")
    def open_case_once_released(case: SalesCaseInput) -> SalesCaseOutput:
        assert release.wait(timeout=15), "the test never released the sales case"
        return sales.open_sales_case(case)

    held = {"charge": charge_once_released, "open_sales_case": open_case_once_released}[step]
    # Local steps run in the workflow's worker; the others in a worker of activities only.
    local = {s.name for s in STEPS if s.local}
    named = {activity._Definition.must_from_callable(a).name: a for a in all_activities(deps)}
    in_workflow_worker = [a for name, a in named.items() if name in local]
    real = [a for name, a in named.items() if name not in local and name != step]

    def workflow_worker() -> Worker:
        return Worker(client, task_queue=task_queue, workflows=[SubscriptionChange],
                      workflow_runner=workflow_runner(client.data_converter,
                                                      context_shortcut=True),
                      activities=in_workflow_worker, no_remote_activities=True,
                      activity_executor=ThreadPoolExecutor(max_workers=4),
                      workflow_failure_exception_types=[Exception], max_cached_workflows=0)

    driver = ChangeDriver(client, task_queue, real_server, load)
    org = unique_org("tcsame")
    await load_suite(driver, org, card=THREE_D_SECURE_CARD if step == "charge" else None)
    async with Worker(client, task_queue=task_queue, activities=[*real, held],
                      activity_executor=ThreadPoolExecutor(max_workers=8)):
        async with workflow_worker():
            handle = await driver.start(org, seats=35)
            await wait_for(handle, lambda v: v.step == step, step)
        # The workflow's worker is down: the cancel and the step's end queue up for it.
        await handle.cancel()
        release.set()
        await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                             if step == "charge" else
                             EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        async with workflow_worker():
            result = await driver.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    if step == "charge":
        [intent] = payment_intents_of(gateway, handle.id)
        assert payment_intent(gateway, intent.id).status == "canceled"
    else:
        assert sales_case_row(deps, handle.id).status == "cancelled"
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []
    assert subscription_row(deps, org, "one").seats == 30
    assert claim_of(deps, org, "one") is None
