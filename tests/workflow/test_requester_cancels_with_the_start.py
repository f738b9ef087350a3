"""The requester cancels their own change at once: the update reaches the workflow in its first
task, before `run` has started, as it does whenever the worker lags behind the start (a backlog,
a restart). The workflow reads its request before any handler runs, so the requester is known as
such (a requester may cancel their own change without the staff directory) and the change is
cancelled before it claims or charges anything."""

from __future__ import annotations

import asyncio

from subchange.app.wiring import build_worker
from subchange.domain.contracts import CancelRequest, ChangeStatus
from tests.helpers.documents import unique_org
from tests.helpers.driver import ChangeDriver, load_suite, request_for, start_change
from tests.helpers.observers import assert_untouched, audit_entries, claim_of
from workflows.subscription_change import SubscriptionChange


async def test_the_requesters_cancel_in_the_first_workflow_task_cancels_the_change(
        time_skipping_env, deps, load, gateway, mailbox, task_queue):
    client = time_skipping_env.client
    changes = ChangeDriver(client, task_queue, time_skipping_env, load)
    org = unique_org("ownfirst")
    await load_suite(changes, org)
    requester = f"admin@{org}.example"
    request = request_for(org, "one", requester, {"kind": "seats", "seats": 35})
    handle = await start_change(client, task_queue, request)
    cancel = asyncio.create_task(handle.execute_update(
        SubscriptionChange.cancel, CancelRequest(by=requester, reason="wrong number")))
    await asyncio.sleep(0.5)  # the update is with the server before a worker asks for a task

    async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True):
        ack = await asyncio.wait_for(cancel, timeout=30)
        result = await changes.result(handle)

    assert ack.message == "cancelled; nothing was charged or changed"
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert result.reason == f"cancelled by {requester}: wrong number"
    assert claim_of(deps, org, "one") is None
    assert_untouched(deps, gateway, mailbox, org)
    assert [e for e in audit_entries(deps, workflow_id=handle.id) if e.outcome == "denied"] == []
