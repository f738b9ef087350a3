"""A sales approval and a cancel that reach the change together: the cancel wins, and the sales
case is closed as cancelled (never left "approved" on a cancelled change), whether the workflow
takes both in one task or the approval first and the cancel before the change is applied.

Both updates are sent while no worker runs (the first one kept no sticky cache), so the next
worker gets them in one task; each then asks the staff directory, and their answers may come back
in one task or two."""

from __future__ import annotations

import asyncio

from subchange.app.wiring import build_worker
from subchange.domain.contracts import CancelRequest, ChangeStatus, SalesDecision
from tests.helpers.documents import SALES, SUPPORT, unique_org
from tests.helpers.driver import ChangeDriver, load_suite, wait_for_sales
from tests.helpers.observers import claim_of, sales_case_row, subscription_row
from workflows.subscription_change import SubscriptionChange


async def test_a_cancel_with_an_approval_closes_the_case_cancelled(
        time_skipping_env, deps, load, mailbox, task_queue):
    client = time_skipping_env.client
    driver = ChangeDriver(client, task_queue, time_skipping_env, load)
    org = unique_org("together")
    await load_suite(driver, org, card=None)
    async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True,
                            max_cached_workflows=0):
        handle = await driver.start(org, seats=35)
        await wait_for_sales(handle)

    approve = asyncio.create_task(handle.execute_update(
        SubscriptionChange.sales_decision, SalesDecision(approved=True, by=SALES)))
    await asyncio.sleep(0.3)
    cancel = asyncio.create_task(handle.execute_update(
        SubscriptionChange.cancel, CancelRequest(by=SUPPORT, reason="customer withdrew")))
    await asyncio.sleep(0.3)  # both wait at the server for a worker
    async with build_worker(client, deps, task_queue=task_queue, fail_workflows_on_bugs=True):
        await asyncio.wait_for(asyncio.gather(approve, cancel, return_exceptions=True), 30)
        result = await driver.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    case = sales_case_row(deps, handle.id)
    assert (case.status, case.decided_by) == ("cancelled", SUPPORT)
    assert subscription_row(deps, org, "one").seats == 30
    assert mailbox.messages(to=f"billing@{org}.example") == []
    assert claim_of(deps, org, "one") is None
