"""How events reach an endpoint (SPEC section 13), on real receivers that verify each delivery
with the `standardwebhooks` package: retried while the receiver is down or failing, with the
same webhook-id and a fresh timestamp, until it answers; Retry-After honoured on 429 and 503;
410 disables the endpoint; a schedule run out marks the endpoint failing, lists the event as
failed, and a replay delivers it; a rotated secret signs beside the new one for its overlap; and
a slow endpoint holds up neither a change nor another endpoint. The relay's retries run on
schedules of seconds here (WEBHOOK_RETRY_SCHEDULE)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from standardwebhooks import Webhook, WebhookVerificationError

from subchange.adapters.webhook_sender import signature
from subchange.app.relays import noting_wakes, wake_relays
from subchange.domain.contracts import ChangeStatus
from subchange.store import webhooks
from subchange.store.tables import WebhookDelivery
from tests.helpers.documents import unique_org
from tests.helpers.driver import load_suite
from tests.helpers.webhooks import Answer

SECONDS = timedelta(seconds=1)


async def rejected_change(room) -> str:
    """A change rejected at once (no seats): one event, change.rejected."""
    org = unique_org("hook-rej")
    await load_suite(room.driver, org)
    handle = await room.driver.start(org, seats=0)
    assert (await room.driver.settle(handle)).status is ChangeStatus.REJECTED
    return handle.id


def event_id_of(receiver, workflow_id: str) -> str:
    return receiver.got(workflow_id)[0].id


async def test_a_receiver_down_for_a_while_then_back_loses_nothing(webhook_room):
    room = await webhook_room(webhook_retry_schedule=(SECONDS,) * 30)
    receiver = room.receiver()
    endpoint = await room.add(receiver)
    receiver.stop()
    org = unique_org("hook-down")
    await load_suite(room.driver, org)
    result = await room.driver.run(org, seats=34)
    assert result.status is ChangeStatus.COMPLETED

    async def tried_again() -> None:  # the first event failed twice: nobody answered
        while True:
            with room.deps.sessions() as session:
                failing = [d for d in session.exec(select(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id == endpoint)) if d.attempts >= 2]
            if failing:
                return failing[0]
            await asyncio.sleep(0.1)

    waiting = await asyncio.wait_for(tried_again(), 30)
    assert waiting.status == "pending" and "Connect" in waiting.last_error
    receiver.start()

    await receiver.wait_for_types(result.workflow_id, ["payment.succeeded", "change.completed"])
    assert receiver.types(result.workflow_id) == ["payment.succeeded", "change.completed"]
    assert all(d.verified for d in receiver.got(result.workflow_id))
    await receiver.wait_for(
        lambda: room.delivery(endpoint, waiting.event_id).status == "delivered",
        "the first event recorded as delivered")


async def test_each_attempt_has_the_same_id_and_a_fresh_timestamp_and_tampering_fails(
        webhook_room):
    room = await webhook_room()
    receiver = room.receiver()
    await room.add(receiver)
    receiver.answer = lambda number: Answer(500 if number <= 2 else 204)
    workflow_id = await rejected_change(room)
    await receiver.wait_for_types(workflow_id, ["change.rejected"])

    attempts = receiver.got(workflow_id)
    assert [d.answered for d in attempts] == [500, 500, 204]
    assert len({d.id for d in attempts}) == 1 and attempts[0].id.startswith("evt_")
    stamps = [int(d.headers["webhook-timestamp"]) for d in attempts]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]  # a second apart, each fresh
    assert all(d.verified for d in attempts)

    delivered = attempts[-1]
    secret = receiver.secrets[0]
    Webhook(secret).verify(delivered.body, delivered.headers)
    tampered = delivered.body.replace(b'"rejected"', b'"completed"')
    assert tampered != delivered.body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(tampered, delivered.headers)
    # The same request captured and sent again six minutes later: its signature holds, its
    # timestamp is too old.
    then = datetime.now(UTC) - timedelta(minutes=6)
    replayed = {**delivered.headers, "webhook-timestamp": str(int(then.timestamp())),
                "webhook-signature": signature([secret], event_id=delivered.id, timestamp=then,
                                               body=delivered.body)}
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(delivered.body, replayed)


async def test_retry_after_is_honoured_on_429_and_503(webhook_room):
    room = await webhook_room()  # the schedule's waits are a second
    receiver = room.receiver()
    await room.add(receiver)
    answers = {1: Answer(429, {"Retry-After": "3"}), 2: Answer(503, {"Retry-After": "2"})}
    receiver.answer = lambda number: answers.get(number, Answer(204))
    workflow_id = await rejected_change(room)
    await receiver.wait_for_types(workflow_id, ["change.rejected"])

    first, second, third = receiver.got(workflow_id)
    assert second.received_at - first.received_at >= 2.9
    assert third.received_at - second.received_at >= 1.9


async def test_an_endpoint_answering_410_is_disabled_and_sent_nothing_more(webhook_room):
    room = await webhook_room()
    gone, other = room.receiver(), room.receiver()
    endpoint = await room.add(gone)
    await room.add(other)
    gone.answer = Answer(410)
    first = await rejected_change(room)
    await gone.wait_for(lambda: len(gone.got(first)) == 1, "the first event")

    assert (await room.relay_outcome(endpoint)).ended == "disabled"
    assert room.endpoint(endpoint).status == "disabled"
    second = await rejected_change(room)
    await other.wait_for_types(second, ["change.rejected"])
    assert other.types(first) == ["change.rejected"]
    assert len(gone.got()) == 1  # nothing after the 410
    with room.deps.sessions() as session:
        failed = [f for f in webhooks.failed_events(session=session)
                  if f.endpoint_id == endpoint]
        assert [(f.workflow_id, f.last_status_code) for f in failed] == [(first, 410)]
        assert webhooks.replay_event(session=session, event_id=failed[0].event_id) is False

    # The receiver is back: support enables the endpoint (`subchange webhook enable`), which
    # starts its relay again, and replays what it missed.
    gone.answer = Answer(204)
    sessions, woken = noting_wakes(room.deps.sessions)
    with sessions() as session:
        enabled = webhooks.enable_endpoint(session=session, endpoint_id=endpoint)
        assert enabled is not None and enabled.status == "active"
        session.commit()
    assert woken == {endpoint}
    assert await wake_relays(room.driver.client, woken, task_queue=room.driver.task_queue) == []
    third = await rejected_change(room)
    await gone.wait_for_types(third, ["change.rejected"])
    with room.deps.sessions() as session:
        assert webhooks.replay_event(session=session, event_id=failed[0].event_id) is True
        session.commit()
    await gone.wait_for(lambda: [d.answered for d in gone.got(first)] == [410, 204],
                        "the missed event, replayed")
    assert gone.types(second) == []  # written while it was disabled: never owed to it


async def test_a_schedule_run_out_marks_the_endpoint_failing_and_a_replay_delivers(
        webhook_room):
    room = await webhook_room(webhook_retry_schedule=(SECONDS, SECONDS))
    receiver = room.receiver()
    endpoint = await room.add(receiver)
    receiver.answer = Answer(500)
    lost = await rejected_change(room)

    async def failed():
        while True:
            with room.deps.sessions() as session:
                mine = [f for f in webhooks.failed_events(session=session)
                        if f.endpoint_id == endpoint]
            if mine:
                return mine[0]
            await asyncio.sleep(0.1)

    failure = await asyncio.wait_for(failed(), 30)
    event_id = failure.event_id
    assert (failure.workflow_id, failure.type) == (lost, "change.rejected")
    assert (failure.attempts, failure.last_status_code) == (3, 500)
    assert "HTTP 500" in failure.last_error
    assert room.endpoint(endpoint).status == "failing"
    assert [d.answered for d in receiver.got(lost)] == [500, 500, 500]

    receiver.answer = Answer(204)  # the receiver is fixed: the next event goes through
    later = await rejected_change(room)
    await receiver.wait_for_types(later, ["change.rejected"])
    assert room.endpoint(endpoint).status == "active"
    assert receiver.types(lost) == []

    with room.deps.sessions() as session:
        assert webhooks.replay_event(session=session, event_id=event_id) is True
        session.commit()
    await receiver.wait_for_types(lost, ["change.rejected"])
    assert receiver.events(lost)[0]["id"] == event_id == receiver.got(lost)[0].id
    await receiver.wait_for(lambda: room.delivery(endpoint, event_id).status == "delivered",
                            "the replay recorded as delivered")
    with room.deps.sessions() as session:
        assert event_id not in {f.event_id for f in webhooks.failed_events(session=session)}


async def test_a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends(webhook_room):
    room = await webhook_room()
    old_side, new_side = room.receiver(), room.receiver()
    endpoint = await room.add(old_side)
    with room.deps.sessions() as session:
        new_secret = webhooks.rotate_secret(session=session, endpoint_id=endpoint,
                                            overlap=timedelta(seconds=3))
        session.commit()
    assert new_secret is not None and new_secret.startswith("whsec_")
    assert new_secret != old_side.secrets[0]
    new_side.secrets.append(new_secret)

    during = await rejected_change(room)
    await old_side.wait_for_types(during, ["change.rejected"])
    delivered = old_side.got(during)[0]
    assert len(delivered.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(delivered.body, delivered.headers)  # either secret verifies

    await asyncio.sleep(3.5)
    after = await rejected_change(room)
    await old_side.wait_for(lambda: len(old_side.got(after)) == 1, "the event after the overlap")
    delivered = old_side.got(after)[0]
    assert not delivered.verified  # the old secret no longer signs
    assert len(delivered.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(delivered.body, delivered.headers)


async def test_a_slow_endpoint_delays_neither_a_change_nor_another_endpoint(webhook_room):
    room = await webhook_room()
    slow, quick = room.receiver(), room.receiver()
    await room.add(slow)
    await room.add(quick)
    slow.hold.clear()  # it takes the first request and answers nothing until released
    org = unique_org("hook-slow")
    await load_suite(room.driver, org)

    result = await room.driver.run(org, seats=33)

    assert result.status is ChangeStatus.COMPLETED
    await quick.wait_for_types(result.workflow_id, ["payment.succeeded", "change.completed"])
    assert slow.got() == []  # still holding its first request
    slow.hold.set()
    await slow.wait_for_types(result.workflow_id, ["payment.succeeded", "change.completed"])
    assert slow.types(result.workflow_id) == ["payment.succeeded", "change.completed"]
