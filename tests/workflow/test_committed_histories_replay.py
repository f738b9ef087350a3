"""Replay of committed workflow histories, so a change to `SubscriptionChange` that running
workflows could not replay fails the suite instead of production.

tests/workflow/histories/<release>/ holds one history per ending of that release's code, recorded
from real runs (real activities, localstripe, SMTP): a charged seat increase, an offline change
approved by sales, a declined card parked in awaiting_support then cancelled, a charged change
compensated by a refund, a repeated request answered from the recorded result, and the rest of
record_histories.RECORDERS. Replaying them needs neither a server nor a database. v1.0.0 is the
release baseline (the git tag): every release replays the histories of each release whose changes
may still be
running when it is deployed (the policy: docs/architecture.md, "Versioning").

A change of behaviour that running changes must not see is a patch (workflows/versions.py), and
the release that brings it records its own directory:

    .venv/bin/python -m tests.workflow.record_histories [SCENARIO ...]

runs the scenarios of tests/workflow/record_histories.py against the time-skipping server and
writes tests/workflow/histories/v<pyproject version>/; commit them with the change. Never
re-record an older release's files to make a failing replay pass: a failure means changes
already running would break.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from subchange.app.wiring import workflow_runner
from subchange.domain.contracts import workflow_id_for
from tests.workflow.record_histories import HISTORIES, RECORDERS, RELEASE
from workflows.subscription_change import SubscriptionChange

COMMITTED = tuple(sorted(HISTORIES.glob("v*/*.json")))


async def committed_history(path: Path) -> WorkflowHistory:
    """A history file, under the workflow id its run had (the workflow checks the id against
    the request, so replaying under another id would take another path)."""
    text = path.read_text()
    started = WorkflowHistory.from_json("", text).events[0]
    arguments = await pydantic_data_converter.decode(
        started.workflow_execution_started_event_attributes.input.payloads)
    request = arguments[0] if len(arguments) == 1 else None
    if not isinstance(request, dict) or "request_id" not in request:  # invalid input
        return WorkflowHistory.from_json(f"change-replay-{path.stem}", text)
    return WorkflowHistory.from_json(workflow_id_for(request["request_id"]), text)


def test_this_release_has_a_history_of_every_ending():
    recorded = {path.stem for path in (HISTORIES / RELEASE).glob("*.json")}
    assert recorded == set(RECORDERS), (
        f"tests/workflow/histories/{RELEASE}/ lacks {sorted(set(RECORDERS) - recorded)}: record "
        "them (this module's docstring)")


# With the sandbox's context shortcut (SANDBOX_CONTEXT_SHORTCUT, the default) and without it.
@pytest.mark.parametrize("shortcut", [True, False], ids=["shortcut", "plain"])
@pytest.mark.parametrize("path", COMMITTED,
                         ids=[f"{path.parent.name}/{path.stem}" for path in COMMITTED])
async def test_committed_history_replays(path: Path, shortcut: bool):
    history = await committed_history(path)
    replayer = Replayer(workflows=[SubscriptionChange], data_converter=pydantic_data_converter,
                        workflow_runner=workflow_runner(pydantic_data_converter,
                                                        context_shortcut=shortcut))

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None
