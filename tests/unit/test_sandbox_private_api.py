"""The private API of temporalio that the sandbox's context shortcut (subchange/app/sandbox.py,
SANDBOX_CONTEXT_SHORTCUT) relies on, exactly as it was in CHECKED_AGAINST, so that an SDK upgrade
that reshapes it fails here, by name, instead of slowing or breaking workers in silence.

After bumping temporalio in pyproject.toml: run this file and
tests/workflow/test_sandbox_serialization_context.py, update the shortcut (or turn it off) if
they fail, then set CHECKED_AGAINST to the new pin."""

from __future__ import annotations

import importlib
import inspect
import re
import tomllib
from pathlib import Path

import pytest
import temporalio
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, WorkflowSerializationContext
from temporalio.worker import WorkflowInstance, WorkflowRunner

from subchange.app.sandbox import (
    CHECKED_AGAINST,
    ContextFreeRunner,
    _ContextFreeInstance,
    methods,
    private_api_problem,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# What the shortcut's wrappers implement (each method of the SDK's runner and instance), as the
# SDK declares them; the private names in them are what the shortcut's signatures import.
SIGNATURES = {
    (WorkflowRunner, "prepare_workflow"):
        "(self, defn: 'temporalio.workflow._Definition') -> 'None'",
    (WorkflowRunner, "create_instance"):
        "(self, det: 'WorkflowInstanceDetails') -> 'WorkflowInstance'",
    (WorkflowRunner, "set_worker_level_failure_exception_types"):
        "(self, types: 'Sequence[type[BaseException]]') -> 'None'",
    (WorkflowInstance, "activate"):
        "(self, act: 'temporalio.bridge.proto.workflow_activation.WorkflowActivation') -> "
        "'temporalio.bridge.proto.workflow_completion.WorkflowActivationCompletion'",
    (WorkflowInstance, "get_serialization_context"):
        "(self, command_info: '_command_aware_visitor.CommandInfo | None') -> "
        "'temporalio.converter.SerializationContext | None'",
    (WorkflowInstance, "get_external_store_context"):
        "(self, command_info: '_command_aware_visitor.CommandInfo | None') -> "
        "'StorageDriverStoreContext'",
    (WorkflowInstance, "get_info"): "(self) -> 'temporalio.workflow.Info'",
    (WorkflowInstance, "get_thread_id"): "(self) -> 'int | None'",
}


def changed(what: str) -> str:
    return (f"temporalio {temporalio.__version__} changed the private API that "
            f"subchange/app/sandbox.py relies on: {what}; set SANDBOX_CONTEXT_SHORTCUT=false or "
            "update the shortcut")


def private(module: str, name: str) -> object:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(changed(f"{module}.{name} is gone ({error})"))


def test_the_private_names_the_shortcut_uses_are_there():
    command_info = private("temporalio.worker._command_aware_visitor", "CommandInfo")
    definition = private("temporalio.workflow", "_Definition")
    converter = private("temporalio.worker._workflow", "_CommandAwareDataConverter")

    assert inspect.isclass(command_info), changed("_command_aware_visitor.CommandInfo is no class")
    assert inspect.isclass(definition), changed("temporalio.workflow._Definition is no class")
    for name in ("create", "_get_current_dc", "_external_store_payload_sequence"):
        assert hasattr(converter, name), changed(f"_CommandAwareDataConverter.{name} is gone")


@pytest.mark.parametrize(("base", "wrapper"), [(WorkflowRunner, ContextFreeRunner),
                                               (WorkflowInstance, _ContextFreeInstance)],
                         ids=["runner", "instance"])
def test_the_runner_and_instance_methods_the_shortcut_passes_on_keep_their_signatures(
        base, wrapper):
    expected = {name for cls, name in SIGNATURES if cls is base}
    assert methods(base) == expected, changed(
        f"{base.__name__}'s methods are {sorted(methods(base))}, not {sorted(expected)} "
        f"(those {wrapper.__name__} passes on)")
    for name in sorted(expected):
        signature = str(inspect.signature(getattr(base, name)))
        assert signature == SIGNATURES[base, name], changed(
            f"{base.__name__}.{name} is {signature}, not {SIGNATURES[base, name]}")


async def test_the_sdk_converts_with_the_context_free_converter_when_told_no_context():
    # The SDK asks the instance per payload list; the shortcut answers None (no context) and no
    # store target, which must select the converter without a context and store nothing.
    try:  # the private name the SDK converts with: its absence is the failure this test names
        from temporalio.worker import _workflow
        _CommandAwareDataConverter = _workflow._CommandAwareDataConverter
    except (ImportError, AttributeError) as error:
        pytest.fail(changed(f"temporalio.worker._workflow._CommandAwareDataConverter: {error}"))

    context_free, with_workflow = DataConverter(), DataConverter()
    workflow_context = WorkflowSerializationContext(namespace="default", workflow_id="change-x")
    converter = _CommandAwareDataConverter.create(
        _ContextFreeInstance(inner=None), context_free, with_workflow,  # type: ignore[arg-type]
        workflow_context)

    assert converter._get_current_dc() is context_free, changed(
        "_CommandAwareDataConverter no longer takes a None context for the converter without one")
    payloads = [Payload(data=b'"x"')]
    assert await converter._external_store_payload_sequence(payloads) == payloads, changed(
        "_CommandAwareDataConverter stores payloads given StorageDriverStoreContext(target=None)")


def test_the_workers_own_check_finds_the_shortcut_usable():
    # Workers run this check at start and fall back to the plain sandbox when it finds a problem:
    # on the pinned SDK that would lose the saving in silence.
    assert private_api_problem() is None, changed(str(private_api_problem()))


def test_checked_against_is_the_pinned_temporalio():
    pins = [spec for spec in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
            if re.split(r"[\s\[=<>~!;]", spec)[0] == "temporalio"]
    assert pins == [CHECKED_AGAINST], (
        f"pyproject.toml pins {pins}, but subchange/app/sandbox.py's shortcut was checked against "
        f"{CHECKED_AGAINST}: run tests/unit/test_sandbox_private_api.py and "
        "tests/workflow/test_sandbox_serialization_context.py against the new SDK, then bump "
        "CHECKED_AGAINST (or set SANDBOX_CONTEXT_SHORTCUT=false)")
