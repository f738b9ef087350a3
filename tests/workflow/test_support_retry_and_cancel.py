"""What support staff, sales and backends see when a change does not go straight through:
declined cards parked in awaiting_support, the `retry` / `cancel` / `sales_decision` updates,
offline payers routed to sales (R9), compensation of a charge whose change can't be applied,
concurrent and repeated requests, and invalid workflow input (SPEC sections 3, 7 and 8).

Everything runs through the real workflow and activities, localstripe and the SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from subchange.app.wiring import build_worker
from subchange.domain.contracts import (
    CancelRequest,
    ChangeResult,
    ChangeStatus,
    RetryRequest,
    SalesDecision,
)
from tests.helpers.documents import GOOD_CARD, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    refused,
    request_for,
    start_declined_change,
    wait_ended,
    wait_for,
    wait_for_sales,
    wait_parked,
)
from tests.helpers.observers import (
    assert_untouched,
    audit_entries,
    change_record,
    charges,
    mail_text,
    refunds_of,
    sales_case_row,
    search_attributes,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import time_skipping_server
from workflows.subscription_change import SubscriptionChange

SALES = "sales@vendor.example"
SUPPORT = "support@vendor.example"


@pytest.fixture
def changes(ts_client, ts_worker, time_skipping_env, load) -> ChangeDriver:
    return ChangeDriver(ts_client, ts_worker.task_queue, time_skipping_env, load)


def failed_charge_attempts(view) -> int:
    return sum(1 for step in view.history if step.step == "charge" and step.outcome == "failed")


# --- declined card: awaiting_support, cancel and retry -----------------------------------------

async def test_declined_card_parks_for_support_and_cancel_changes_nothing(changes, deps, gateway,
                                                                          mailbox):
    org = unique_org("decl")
    handle = await start_declined_change(changes, org)

    view = await wait_parked(handle)
    assert view.step == "charge" and "declined" in view.last_error
    assert "support" in view.waiting_for
    expected = ("awaiting_support", "running")
    assert await search_attributes(handle, expected) == expected
    assert [c.status for c in charges(gateway, subscription_row(deps, org, "one"))] == ["failed"]
    assert "no sales decision is awaited" in await refused(
        handle, "sales_decision", SalesDecision(approved=True, by=SALES))

    ack = await handle.execute_update(SubscriptionChange.cancel,
                                      CancelRequest(by=SUPPORT, reason="card expired"))

    assert "nothing was charged" in ack.message
    result = await changes.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert SUPPORT in result.reason and "card expired" in result.reason
    assert result.subscription is None and result.invoice is None
    assert_untouched(deps, gateway, mailbox, org)
    expected = ("cancelled", "cancelled")
    assert await search_attributes(handle, expected) == expected


async def test_retry_after_the_card_is_replaced_charges_once(changes, deps, gateway, mailbox):
    org = unique_org("retry")
    handle = await start_declined_change(changes, org)
    await wait_parked(handle)

    # A retry with the same card parks the change again, with the decline as the last error.
    ack = await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    assert "charge" in ack.message
    view = await wait_for(handle, lambda v: v.state == "awaiting_support"
                          and failed_charge_attempts(v) == 2, "a second decline")
    assert "declined" in view.last_error
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []

    await load_suite(changes, org, card=GOOD_CARD)  # the customer updated the card on file
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    result = await changes.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert paid.id == result.payment.charge_id and paid.amount == int(result.quote.amount_due)
    assert result.subscription.seats == subscription_row(deps, org, "one").seats == 35
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1


async def test_charged_change_that_cannot_be_applied_is_refunded_on_cancel(changes, deps, gateway,
                                                                           mailbox):
    """Compensation: the card is charged, then applying fails for good because the
    subscription was changed elsewhere meanwhile; cancelling refunds the charge."""
    org = unique_org("comp")
    handle = await start_declined_change(changes, org)
    await wait_parked(handle)
    # While the change waits, the card is replaced and the seats are changed by another channel.
    await load_suite(changes, org, seats=31, card=GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    view = await wait_for(handle, lambda v: v.state == "awaiting_support"
                          and v.step == "apply_change", "a failed apply")
    assert "StaleSubscription" in view.last_error
    # The money moved before apply failed.
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))

    ack = await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))

    assert "refunded" in ack.message
    result = await changes.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert result.payment.charge_id == paid.id and result.payment.refund_id
    [refund] = refunds_of(gateway, result.payment.intent_id)
    assert refund.id == result.payment.refund_id
    assert (refund.amount, refund.status) == (paid.amount, "succeeded")
    sub = subscription_row(deps, org, "one")
    assert (sub.seats, sub.version) == (31, 2)  # what the other channel set, nothing more
    assert mailbox.messages(to=f"billing@{org}.example") == []
    expected = ("compensated", "cancelled")
    assert await search_attributes(handle, expected) == expected


# --- offline payers: routed to sales (R9) ------------------------------------------------------

async def test_offline_increase_approved_by_sales_completes(changes, deps, mailbox):
    org = unique_org("sales-ok")
    await load_suite(changes, org, card=None)
    handle = await changes.start(org, "one", f"admin@{org}.example",
                                 {"kind": "seats", "seats": 35})

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
    result = await changes.result(handle)
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert (result.payment.method, result.payment.sales_case) == ("offline", case_id)
    assert result.payment.approved_by == SALES and result.payment.charge_id is None
    assert result.subscription.seats == subscription_row(deps, org, "one").seats == 35
    decided = sales_case_row(deps, handle.id)
    assert (decided.status, decided.decided_by, decided.note) == (
        "approved", SALES, "PO 4711 received")
    [mail] = mailbox.messages(to=f"billing@{org}.example")
    assert "Bank transfer" in mail_text(mail) and case_id in mail_text(mail)
    assert result.invoice.amount == result.quote.amount_due > 0


async def test_offline_reduction_rejected_by_sales_changes_nothing(changes, deps, gateway, mailbox):
    org = unique_org("sales-no")
    await load_suite(changes, org, card=None)
    handle = await changes.start(org, "one", f"admin@{org}.example",
                                 {"kind": "seats", "seats": 25})
    await wait_for_sales(handle)

    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=False, by=SALES, note="contract floor"))

    result = await changes.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "sales_rejected")
    assert SALES in result.reason and "contract floor" in result.reason
    assert_untouched(deps, gateway, mailbox, org)
    assert sales_case_row(deps, handle.id).status == "rejected"


async def test_cancel_while_awaiting_sales_closes_the_case(changes, deps, gateway, mailbox):
    org = unique_org("sales-cancel")
    await load_suite(changes, org, card=None)
    handle = await changes.start(org, "one", f"admin@{org}.example",
                                 {"kind": "seats", "seats": 40})
    await wait_for_sales(handle)

    ack = await handle.execute_update(SubscriptionChange.cancel,
                                      CancelRequest(by=f"admin@{org}.example"))

    assert "nothing was charged" in ack.message
    result = await changes.result(handle)
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
        changes = ChangeDriver(env.client, worker.task_queue, env, load)
        org = unique_org("sales-late")
        await load_suite(changes, org, card=None)
        handle = await changes.start(org, "one", f"admin@{org}.example",
                                     {"kind": "seats", "seats": 33})
        await wait_for_sales(handle)

        await env.sleep(deps.settings.sales_decision_timeout + timedelta(days=1))

        view = await wait_ended(handle)
        result = await changes.result(handle)
    assert view.result == result
    assert (result.status, result.reason_code) == (ChangeStatus.EXPIRED,
                                                   "sales_decision_timeout")
    assert sales_case_row(deps, handle.id).status == "expired"
    assert_untouched(deps, gateway, mailbox, org)


# --- concurrent and repeated requests ----------------------------------------------------------

async def test_second_change_while_one_is_in_flight_is_rejected(changes, deps, gateway, mailbox):
    org = unique_org("busy")
    first = await start_declined_change(changes, org)
    await wait_parked(first)

    second = await changes.run(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 40})

    assert (second.status, second.reason_code) == (ChangeStatus.REJECTED, "change_in_progress")
    assert first.id in second.reason
    await first.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    await wait_ended(first)
    assert_untouched(deps, gateway, mailbox, org)

    # Once the first change has ended, the subscription is free again.
    await load_suite(changes, org, card=GOOD_CARD)
    third = await changes.run(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 40})
    assert third.status is ChangeStatus.COMPLETED, third.reason
    assert subscription_row(deps, org, "one").seats == 40


async def test_simultaneous_changes_never_apply_over_each_other(changes, deps, gateway, mailbox):
    org = unique_org("race")
    await load_suite(changes, org)
    handles = await asyncio.gather(*(
        changes.start(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": seats})
        for seats in (35, 40)))

    results = [await changes.settle(handle) for handle in handles]

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


async def test_the_same_request_started_twice_is_one_change(changes, deps, gateway, mailbox):
    org = unique_org("twice")
    await load_suite(changes, org)
    request = request_for(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 35})

    first = await changes.start_request(request)
    try:
        await changes.start_request(request)
    except WorkflowAlreadyStartedError:
        pass  # still running: the server refuses a second workflow with the id
    result = await changes.settle(first)
    # After it ended, the id may be reused; the new run returns the recorded result, and its
    # status query and search attributes say so too.
    rerun = await changes.start_request(request)
    again = await changes.settle(rerun)

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
async def test_invalid_input_is_rejected_naming_the_field(changes, deps, gateway, mailbox, field,
                                                          patch, says):
    org = unique_org("bad")
    await load_suite(changes, org)
    raw = {**request_for(org, "one", f"admin@{org}.example",
                         {"kind": "seats", "seats": 35}).model_dump(mode="json"), **patch}
    handle = await changes.client.start_workflow(
        "SubscriptionChange", raw, id=f"change-{raw['request_id']}",
        task_queue=changes.task_queue, result_type=ChangeResult)

    result = await changes.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "invalid_request")
    assert field in result.reason and says in result.reason
    assert change_record(deps, handle.id) is None
    assert audit_entries(deps, org=org) == []
    assert_untouched(deps, gateway, mailbox, org)


async def test_input_under_another_workflow_id_is_rejected(changes, deps, gateway, mailbox):
    org = unique_org("wid")
    await load_suite(changes, org)
    request = request_for(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 35})
    handle = await changes.client.start_workflow(
        "SubscriptionChange", request.model_dump(mode="json"), id=f"other-{uuid.uuid4().hex}",
        task_queue=changes.task_queue, result_type=ChangeResult)

    result = await changes.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "invalid_request")
    assert request.workflow_id in result.reason
    assert change_record(deps, handle.id) is None and audit_entries(deps, org=org) == []
    assert_untouched(deps, gateway, mailbox, org)


async def test_a_cancellation_through_temporal_releases_the_subscription(changes, deps, gateway,
                                                                        mailbox):
    """The Web UI's "Request cancellation" ends the change like the cancel update: the
    subscription is free for the next change and nothing was charged."""
    org = unique_org("tcancel")
    handle = await start_declined_change(changes, org)
    await wait_parked(handle)

    await handle.cancel()

    result = await changes.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert "through Temporal" in result.reason
    assert_untouched(deps, gateway, mailbox, org)
    await load_suite(changes, org, card=GOOD_CARD)
    after = await changes.run(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 33})
    assert after.status is ChangeStatus.COMPLETED, after.reason
