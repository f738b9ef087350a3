"""The layers of the code hold: imports only go down (the domain and the state machines at the
bottom, then configuration, storage/adapters/documents, activities and workflows, the app, the dev
stack), with no circle; the workflow and `starter.py` load no database, gateway, SMTP or PDF code;
and every step the workflows call by name is an activity the worker registers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from temporalio import activity

from activities.dependencies import Dependencies
from activities.registry import all_activities
from workflows.steps import STEPS
from workflows.sweep import SWEEP_STEPS
from workflows.webhook_relay import RELAY_STEPS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("subchange", "workflows", "activities", "state_machines")
SCRIPTS = ("worker", "starter", "api")
# Bottom to top: a module may import its own layer and the layers below it.
LAYERS = (
    ("subchange.domain", "state_machines"),
    ("subchange.payload_keys", "subchange.settings", "subchange.faults"),
    ("subchange.store", "subchange.adapters", "subchange.documents"),
    ("activities", "workflows"),
    ("subchange.app", "worker", "starter"),
    ("subchange.api", "api"),
    ("subchange.dev",),
)
# The workflow runs in the sandbox and replays: it must not reach for I/O code at all.
WORKFLOW_MAY_NOT_IMPORT = ("subchange.store", "subchange.adapters", "subchange.documents",
                           "activities")
IO_LIBRARIES = ("sqlmodel", "sqlalchemy", "stripe", "smtplib", "fpdf", "aiosmtpd", "alembic")


def project_modules() -> dict[str, Path]:
    modules = {name: ROOT / f"{name}.py" for name in SCRIPTS}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports anywhere in its body (function-level imports too)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules)
    found.discard(name)
    return found


def layer_of(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return index
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS")


def test_imports_only_go_down_and_the_workflow_reaches_no_io_code():
    modules = project_modules()
    upward, from_workflow = [], []
    for name, path in modules.items():
        for target in imports_of(name, path, modules):
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} -> {target}")
            if name.startswith("workflows") and target.startswith(WORKFLOW_MAY_NOT_IMPORT):
                from_workflow.append(f"{name} -> {target}")
    assert upward == []
    assert from_workflow == []


def test_no_import_circle():
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    visiting, done, circles = set(), set(), []

    def visit(name: str, trail: list[str]) -> None:
        if name in done:
            return
        if name in visiting:
            circles.append(" -> ".join([*trail[trail.index(name):], name]))
            return
        visiting.add(name)
        for target in sorted(graph[name]):
            visit(target, [*trail, name])
        visiting.discard(name)
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert circles == []


def loaded_after(code: str, *args: str) -> set[str]:
    """Top-level names of the I/O libraries a fresh interpreter has imported after `code`."""
    script = (f"import sys\n{code}\n"
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), flush=True)\n"
              # the Temporal client's threads can abort finalisation (see starter.py)
              "import os\nos._exit(0)")
    run = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return set(run.stdout.split()) & set(IO_LIBRARIES)


def test_the_workflow_and_starter_help_load_no_io_library():
    assert loaded_after("import workflows.subscription_change") == set()
    assert loaded_after("import workflows.webhook_relay") == set()
    assert loaded_after("import workflows.sweep") == set()
    help_run = ("import runpy\nsys.argv = ['starter.py', '--help']\n"
                "try:\n    runpy.run_path('starter.py', run_name='not_main')\n"
                "    from subchange.app import cli\n    cli.build_parser().format_help()\n"
                "except SystemExit:\n    pass")
    assert loaded_after(help_run) == set()


def test_starting_a_change_loads_no_io_library():
    """`starter.py change` without --wait is what a backend's script runs for every change: it
    starts a workflow, and pays for no database, gateway, SMTP or PDF code (against a server
    that isn't there, it stops at the connection, after everything it imports)."""
    change_run = ("import os\nos.environ['TEMPORAL_ADDRESS'] = '127.0.0.1:9'\n"
                  "from subchange.app import cli\n"
                  "code = cli.main(['change', '--org', 'acme', '--product', 'one', '--by', "
                  "'admin@acme.example', '--seats', '12'])\nassert code == 1, code")
    assert loaded_after(change_run) == set()


def test_every_step_the_workflow_calls_is_a_registered_activity(deps: Dependencies):
    registered = {activity._Definition.must_from_callable(fn).name
                  for fn in all_activities(deps)}
    assert registered == {step.name for step in STEPS} | set(RELAY_STEPS) | set(SWEEP_STEPS)
