"""The workers' sandbox (subchange/app/sandbox.py) stops asking each payload's serialization
context only when nothing would use the answer: the service's own converters (plain, and sealed
with PAYLOAD_KEYS) run a workflow and its activity as before, and a codec that does take a
context (as a per-workflow key codec would) still gets the activity's context for the activity's
input."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import pytest
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from subchange.adapters.codec import data_converter
from subchange.app.sandbox import ContextFreeRunner
from subchange.app.wiring import workflow_runner
from subchange.payload_keys import new_key_setting
from tests.workflow.shout_workflow import Shout


@activity.defn(name="shout")
async def shout(text: str) -> str:
    return text.upper()


class ContextRecordingCodec(PayloadCodec, WithSerializationContext):
    """Passes payloads through and notes the context of each it encodes."""

    def __init__(self, seen: list[SerializationContext | None],
                 context: SerializationContext | None = None) -> None:
        self.seen, self.context = seen, context

    def with_context(self, context: SerializationContext) -> ContextRecordingCodec:
        return ContextRecordingCodec(self.seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(self.context)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


async def run_shout(env: WorkflowEnvironment, converter: DataConverter) -> str:
    client = Client(**{**env.client.config(), "data_converter": converter})
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Shout], activities=[shout],
                      workflow_runner=workflow_runner(converter, context_shortcut=True)):
        return await client.execute_workflow(Shout.run, "hello", id=f"shout-{uuid.uuid4()}",
                                             task_queue=queue)


@pytest.mark.parametrize("payload_keys", ["", new_key_setting("k1")], ids=["plain", "sealed"])
async def test_the_service_converters_skip_the_context_and_run_workflows(
        time_skipping_env, payload_keys):
    converter = data_converter(payload_keys)

    assert isinstance(workflow_runner(converter, context_shortcut=True), ContextFreeRunner)
    assert await run_shout(time_skipping_env, converter) == "HELLO"


async def test_a_codec_that_takes_a_context_still_gets_the_activity_context(time_skipping_env):
    seen: list[SerializationContext | None] = []
    converter = replace(pydantic_data_converter, payload_codec=ContextRecordingCodec(seen))

    assert not isinstance(workflow_runner(converter, context_shortcut=True), ContextFreeRunner)
    assert await run_shout(time_skipping_env, converter) == "HELLO"
    assert any(isinstance(context, ActivitySerializationContext)
               and context.activity_type == "shout" for context in seen)
