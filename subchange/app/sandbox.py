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

The shortcut leans on the SDK's private API (`private_api_problem` says which), as it was in
CHECKED_AGAINST: SANDBOX_CONTEXT_SHORTCUT=false turns it off, and a worker whose SDK lacks what it
relies on logs a warning and runs the plain sandbox. tests/unit/test_sandbox_private_api.py checks
the exact shape and fails when the pin of pyproject.toml moves.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import temporalio
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

log = logging.getLogger(__name__)

# The SDK release whose private API the shortcut was checked against: pyproject.toml's pin
# (tests/unit/test_sandbox_private_api.py fails when they differ).
CHECKED_AGAINST = "temporalio==1.35.0"

# pydantic's EmailStr imports email_validator lazily: the worker's copy is shared instead of being
# imported again inside every workflow run. The workflow's helper modules are shared too
# (subchange/app/wiring.py). opentelemetry: with tracing on, the workflow part of temporalio's
# TracingInterceptor (subchange/app/tracing.py) runs in the sandbox and needs the worker's copy,
# whose context and tracer it shares (as temporalio.contrib.opentelemetry's plugin passes it).
SHARED_LIBRARIES = ("email_validator", "idna", "opentelemetry")


def sandboxed_runner(data_converter: DataConverter, *shared_modules: str,
                     context_shortcut: bool) -> WorkflowRunner:
    """The sandbox for workers and replayers of payloads converted by `data_converter`, with
    `shared_modules` passed through; with `context_shortcut` (SANDBOX_CONTEXT_SHORTCUT), spared
    the context lookup when nothing uses its answer and the SDK has what the shortcut relies on."""
    sandbox = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            *SHARED_LIBRARIES, *shared_modules))
    if not context_shortcut or not takes_no_context(data_converter):
        return sandbox
    if (problem := private_api_problem()) is not None:
        log.warning("SANDBOX_CONTEXT_SHORTCUT: temporalio %s lacks the private API the shortcut "
                    "was checked against (%s): %s; running the plain sandbox (about 15 ms more "
                    "worker CPU per change)", temporalio.__version__, CHECKED_AGAINST, problem)
        return sandbox
    return ContextFreeRunner(sandbox)


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


def private_api_problem() -> str | None:
    """What the shortcut relies on that this SDK lacks, or None: the private names in the
    signatures of the methods it implements, and the methods of the SDK's runner and instance
    with their parameters (the wrappers pass each on; one they lacked would be the base class's
    default, one the SDK dropped or reshaped is no longer called as the shortcut expects)."""
    try:
        from temporalio.worker import _command_aware_visitor
        _command_aware_visitor.CommandInfo  # noqa: B018
        temporalio.workflow._Definition  # noqa: B018
    except (ImportError, AttributeError) as error:
        return f"{type(error).__name__}: {error}"
    for base, wrapper in ((WorkflowRunner, ContextFreeRunner),
                          (WorkflowInstance, _ContextFreeInstance)):
        if methods(base) != methods(wrapper):
            return (f"{base.__name__} has the methods {sorted(methods(base))}, "
                    f"{wrapper.__name__} {sorted(methods(wrapper))}")
        for name in sorted(methods(base)):
            if parameters(getattr(base, name)) != parameters(getattr(wrapper, name)):
                return (f"{base.__name__}.{name} takes {parameters(getattr(base, name))}, "
                        f"{wrapper.__name__}.{name} {parameters(getattr(wrapper, name))}")
    return None


def methods(cls: type) -> set[str]:
    """The methods `cls` defines itself, but the special ones."""
    return {name for name, value in vars(cls).items()
            if callable(value) and not name.startswith("__")}


def parameters(method: Callable[..., object]) -> list[str]:
    return list(inspect.signature(method).parameters)


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

    # command_info: the SDK's private CommandInfo, unread (annotated `object` so that nothing
    # here imports a private module; private_api_problem checks it exists).
    def get_serialization_context(self, command_info: object | None,
                                  ) -> SerializationContext | None:
        return None  # the data converter without a context: the same one (takes_no_context)

    def get_external_store_context(self, command_info: object | None,
                                   ) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)  # nothing is stored externally

    def get_info(self) -> temporalio.workflow.Info:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()
