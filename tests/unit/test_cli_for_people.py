"""The `subchange` command as support staff meet it: its version, a --help that names the exit
codes and gives an example for every command, shell completion of commands and values, text
output for people beside the JSON for scripts, and options refused by name before anything is
sent."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from subchange.app import cli
from subchange.app.cli.common import as_text
from subchange.dev.devstack import ROOT

SUBCHANGE = str(Path(sys.executable).parent / "subchange")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([SUBCHANGE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, check=False)


def test_the_console_script_says_its_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"subchange {project['version']}" == (
        f"subchange {version('subchange')}")
    assert project["scripts"]["subchange"] == "subchange.app.cli:run"


def every_command(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = list(every_command(sub, (*path, name)))
                yield from nested or [((*path, name), sub)]


def test_help_names_the_exit_codes_and_every_command_has_an_example(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    top = capsys.readouterr().out
    for code in ("0  done", "1  a change that ended otherwise", "2  bad input",
                 "3  change --wait", "4  change --wait"):
        assert code in top, top
    assert "subchange list --step awaiting_support --output text" in top
    commands = dict(every_command(cli.build_parser()))
    assert {("list",), ("retry",), ("completion",), ("webhook", "replay"),
            ("api-key", "create")} <= set(commands)
    for path, parser in commands.items():
        help_text = parser.format_help()
        assert f"\n  subchange {' '.join(path)}" in help_text, (path, help_text)
        assert "exit codes: 0 done, 1 failed or refused, 2 bad input" in help_text, path
    assert "4 --wait: it is scheduled" in commands[("change",)].format_help()


def complete(line: str) -> list[str]:
    """What the shell gets back for `line` (argcomplete's protocol, as its bash code asks)."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"complete-{os.getpid()}.txt"
    try:
        done = run(_ARGCOMPLETE="1", _ARGCOMPLETE_SHELL="bash", COMP_LINE=line,
                   COMP_POINT=str(len(line)), COMP_TYPE="9", _ARGCOMPLETE_IFS="\n",
                   _ARGCOMPLETE_STDOUT_FILENAME=str(out))
        assert done.returncode == 0, done.stderr
        return out.read_text().split()
    finally:
        out.unlink(missing_ok=True)


def test_the_shell_completes_commands_and_their_values():
    assert complete("subchange li") == ["list"]
    assert complete("subchange list --step awaiting_") == [
        "awaiting_sales", "awaiting_support", "awaiting_payment"]
    assert "--org" in complete("subchange list --")
    code = run("completion", "bash")
    assert code.returncode == 0 and "complete " in code.stdout and "subchange" in code.stdout


def test_text_output_is_a_table_for_lists_and_lines_for_one_thing():
    listed = as_text([{"workflow_id": "change-a", "step": "awaiting_support", "closed_at": None},
                      {"workflow_id": "change-bb", "step": "completed", "closed_at": "2026"}])
    assert listed.splitlines() == ["WORKFLOW_ID  STEP              CLOSED_AT",
                                   "change-a     awaiting_support  -",
                                   "change-bb    completed         2026"]
    one = as_text({"state": "awaiting_support", "waiting_for": None,
                   "history": [{"step": "charge", "outcome": "failed"}],
                   "result": {"status": "completed", "invoice": {"number": "INV-1"}}})
    assert one.splitlines() == ["state: awaiting_support", "waiting_for: -", "history:",
                                "  STEP    OUTCOME", "  charge  failed", "result:",
                                "  status: completed", "  invoice:", "    number: INV-1"]
    assert as_text([]) == "(none)"
    assert as_text({"started_at": "2026-12-07T06:12:40.801146Z",
                    "effective_at": "2027-01-01T00:00:00+09:00"}).splitlines() == [
        "started_at: 2026-12-07 06:12:40Z", "effective_at: 2027-01-01 00:00:00+09:00"]


@pytest.mark.parametrize(("args", "named"), [
    (["list", "--org", "acme corp"], "--org"),
    (["list", "--limit", "0"], "--limit"),
    (["list", "--step", "stuck"], "--step"),
    (["list", "--output", "yaml"], "--output"),
])
def test_a_bad_list_option_is_refused_by_name(capsys, args, named):
    try:
        code = cli.main(args)
    except SystemExit as exited:  # argparse's own refusals (a value outside the choices)
        code = exited.code
    assert code == 2
    assert named in capsys.readouterr().err


def test_a_server_that_is_not_there_is_named_by_its_variable():
    done = run("list", "--step", "awaiting_support", TEMPORAL_ADDRESS="127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.startswith("subchange list: TEMPORAL_ADDRESS: can't reach the Temporal "
                                  "server at 127.0.0.1:9"), done.stderr
