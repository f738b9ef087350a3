"""A cancel that arrives before the change is registered (in the workflow's first task, or while
`open_change` is parked because the database is down) cancels the change like any other early
cancel: the update returns, the change ends `cancelled`, nothing is claimed, charged or sent.

The parked case uses a stand-in that wraps the real `open_change` and fails it once for good, a
failure the real database can't be made to produce on demand."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.admission import AdmissionActivities
from subchange.app.wiring import build_worker
from subchange.domain.contracts import CancelRequest, ChangeRequest, ChangeResult, ChangeStatus
from subchange.domain.step_io import OpenChangeOutput
from tests.helpers.documents import SUPPORT, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    request_for,
    start_change,
    wait_parked,
)
from tests.helpers.observers import assert_untouched, audit_entries, change_record, claim_of
from workflows.subscription_change import SubscriptionChange


async def test_cancel_while_open_change_is_parked_cancels_the_change(
        driver_with_stand_ins, deps, gateway, mailbox):
    real, calls = AdmissionActivities(deps), []

    @activity.defn(name="open_change")
    def open_change_failing_once(request: ChangeRequest) -> OpenChangeOutput:
        calls.append(request)
        if len(calls) == 1:
            raise ApplicationError("database unreachable", type="DatabaseGone",
                                   non_retryable=True)
        return real.open_change(request)

    driver = await driver_with_stand_ins(open_change=open_change_failing_once)
    org = unique_org("unopened")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    view = await wait_parked(handle)
    assert view.step == "open_change" and "DatabaseGone" in (view.last_error or "")

    ack = await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))

    assert ack.message == "cancelled; nothing was charged or changed"
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert claim_of(deps, org, "one") is None
    assert_untouched(deps, gateway, mailbox, org)


@pytest.mark.parametrize("sender", ["support", "requester"])
async def test_cancel_in_the_first_workflow_task_cancels_the_change(
        time_skipping_env, deps, load, gateway, mailbox, task_queue, sender):
    """The update is sent before any worker polls, so it arrives with the start itself, before
    `run` has started (as whenever the worker lags behind the start: a backlog, a restart). The
    request is read before any handler runs, so the requester's own cancel is known as theirs
    (a requester needs no staff directory to cancel their change) and is not refused."""
    client = time_skipping_env.client
    driver = ChangeDriver(client, task_queue, time_skipping_env, load)
    org = unique_org("first")
    await load_suite(driver, org)
    request = request_for(org, seats=35)
    by = SUPPORT if sender == "support" else request.requested_by
    handle = await start_change(client, task_queue, request)
    cancel = asyncio.create_task(
        handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=by)))
    await asyncio.sleep(0.5)  # the update is with the server before a worker asks for a task

    async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True):
        ack = await asyncio.wait_for(cancel, timeout=30)
        result = await driver.result(handle)

    assert ack.message == "cancelled; nothing was charged or changed"
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert result.reason == f"cancelled by {by}"
    assert [e for e in audit_entries(deps, workflow_id=handle.id) if e.outcome == "denied"] == []
    assert claim_of(deps, org, "one") is None
    assert change_record(deps, handle.id) is None or change_record(deps, handle.id).result
    assert_untouched(deps, gateway, mailbox, org)


@pytest.mark.parametrize("repeat", [False, True], ids=["invalid-input", "repeated-request"])
async def test_a_cancel_arriving_with_a_start_that_ends_at_once_is_answered(
        time_skipping_env, deps, load, task_queue, repeat):
    """A change that ends before it opens (its input is invalid, or its request already ended
    in an earlier run) answers a cancel that came with its start: refused, the change had
    ended, never left without an answer."""
    client = time_skipping_env.client
    driver = ChangeDriver(client, task_queue, time_skipping_env, load)
    org = unique_org("firstend")
    await load_suite(driver, org)
    request = request_for(org, seats=33)
    if repeat:
        async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True):
            await driver.settle(await start_change(client, task_queue, request))
        handle = await start_change(client, task_queue, request)
    else:
        handle = await client.start_workflow("SubscriptionChange", "x", id=request.workflow_id,
                                             task_queue=task_queue, result_type=ChangeResult)
    cancel = asyncio.create_task(
        handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT)))
    await asyncio.sleep(0.5)  # the update is with the server before a worker asks for a task

    async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True):
        outcome = (await asyncio.wait_for(asyncio.gather(cancel, return_exceptions=True),
                                          timeout=30))[0]
        result = await driver.result(handle)

    assert isinstance(outcome, WorkflowUpdateFailedError), outcome
    assert "can't cancel" in str(outcome.cause)
    expected = ChangeStatus.COMPLETED if repeat else ChangeStatus.REJECTED
    assert result.status is expected
