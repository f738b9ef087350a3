"""A backend's endpoint hears every event of a change's life (SPEC section 13), through the real
workflows (the change, its endpoint's relay) and activities, localstripe and the SMTP sink, on a
real HTTP receiver that verifies each delivery with the `standardwebhooks` package: each event
once (by webhook-id), in the order it happened, with the section 7 result or status and its tax,
and no card number; an event whose transaction was rolled back never arrives."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from subchange.domain.contracts import CancelRequest, ChangeStatus, SalesDecision
from subchange.store import outbox
from tests.helpers.documents import GOOD_CARD, SALES, SUPPORT, unique_org
from tests.helpers.driver import (
    load_suite,
    start_declined_change,
    wait_for,
    wait_for_payment,
    wait_for_sales,
)
from workflows.subscription_change import SubscriptionChange

# A second more than the relays' poll: what was to come has come.
SETTLED = 2.0


async def test_every_event_of_a_changes_life_arrives_once_in_order_verified(webhook_room):
    # Every apply waits a moment before it commits: long enough for another channel to change
    # the subscription under one of them, which then can't be applied and is refunded.
    room = await webhook_room(fault_pause_points="apply.before_commit", fault_pause_seconds=2)
    driver, receiver = room.driver, room.receiver()
    await room.add(receiver)
    orgs = {name: unique_org(f"hook-{name}") for name in
            ("completed", "rejected", "refunded", "declined", "sales")}
    for name in ("completed", "rejected", "refunded"):
        await load_suite(driver, orgs[name])
    await load_suite(driver, orgs["sales"], card=None)

    completed = await driver.start(orgs["completed"], seats=35)
    rejected = await driver.start(orgs["rejected"], seats=0)
    refunded = await driver.start(orgs["refunded"], seats=36)
    declined = await start_declined_change(driver, orgs["declined"])
    sales = await driver.start(orgs["sales"], seats=33)

    await wait_for(refunded, lambda v: v.step == "apply_change", "its apply")
    await load_suite(driver, orgs["refunded"], seats=31)  # changed under the paused apply
    await wait_for(refunded, lambda v: v.state == "awaiting_support", "a failed apply")
    await refunded.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    await wait_for_payment(declined)
    await declined.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    await wait_for_sales(sales)
    await receiver.wait_for_types(sales.id, ["change.awaiting_sales"])
    await sales.execute_update(SubscriptionChange.sales_decision,
                               SalesDecision(approved=True, by=SALES))

    results = {handle.id: await driver.result(handle)
               for handle in (completed, rejected, refunded, declined, sales)}
    expected = {
        completed.id: ["payment.succeeded", "change.completed"],
        rejected.id: ["change.rejected"],
        refunded.id: ["payment.succeeded", "change.awaiting_support", "payment.refunded",
                      "change.cancelled"],
        declined.id: ["payment.failed", "change.awaiting_payment", "change.cancelled"],
        sales.id: ["change.awaiting_sales", "change.completed"],
    }
    for workflow_id, types in expected.items():
        await receiver.wait_for_types(workflow_id, types)
    await asyncio.sleep(SETTLED)

    for workflow_id, types in expected.items():
        assert receiver.types(workflow_id) == types, workflow_id
        got = receiver.got(workflow_id)
        assert all(d.verified for d in got), [d.error for d in got]
        assert len(got) == len({d.id for d in got}) == len(types)  # each sent once
    assert all(GOOD_CARD not in d.body.decode() for d in receiver.got())

    ended = receiver.events(completed.id)[-1]
    result = results[completed.id]
    assert ended["data"] == {**result.model_dump(mode="json"), "org_id": orgs["completed"],
                             "product": "one"}
    assert ended["data"]["quote"]["tax"]["total"] == str(result.quote.total_due)
    charged = receiver.events(completed.id)[0]["data"]
    assert charged["payment"]["total"] == str(result.quote.total_due)
    assert charged["payment"]["tax"] == str(result.quote.tax.tax)
    assert charged["payment"]["charge_id"] == result.payment.charge_id
    assert (charged["workflow_id"], charged["request_id"], charged["org_id"]) == (
        completed.id, result.request_id, orgs["completed"])

    assert results[refunded.id].status is ChangeStatus.CANCELLED
    refund = receiver.events(refunded.id)[2]["data"]["refund"]
    assert refund["refund_id"] == results[refunded.id].payment.refund_id
    assert refund["amount"] == str(results[refunded.id].quote.total_due)
    parked = receiver.events(declined.id)[1]["data"]
    assert parked["step"] == "charge" and "declined" in parked["last_error"]
    assert parked["state"] == "awaiting_payment" and parked["next_attempt_at"] is not None
    assert receiver.events(declined.id)[0]["data"]["decline_code"]
    waiting = receiver.events(sales.id)[0]["data"]
    assert waiting["sales_case"].startswith("SC-") and waiting["quote"]["tax"] is not None


async def test_an_event_rolled_back_with_its_transaction_never_arrives(webhook_room):
    room = await webhook_room()
    receiver = room.receiver()
    await room.add(receiver)
    workflow_id = f"change-rolled-back-{unique_org('rb')}"

    with room.deps.sessions() as session:
        outbox.record_event(session=session, type="change.rejected", workflow_id=workflow_id,
                            data={"workflow_id": workflow_id, "attempt": "rolled back"})
        session.execute(sa.text("SELECT 1"))
        session.rollback()
    with room.deps.sessions() as session:
        outbox.record_event(session=session, type="change.rejected", workflow_id=workflow_id,
                            data={"workflow_id": workflow_id, "attempt": "committed"})
        session.commit()

    await receiver.wait_for_types(workflow_id, ["change.rejected"])
    await asyncio.sleep(SETTLED)  # the relay delivers in outbox order: nothing earlier is left
    assert [e["data"]["attempt"] for e in receiver.events(workflow_id)] == ["committed"]
