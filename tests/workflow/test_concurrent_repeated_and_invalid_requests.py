"""Changes that must not happen twice or over each other, and input the workflow refuses (SPEC
sections 7 and 8): a second change while one is in flight is rejected, simultaneous changes are
applied one on the state the other left, the same request started twice is one change, and
invalid input or input under another workflow id is rejected naming the problem, writing
nothing.

Everything runs through the real workflow and activities, localstripe and the SMTP server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.exceptions import WorkflowAlreadyStartedError

from subchange.domain.contracts import (
    CancelRequest,
    ChangeResult,
    ChangeStatus,
)
from tests.helpers.documents import GOOD_CARD, SUPPORT, unique_org
from tests.helpers.driver import (
    load_suite,
    request_for,
    start_declined_change,
    wait_ended,
    wait_for_payment,
)
from tests.helpers.observers import (
    assert_untouched,
    audit_entries,
    change_record,
    search_attributes,
    subscription_row,
    succeeded_charges,
)
from workflows.subscription_change import SubscriptionChange

# --- concurrent and repeated requests ----------------------------------------------------------

async def test_second_change_while_one_is_in_flight_is_rejected(driver, deps, gateway, mailbox):
    org = unique_org("busy")
    first = await start_declined_change(driver, org)
    await wait_for_payment(first)

    second = await driver.run(org, seats=40)

    assert (second.status, second.reason_code) == (ChangeStatus.REJECTED, "change_in_progress")
    assert first.id in second.reason
    await first.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    await wait_ended(first)
    assert_untouched(deps, gateway, mailbox, org)

    # Once the first change has ended, the subscription is free again.
    await load_suite(driver, org, card=GOOD_CARD)
    third = await driver.run(org, seats=40)
    assert third.status is ChangeStatus.COMPLETED, third.reason
    assert subscription_row(deps, org, "one").seats == 40


async def test_simultaneous_changes_never_apply_over_each_other(driver, deps, gateway, mailbox):
    org = unique_org("race")
    await load_suite(driver, org)
    handles = await asyncio.gather(*(driver.start(org, seats=seats) for seats in (35, 40)))

    results = [await driver.settle(handle) for handle in handles]

    completed = sorted((r for r in results if r.status is ChangeStatus.COMPLETED),
                       key=lambda r: r.quote.subscription_version)
    assert completed, [r.reason for r in results]
    for other in results:
        if other.status is not ChangeStatus.COMPLETED:
            assert other.reason_code == "change_in_progress", other.reason
    # Each applied change was priced on the state the previous one left.
    seats = 30
    for result in completed:
        assert result.quote.old_seats == seats
        seats = result.subscription.seats
    sub = subscription_row(deps, org, "one")
    assert (sub.seats, sub.version) == (seats, 1 + len(completed))
    paid = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert sorted(c.id for c in paid) == sorted(r.payment.charge_id for r in completed)
    assert len(mailbox.messages(to=f"billing@{org}.example")) == len(completed)


async def test_the_same_request_started_twice_is_one_change(driver, deps, gateway, mailbox):
    org = unique_org("twice")
    await load_suite(driver, org)
    request = request_for(org, seats=35)

    first = await driver.start_request(request)
    try:
        await driver.start_request(request)
    except WorkflowAlreadyStartedError:
        pass  # still running: the server refuses a second workflow with the id
    result = await driver.settle(first)
    # After it ended, the id may be reused; the new run returns the recorded result, and its
    # status query and search attributes say so too.
    rerun = await driver.start_request(request)
    again = await driver.settle(rerun)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert again == result
    assert (await search_attributes(rerun, ("requested", "completed")))[1] == "completed"
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert paid.id == result.payment.charge_id
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    sub = subscription_row(deps, org, "one")
    assert (sub.seats, sub.version) == (35, 2)


# --- invalid input (SPEC section 8) ------------------------------------------------------------

@pytest.mark.parametrize("field, patch, says", [
    ("change.seats", {"change": {"kind": "seats", "seats": "abc"}}, "valid integer"),
    ("product", {"product": "crm"}, "unknown product 'crm'"),
    ("requested_by", {"requested_by": "not-an-email"}, "email"),
])
async def test_invalid_input_is_rejected_naming_the_field(driver, deps, gateway, mailbox, field,
                                                          patch, says):
    org = unique_org("bad")
    await load_suite(driver, org)
    raw = {**request_for(org, seats=35).model_dump(mode="json"), **patch}
    handle = await driver.client.start_workflow(
        "SubscriptionChange", raw, id=f"change-{raw['request_id']}",
        task_queue=driver.task_queue, result_type=ChangeResult)

    result = await driver.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "invalid_request")
    assert field in result.reason and says in result.reason
    assert change_record(deps, handle.id) is None
    assert audit_entries(deps, org=org) == []
    assert_untouched(deps, gateway, mailbox, org)


@pytest.mark.parametrize("arguments, says", [
    (["x"], "input: Input should be a valid dictionary"),
    ([[]], "input: Input should be a valid dictionary"),
    ([None], "input: Input should be a valid dictionary"),
    ([], "expected one argument, the change request, got 0"),
    ([{}, {}], "expected one argument, the change request, got 2"),
], ids=["string", "list", "null", "no-argument", "two-arguments"])
async def test_malformed_input_from_any_client_ends_rejected(driver, deps, arguments, says):
    """What `temporal workflow start --input '"x"'` (or none, or two) sends: the change ends
    `invalid_request` at once instead of failing its first workflow task forever."""
    workflow_id = f"change-malformed-{uuid.uuid4().hex[:8]}"
    handle = await driver.client.start_workflow(
        "SubscriptionChange", args=arguments, id=workflow_id, task_queue=driver.task_queue,
        result_type=ChangeResult)

    with driver.env.auto_time_skipping_disabled():
        result = await asyncio.wait_for(handle.result(), timeout=30)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "invalid_request")
    assert says in (result.reason or "")
    assert change_record(deps, workflow_id) is None


async def test_input_under_another_workflow_id_is_rejected(driver, deps, gateway, mailbox):
    org = unique_org("wid")
    await load_suite(driver, org)
    request = request_for(org, seats=35)
    handle = await driver.client.start_workflow(
        "SubscriptionChange", request.model_dump(mode="json"), id=f"other-{uuid.uuid4().hex}",
        task_queue=driver.task_queue, result_type=ChangeResult)

    result = await driver.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "invalid_request")
    assert request.workflow_id in result.reason
    assert change_record(deps, handle.id) is None and audit_entries(deps, org=org) == []
    assert_untouched(deps, gateway, mailbox, org)
