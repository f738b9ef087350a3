"""The workflow's helper modules are shared by every run instead of being executed again in each
run's sandbox (subchange/app/wiring.py, WORKFLOW_HELPERS), so the sandbox no longer checks them at
run time. This checks them as source instead: they import only deterministic code, reach no
clock, randomness, thread or I/O but through `workflow`, and keep no mutable state at module
level that one run could leave to the next (a read-only mapping is a MappingProxyType)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from subchange.app.wiring import WORKFLOW_HELPERS, WORKFLOW_MODULES

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_IMPORTS = ("__future__", "asyncio", "collections.abc", "dataclasses", "datetime", "enum",
                   "types", "typing", "temporalio", "pydantic", "workflows", "subchange.domain",
                   "state_machines")
# Called on anything but `workflow` (workflow.now(), workflow.uuid4(), workflow.random()).
CLOCK_OR_CHANCE = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "uuid4",
                   "uuid1", "random", "randint", "choice", "shuffle", "urandom", "getenv"}
FORBIDDEN_NAMES = {"open", "print", "input", "globals"}


def helper_sources() -> dict[str, ast.Module]:
    return {name: ast.parse((ROOT / Path(*name.split("."))).with_suffix(".py").read_text())
            for name in WORKFLOW_HELPERS}


def test_the_helpers_are_every_module_of_the_package_but_the_workflows():
    files = {f"workflows.{p.stem}" for p in (ROOT / "workflows").glob("*.py")
             if p.stem != "__init__"}
    assert set(WORKFLOW_HELPERS) == files - set(WORKFLOW_MODULES)


@pytest.mark.parametrize("name", WORKFLOW_HELPERS)
def test_a_helper_imports_only_deterministic_code(name):
    for node in ast.walk(helper_sources()[name]):
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                   else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for module in modules:
            assert module.startswith(ALLOWED_IMPORTS), f"{name} imports {module}"


@pytest.mark.parametrize("name", WORKFLOW_HELPERS)
def test_a_helper_reads_no_clock_or_chance_but_the_workflows(name):
    for node in ast.walk(helper_sources()[name]):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in CLOCK_OR_CHANCE:
                assert isinstance(owner, ast.Name) and owner.id == "workflow", (
                    f"{name}:{node.lineno} calls .{node.func.attr}() on something else than "
                    "workflow")
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES, f"{name}:{node.lineno} uses {node.id}"
        assert not isinstance(node, ast.Global | ast.Nonlocal), f"{name}:{node.lineno}"


@pytest.mark.parametrize("name", WORKFLOW_HELPERS)
def test_a_helper_keeps_no_mutable_state_at_module_level(name):
    for node in helper_sources()[name].body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            assert not isinstance(node.value, ast.List | ast.Dict | ast.Set | ast.ListComp
                                  | ast.DictComp | ast.SetComp), (
                f"{name}:{node.lineno} keeps a mutable {type(node.value).__name__} at module "
                "level: use a tuple or a frozenset")
