"""The workers' sandbox (subchange/app/sandbox.py) stops asking each payload's serialization
context only when nothing would use the answer: the service's own converters (plain, and sealed
with PAYLOAD_KEYS) run a workflow and its activity as before, and a codec that does take a
context (as a per-workflow key codec would) still gets the activity's context for the activity's
input. With SANDBOX_CONTEXT_SHORTCUT=false, or an SDK without the private API the shortcut relies
on (one warning), workers run the SDK's plain sandbox, sharing the same modules."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest
import temporalio.worker
import temporalio.workflow
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
from temporalio.worker import Worker, WorkflowInstance, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from subchange.adapters.codec import data_converter
from subchange.app.sandbox import ContextFreeRunner
from subchange.app.wiring import build_worker, workflow_runner
from subchange.domain.contracts import ChangeStatus
from subchange.payload_keys import new_key_setting
from tests.helpers.documents import unique_org
from tests.helpers.driver import ChangeDriver, load_suite
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


async def run_shout(env: WorkflowEnvironment, converter: DataConverter,
                    runner: WorkflowRunner | None = None) -> str:
    client = Client(**{**env.client.config(), "data_converter": converter})
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Shout], activities=[shout],
                      workflow_runner=runner or workflow_runner(converter, context_shortcut=True)):
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


@pytest.mark.parametrize("payload_keys", ["", new_key_setting("k1")], ids=["plain", "sealed"])
async def test_with_the_shortcut_off_workers_run_the_plain_sandbox(time_skipping_env,
                                                                    payload_keys):
    converter = data_converter(payload_keys)
    runner = workflow_runner(converter, context_shortcut=False)

    assert type(runner) is SandboxedWorkflowRunner
    shortcut = workflow_runner(converter, context_shortcut=True)
    assert runner.restrictions == shortcut.inner.restrictions  # the same modules shared
    assert await run_shout(time_skipping_env, converter, runner) == "HELLO"


def without_the_private_module(patch: pytest.MonkeyPatch) -> None:
    patch.delattr(temporalio.worker, "_command_aware_visitor")
    patch.setitem(sys.modules, "temporalio.worker._command_aware_visitor", None)


def without_the_private_attribute(patch: pytest.MonkeyPatch) -> None:
    patch.delattr(temporalio.workflow, "_Definition")


def with_a_method_the_shortcut_lacks(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(WorkflowInstance, "get_workflow_state", lambda self: None, raising=False)


@pytest.mark.parametrize("break_the_sdk", [without_the_private_module,
                                           without_the_private_attribute,
                                           with_a_method_the_shortcut_lacks],
                         ids=["module", "attribute", "method"])
async def test_an_sdk_without_the_private_api_gets_the_plain_sandbox_and_one_warning(
        time_skipping_env, monkeypatch, caplog,
        break_the_sdk: Callable[[pytest.MonkeyPatch], None]):
    converter = data_converter("")
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
        break_the_sdk(patch)
        runner = workflow_runner(converter, context_shortcut=True)

    assert type(runner) is SandboxedWorkflowRunner
    [warning] = [record for record in caplog.records if record.name == "subchange.app.sandbox"]
    assert warning.levelno == logging.WARNING
    assert "SANDBOX_CONTEXT_SHORTCUT" in warning.getMessage()
    assert "running the plain sandbox" in warning.getMessage()
    assert await run_shout(time_skipping_env, converter, runner) == "HELLO"


@pytest.mark.parametrize("shortcut", [True, False], ids=["shortcut", "plain"])
async def test_the_service_worker_completes_a_change_with_either_setting(
        time_skipping_env, deps, load, task_queue, shortcut):
    settings = deps.settings.model_copy(update={"sandbox_context_shortcut": shortcut})
    client = time_skipping_env.client
    async with build_worker(client, replace(deps, settings=settings), task_queue=task_queue,
                            fail_workflows_on_bugs=True) as worker:
        runner = worker.config()["workflow_runner"]
        assert type(runner) is (ContextFreeRunner if shortcut else SandboxedWorkflowRunner)
        changes = ChangeDriver(client, task_queue, time_skipping_env, load)
        org = unique_org("sandbox")
        await load_suite(changes, org)
        result = await changes.run(org, "one", f"admin@{org}.example",
                                   {"kind": "seats", "seats": 35})

    assert result.status is ChangeStatus.COMPLETED
