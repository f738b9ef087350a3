"""`starter.py webhook ...` as operators run it (SPEC section 13), against the Temporal dev
server and a `worker.py` process whose webhook retries take seconds, with the real database,
localstripe and SMTP server, and a real receiver that verifies every delivery with the
`standardwebhooks` package: add (the relay starts, the secret is printed once), list (no
secret), rotate (both signatures for the overlap), failed and replay (the same webhook-id),
remove (its relay ends); bad input exits 2 naming the option, with nothing written."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import func, select
from standardwebhooks import Webhook
from temporalio.client import WorkflowExecutionStatus

from subchange.domain.webhooks import relay_workflow_id
from subchange.store.tables import WebhookEndpoint
from tests.helpers.documents import org_document, write_fixture
from tests.helpers.processes import WorkerProcess, change_args, run_cli
from tests.helpers.webhooks import Answer, Receiver

# The commands and the relay read and write the same rows on either database (the webhook
# tests of tests/workflow run on both): when both passes run side by side, these (about 35 s)
# run in the SQLite one only.
pytestmark = [pytest.mark.integration, pytest.mark.one_pass(on="sqlite")]


@pytest.fixture(scope="module")
def hook_env(process_env) -> dict[str, str]:
    return process_env("hooks", WEBHOOK_RETRY_SCHEDULE="PT1S,PT1S", WEBHOOK_POLL_EVERY="PT1S",
                       WEBHOOK_SECRET_OVERLAP="PT1H")


@pytest.fixture(scope="module")
def worker(hook_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("hooks-worker") / "worker.log"
    with WorkerProcess(hook_env, log).running() as process:
        yield process


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def run_ok(env, *args: str):
    result = run_cli(env, *args)
    assert result.code == 0, result
    return result


def a_change(env, tmp_path, seats: int = 12) -> str:
    """A card payer's seat increase, run to its end with `change --wait`: its workflow id."""
    org = f"hooks-{uuid.uuid4().hex[:6]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                            "pricing_model": "flexible_user"}])
    run_ok(env, "load", str(write_fixture(tmp_path / f"{org}.json", document)))
    return run_ok(env, *change_args(org, "one", "--seats", str(seats), "--wait")).json[
        "workflow_id"]


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"never {what}")


