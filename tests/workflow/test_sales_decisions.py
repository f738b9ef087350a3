"""Offline payers are routed to sales (R9): the change waits in awaiting_sales for the
`sales_decision` update; approved, it completes and is invoiced for bank transfer; rejected or
cancelled, nothing changes; undecided, it expires after the timeout (two weeks skipped on a
clock of its own).

Everything runs through the real workflow and activities, localstripe and the SMTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.principals import PrincipalActivities
from activities.sales import SalesActivities
from subchange.app.wiring import build_worker
from subchange.domain.contracts import (
    CancelRequest,
    ChangeStatus,
    RetryRequest,
    SalesDecision,
)
from subchange.domain.step_io import CloseSalesCaseInput, PrincipalCheck, PrincipalVerdict
from tests.helpers.documents import SALES, SUPPORT, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    refused,
    wait_ended,
    wait_for_sales,
)
from tests.helpers.observers import (
    assert_untouched,
    mail_text,
    sales_case_row,
    search_attributes,
    subscription_row,
)
from tests.helpers.services import time_skipping_server
from workflows.subscription_change import SubscriptionChange


async def test_offline_increase_approved_by_sales_completes(driver, deps, mailbox):
    org = unique_org("sales-ok")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=35)

    view = await wait_for_sales(handle)
    case = sales_case_row(deps, handle.id)
    assert case is not None and case.status == "open"
    case_id = f"SC-{case.id:06d}"
    assert case_id in view.waiting_for
    expected = ("awaiting_sales", "running")
    assert await search_attributes(handle, expected) == expected
    assert "nothing to retry" in await refused(handle, "retry", RetryRequest(by=SUPPORT))

    ack = await handle.execute_update(
        SubscriptionChange.sales_decision,
        SalesDecision(approved=True, by=SALES, note="PO 4711 received"))

    assert case_id in ack.message and "approved" in ack.message
    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert (result.payment.method, result.payment.sales_case) == ("offline", case_id)
    assert result.payment.approved_by == SALES and result.payment.charge_id is None
    assert result.subscription.seats == subscription_row(deps, org, "one").seats == 35
    decided = sales_case_row(deps, handle.id)
    assert (decided.status, decided.decided_by, decided.note) == (
        "approved", SALES, "PO 4711 received")
    [mail] = mailbox.messages(to=f"billing@{org}.example")
    assert "Bank transfer" in mail_text(mail) and case_id in mail_text(mail)
    assert result.invoice.amount == result.quote.total_due > 0


async def test_offline_reduction_rejected_by_sales_changes_nothing(driver, deps, gateway, mailbox):
    org = unique_org("sales-no")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=25)
    await wait_for_sales(handle)

    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=False, by=SALES, note="contract floor"))

    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "sales_rejected")
    assert SALES in result.reason and "contract floor" in result.reason
    assert_untouched(deps, gateway, mailbox, org)
    assert sales_case_row(deps, handle.id).status == "rejected"


async def test_cancel_while_awaiting_sales_closes_the_case(driver, deps, gateway, mailbox):
    org = unique_org("sales-cancel")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=40)
    await wait_for_sales(handle)

    ack = await handle.execute_update(SubscriptionChange.cancel,
                                      CancelRequest(by=f"admin@{org}.example"))

    assert "nothing was charged" in ack.message
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert sales_case_row(deps, handle.id).status == "cancelled"
    assert_untouched(deps, gateway, mailbox, org)


@pytest.fixture
async def own_clock() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own, so skipping two weeks here moves no other test's
    clock (the session server's billing periods would close)."""
    async with time_skipping_server() as env:
        yield env


async def test_sales_decision_expires_after_the_timeout(own_clock, deps, gateway, load, mailbox):
    env = own_clock
    async with build_worker(env.client, deps, task_queue=f"tq-{uuid.uuid4().hex[:10]}",
                            fail_workflows_on_bugs=True) as worker:
        driver = ChangeDriver(env.client, worker.task_queue, env, load)
        org = unique_org("sales-late")
        await load_suite(driver, org, card=None)
        handle = await driver.start(org, seats=33)
        await wait_for_sales(handle)

        await env.sleep(deps.settings.sales_decision_timeout + timedelta(days=1))

        view = await wait_ended(handle)
        result = await driver.result(handle)
    assert view.result == result
    assert (result.status, result.reason_code) == (ChangeStatus.EXPIRED,
                                                   "sales_decision_timeout")
    assert sales_case_row(deps, handle.id).status == "expired"
    assert_untouched(deps, gateway, mailbox, org)


async def test_a_decision_still_being_checked_when_the_deadline_passes_is_refused(
        driver_with_stand_ins, deps):
    """Sales sent an approval just before the deadline; while the staff directory was asked who
    they are, the deadline passed and the change began to expire. Sales must be told their
    approval came too late, not that the change is approved."""
    quick = dataclasses.replace(deps, settings=deps.settings.model_copy(
        update={"sales_decision_timeout": timedelta(seconds=6)}))
    asked, answer, closing, close = (asyncio.Event() for _ in range(4))
    directory, cases = PrincipalActivities(quick), SalesActivities(quick)

    @activity.defn(name="authorize_principal")
    async def slow_directory(check: PrincipalCheck) -> PrincipalVerdict:
        asked.set()
        await answer.wait()
        return await asyncio.to_thread(directory.authorize_principal, check)

    @activity.defn(name="close_sales_case")
    async def held_close(closed: CloseSalesCaseInput) -> None:
        closing.set()
        await close.wait()
        await asyncio.to_thread(cases.close_sales_case, closed)

    driver = await driver_with_stand_ins(deps=quick, authorize_principal=slow_directory,
                                         close_sales_case=held_close)
    org = unique_org("sales-edge")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=33)
    await wait_for_sales(handle)
    approval = asyncio.create_task(handle.execute_update(
        SubscriptionChange.sales_decision, SalesDecision(approved=True, by=SALES)))
    await asyncio.wait_for(asked.wait(), 10)
    await asyncio.wait_for(closing.wait(), 30)  # the deadline passed: the case is closing

    answer.set()
    with pytest.raises(WorkflowUpdateFailedError) as refused_approval:
        await asyncio.wait_for(approval, 30)
    close.set()
    result = await driver.result(handle)
    assert "deadline has passed" in str(refused_approval.value.cause)
    assert result.status is ChangeStatus.EXPIRED
    assert sales_case_row(deps, handle.id).status == "expired"
