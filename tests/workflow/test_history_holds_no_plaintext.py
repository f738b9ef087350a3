"""No personal data in plaintext history: with PAYLOAD_KEYS set, workflow and activity payloads,
summaries and failure messages reach the Temporal server sealed, while the search attributes
the Web UI filters on stay readable. The keys and the codec server that opens payloads again
are tests/unit/test_payload_keys_and_codec_server.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from subchange.adapters.codec import data_converter
from subchange.app.wiring import build_worker
from subchange.domain.contracts import ChangeStatus
from subchange.domain.search_attributes import initial_search_attributes
from subchange.payload_keys import new_key_setting
from tests.helpers.documents import DECLINED_ON_CHARGE_CARD, unique_org
from tests.helpers.driver import ChangeDriver, load_suite, request_for, wait_for_payment
from workflows.subscription_change import SubscriptionChange

KEYS = new_key_setting("k1")
# What the SDK's core writes plain in a local activity's marker (its LocalActivityMarkerData).
LOCAL_MARKER_BOOKKEEPING = {"seq", "attempt", "activity_id", "activity_type", "complete_time",
                            "backoff", "original_schedule_time", "activation_index"}


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a history event (inputs, results, summaries, failures)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values()
        elif isinstance(value, Message):
            values = [value]
        else:
            values = value  # a repeated field
        for item in values:
            if isinstance(item, Message):
                yield from payloads_in(item)


@pytest.fixture
async def sealed_client(time_skipping_env) -> Client:
    target = time_skipping_env.client.service_client.config.target_host
    return await Client.connect(target, data_converter=data_converter(KEYS))


@pytest.fixture
async def sealed_worker(sealed_client, deps, task_queue) -> AsyncIterator[None]:
    async with build_worker(sealed_client, deps, task_queue=task_queue,
                            fail_workflows_on_bugs=True):
        yield


async def test_history_holds_no_personal_data_in_plaintext(sealed_client, sealed_worker,
                                                           time_skipping_env, task_queue, load,
                                                           deps):
    driver = ChangeDriver(sealed_client, task_queue, time_skipping_env, load)
    org = unique_org("sealed")
    admin = f"admin@{org}.example"
    await load_suite(driver, org, card=DECLINED_ON_CHARGE_CARD)
    request = request_for(org, "one", admin, {"kind": "seats", "seats": 35})
    handle = await sealed_client.start_workflow(
        SubscriptionChange.run, request.model_dump(mode="json"), id=request.workflow_id,
        task_queue=task_queue, search_attributes=initial_search_attributes(request),
        static_summary=f"{request.describe()} (by {admin})")
    view = await wait_for_payment(handle)  # the sealed client reads its own payloads
    assert "declined" in view.last_error
    await handle.cancel()
    result = await driver.result(handle)
    assert result.status is ChangeStatus.CANCELLED

    # What the server stores, read by a client without the key.
    raw = await time_skipping_env.client.get_workflow_handle(handle.id).fetch_history()
    everything = b"".join(p.SerializeToString() for event in raw.events
                          for p in payloads_in(event))
    for secret in (admin, f"billing@{org}.example", f"{org} KK", (result.payment and
                   result.payment.intent_id) or "pi_"):
        assert secret.encode() not in everything
    # Search attributes stay readable (the server indexes them); they hold no personal data.
    # Patch markers (workflow.patched) hold only the patch id, which the SDK's core writes plain.
    ours = [event for event in raw.events
            if event.marker_recorded_event_attributes.marker_name != "core_patch"]
    # A local step's marker: its result is sealed like any payload; beside it the SDK's core
    # writes its own bookkeeping plain (which call, which attempt, when), and only that.
    local_steps = [event.marker_recorded_event_attributes.details for event in ours
                   if event.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    assert {json.loads(details["data"].payloads[0].data)["activity_type"]
            for details in local_steps} >= {"open_change", "authorize_admin", "close_change"}
    bookkeeping = [details["data"].payloads[0] for details in local_steps]
    assert all(set(json.loads(p.data)) <= LOCAL_MARKER_BOOKKEEPING for p in bookkeeping)
    plain = {p.SerializeToString() for p in bookkeeping}
    payloads = [p for event in ours for p in payloads_in(event)
                if "type" not in p.metadata and p.SerializeToString() not in plain]
    assert payloads and all(p.metadata["encoding"] == b"binary/encrypted" for p in payloads)
    text = json.dumps(raw.to_json_dict())
    assert "declined" not in text and admin not in text  # failure messages are sealed too
    indexed = [p.data for event in raw.events for p in payloads_in(event) if "type" in p.metadata]
    assert f'"{org}"'.encode() in indexed  # the org id stays filterable in the Web UI
