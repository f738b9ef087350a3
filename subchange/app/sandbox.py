"""The workflow sandbox of workers and replayers, and what it is spared when payloads need no
serialization context.

For every payload list of every activation and completion (about seven visits each), the SDK asks
the workflow instance which serialization context the payloads belong to: the workflow, or the
activity a command schedules. A sandboxed instance answers by compiling and executing a statement
inside the sandbox, with its restricted builtins and modules swapped in and out around it: about
15 ms of a change's worker CPU (py-spy, a burst of 300 changes). The answer only matters to a
payload converter, failure converter or codec that takes a context
(`temporalio.converter.WithSerializationContext`, whose `with_context` returns another converter)
and to external payload storage. Ours (the pydantic converter, the encrypting codec of
subchange/adapters/codec.py) take none, and we store no payload externally: given any context the
data converter gives back itself, so asking is skipped.
A data converter that does take a context gets the sandbox as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import temporalio.workflow
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

if TYPE_CHECKING:
    from temporalio.bridge.proto.workflow_activation import WorkflowActivation
    from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
    from temporalio.worker._command_aware_visitor import CommandInfo

# pydantic's EmailStr imports email_validator lazily: the worker's copy is shared instead of being
# imported again inside every workflow run. The workflow's helper modules are shared too
# (subchange/app/wiring.py).
SHARED_LIBRARIES = ("email_validator", "idna")


def sandboxed_runner(data_converter: DataConverter, *shared_modules: str) -> WorkflowRunner:
    """The sandbox for workers and replayers of payloads converted by `data_converter`, with
    `shared_modules` passed through."""
    sandbox = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            *SHARED_LIBRARIES, *shared_modules))
    return ContextFreeRunner(sandbox) if takes_no_context(data_converter) else sandbox


def takes_no_context(data_converter: DataConverter) -> bool:
    """Whether every payload of a workflow converts the same whatever its serialization context:
    given a workflow's or an activity's context, the converter gives back itself (it does when
    none of its parts takes one), and it stores no payload externally."""
    contexts = (
        WorkflowSerializationContext(namespace="default", workflow_id="change-x"),
        ActivitySerializationContext(
            namespace="default", workflow_id="change-x", workflow_type="SubscriptionChange",
            activity_type="charge", activity_task_queue="subscription-changes",
            is_local=False, activity_id="1"))
    return (data_converter.external_storage is None
            and all(data_converter.with_context(context) is data_converter
                    for context in contexts))


class ContextFreeRunner(WorkflowRunner):
    """A runner whose instances tell the SDK that no payload has a serialization context of its
    own, without asking the sandbox; everything else is the inner runner's."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(self.inner.create_instance(det))

    def set_worker_level_failure_exception_types(
            self, types: Sequence[type[BaseException]]) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _ContextFreeInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self.inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self.inner.activate(act)

    def get_serialization_context(self, command_info: CommandInfo | None,
                                  ) -> SerializationContext | None:
        return None  # the data converter without a context: the same one (takes_no_context)

    def get_external_store_context(self, command_info: CommandInfo | None,
                                   ) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)  # nothing is stored externally

    def get_info(self) -> temporalio.workflow.Info:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()
