"""An event is never lost when a worker dies (SPEC section 13): `worker.py` is killed with
SIGKILL right after the transaction that recorded the event committed and before it woke the
endpoint's relay (the pause point webhook.before_wake); a fresh worker finishes the change, and
the receiver, which verifies every delivery with the `standardwebhooks` package, gets every
event of the change once, in order."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import select

from subchange.store.tables import OutboxEvent
from tests.helpers.documents import org_document
from tests.helpers.driver import request_for, start_change
from tests.helpers.observers import succeeded_charges
from tests.helpers.processes import PAUSED_LINE, READY_LINE, WorkerProcess, run_cli
from tests.helpers.webhooks import Receiver

# What it kills is the worker between the commit and the wake: a process, not a database
# behaviour (the outbox's transaction is tested on both in tests/unit). When both passes run
# side by side, it (about 30 s) runs in the SQLite one only.
pytestmark = [pytest.mark.integration, pytest.mark.one_pass(on="sqlite")]

RESULT_TIMEOUT = 150  # the killed charge attempt is retried after its heartbeat timeout


async def test_a_worker_killed_between_the_commit_and_the_wake_loses_no_event(
        dev_env, process_env, load, deps, gateway, tmp_path):
    queue = f"hook-crash-{uuid.uuid4().hex[:6]}"
    fast = {"WEBHOOK_RETRY_SCHEDULE": "PT1S,PT1S,PT1S", "WEBHOOK_POLL_EVERY": "PT2S"}
    env = process_env("hook-crash", task_queue=queue, **fast)
    receiver = Receiver().start()
    added = run_cli(env, "webhook", "add", "--url", receiver.url)
    assert added.code == 0, added
    receiver.secrets.append(added.json["secret"])
    paused = WorkerProcess({**env, "FAULT_PAUSE_POINTS": "webhook.before_wake",
                            "FAULT_PAUSE_SECONDS": "300"}, tmp_path / "paused.log").start()
    fresh = WorkerProcess(env, tmp_path / "fresh.log")
    try:
        await asyncio.to_thread(paused.wait_for, READY_LINE)
        org = f"hook-crash-{uuid.uuid4().hex[:6]}"
        load(org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                       "products": ["one"]}],
                          subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                          "pricing_model": "flexible_user"}]))
        handle = await start_change(dev_env.client, queue, request_for(
            org, by=f"admin@{org}.example", seats=15))

        log = await asyncio.to_thread(paused.wait_for, f"{PAUSED_LINE} webhook.before_wake")
        # The charge is recorded with its event, and the relay was never told.
        with deps.sessions() as session:
            assert [e.type for e in session.exec(select(OutboxEvent).where(
                OutboxEvent.workflow_id == handle.id))] == ["payment.succeeded"]
        assert receiver.got(handle.id) == []
        paused.kill()
        assert log.count(PAUSED_LINE) == 1

        fresh.start()
        result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        await receiver.wait_for_types(handle.id, ["payment.succeeded", "change.completed"])
        await asyncio.sleep(3)  # a poll more: nothing else comes

        assert receiver.types(handle.id) == ["payment.succeeded", "change.completed"]
        assert all(d.verified for d in receiver.got(handle.id))
        assert len(receiver.got(handle.id)) == 2  # each sent once
        assert [c.payment_intent for c in succeeded_charges(gateway, workflow_id=handle.id)] == [
            result.payment.intent_id]
        with deps.sessions() as session:
            assert [e.type for e in session.exec(select(OutboxEvent).where(
                OutboxEvent.workflow_id == handle.id).order_by(OutboxEvent.sequence))] == [
                "payment.succeeded", "change.completed"]
    finally:
        paused.kill()
        fresh.stop()
        run_cli(env, "webhook", "remove", added.json["id"])
        receiver.stop()