async def test_an_endpoint_added_rotated_failing_replayed_and_removed(
        worker, hook_env, receiver, tmp_path, dev_env, deps):
    added = run_ok(hook_env, "webhook", "add", "--url", receiver.url)
    endpoint, secret = added.json["id"], added.json["secret"]
    assert set(added.json) == {"id", "secret"} and secret.startswith("whsec_")
    receiver.secrets.append(secret)
    try:
        listed = run_ok(hook_env, "webhook", "list")
        [shown] = [e for e in listed.json["endpoints"] if e["id"] == endpoint]
        assert (shown["url"], shown["events"], shown["status"]) == (receiver.url, [], "active")
        assert secret not in listed.stdout and "whsec_" not in listed.stdout

        first = a_change(hook_env, tmp_path)
        wait_until(lambda: receiver.types(first) == ["payment.succeeded", "change.completed"],
                   f"the events of {first}")
        assert all(d.verified for d in receiver.got(first))

        rotated = run_ok(hook_env, "webhook", "rotate", endpoint)
        new_secret = rotated.json["secret"]
        assert new_secret.startswith("whsec_") and new_secret != secret
        assert rotated.json["previous_secret_until"]
        second = a_change(hook_env, tmp_path, seats=13)
        wait_until(lambda: len(receiver.events(second)) == 2, f"the events of {second}")
        delivery = receiver.got(second)[-1]
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2
        Webhook(new_secret).verify(delivery.body, delivery.headers)  # and the old one did

        receiver.answer = Answer(500)
        third = a_change(hook_env, tmp_path, seats=14)
        wait_until(lambda: len([d for d in receiver.got(third) if d.answered == 500]) >= 6,
                   f"every attempt for {third} refused")
        wait_until(lambda: {f["workflow_id"] for f in run_ok(
            hook_env, "webhook", "failed").json["failed"]} >= {third}, "listed as failed")
        failed = [f for f in run_ok(hook_env, "webhook", "failed").json["failed"]
                  if f["workflow_id"] == third]
        assert [(f["type"], f["attempts"], f["last_status_code"], f["endpoint_id"])
                for f in failed] == [("payment.succeeded", 3, 500, endpoint),
                                     ("change.completed", 3, 500, endpoint)]
        assert _status(hook_env, endpoint) == "failing"

        receiver.answer = Answer(204)
        replayed = run_ok(hook_env, "webhook", "replay", failed[1]["event_id"])
        assert replayed.json == {"event_id": failed[1]["event_id"], "replayed_to": [endpoint]}
        wait_until(lambda: receiver.types(third) == ["change.completed"], "the replay")
        assert receiver.events(third)[0]["id"] == failed[1]["event_id"]
        wait_until(lambda: _status(hook_env, endpoint) == "active", "active again")
        assert [f["event_id"] for f in run_ok(hook_env, "webhook", "failed").json["failed"]
                if f["workflow_id"] == third] == [failed[0]["event_id"]]
    finally:
        removed = run_cli(hook_env, "webhook", "remove", endpoint)
    assert removed.code == 0 and removed.json == {"id": endpoint, "removed": True}, removed
    assert endpoint not in run_ok(hook_env, "webhook", "list").stdout
    relay = dev_env.client.get_workflow_handle(relay_workflow_id(endpoint))
    deadline = time.monotonic() + 30
    while (await relay.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, "the relay of a removed endpoint still runs"
        await asyncio.sleep(0.2)


def _status(env, endpoint: str) -> str:
    return next(e["status"] for e in run_ok(env, "webhook", "list").json["endpoints"]
                if e["id"] == endpoint)


@pytest.mark.parametrize(("args", "message"), [
    (["add", "--url", "hooks.example/in"], "--url: must start with https:// or http://"),
    (["add", "--url", "https://"], "--url: has no host"),
    (["add", "--url", "https://hooks.example/in", "--events", "change.completed,change.won"],
     "--events: unknown event type 'change.won'"),
    (["rotate", "we_nope"], "ID: not an endpoint id"),
    (["remove", "we_0123456789abcdef01234567"], "ID: no endpoint we_0123456789abcdef01234567"),
    (["replay", "evt_1"], "EVENT_ID: not an event id"),
    (["replay", "evt_0123456789abcdef0123456789abcdef"], "EVENT_ID: no event"),
], ids=["url-scheme", "url-host", "events", "rotate-id", "remove-unknown", "replay-id",
        "replay-unknown"])
def test_bad_input_exits_2_naming_the_option_and_writes_nothing(hook_env, deps, args, message):
    with deps.sessions() as session:
        before = session.exec(select(func.count()).select_from(WebhookEndpoint)).one()
    result = run_cli(hook_env, "webhook", *args)
    assert result.code == 2, result
    assert message in result.stderr and result.stdout == ""
    with deps.sessions() as session:
        assert session.exec(select(func.count()).select_from(WebhookEndpoint)).one() == before


def test_enable_brings_back_an_endpoint_a_410_disabled(hook_env, deps):
    endpoint_id = run_ok(hook_env, "webhook", "add", "--url",
                         "https://hooks.example/back-soon").json["id"]
    try:
        with deps.sessions() as session:  # its receiver answered 410 Gone
            row = session.get(WebhookEndpoint, endpoint_id)
            row.status = "disabled"
            session.add(row)
            session.commit()
        enabled = run_ok(hook_env, "webhook", "enable", endpoint_id)
        assert enabled.json["status"] == "active" and "secret" not in enabled.json
        again = run_ok(hook_env, "webhook", "enable", endpoint_id)
        assert again.json["status"] == "active" and "was not disabled" in again.stderr
        unknown = run_cli(hook_env, "webhook", "enable", "we_000000000000000000000000")
        assert unknown.code == 2 and "no endpoint" in unknown.stderr, unknown
    finally:
        run_ok(hook_env, "webhook", "remove", endpoint_id)
