"""Replay of committed workflow histories, so a change to `SubscriptionChange` that running
workflows could not replay fails the suite instead of production (guard new code paths with
`workflow.patched(...)`).

The histories in tests/workflow/histories/ were recorded from real runs (real activities,
localstripe, SMTP) of representative changes: a charged seat increase, an offline change
approved by sales, a declined card parked in awaiting_support then cancelled, a charged change
compensated by a refund, and a repeated request answered from the recorded result. Replaying
them needs neither a server nor a database.

Re-record them (after an intended, patched change, or to add a scenario) with the command

    .venv/bin/python -m tests.workflow.record_histories [SCENARIO ...]

which runs the scenarios of tests/workflow/record_histories.py against the time-skipping
server and rewrites the JSON files; run this file again to replay the new ones and commit them
with the workflow change. Never re-record to make a failing replay pass: a failure means
workflows already running would break. After a patched change, keep the files recorded with the
code that is deployed too (`<scenario>_v1.json`, SCENARIOS_V1: the code that landed before issue
9's second session; `<scenario>_v2.json`, SCENARIOS_V2: before issue 10; `<scenario>_v3.json`,
SCENARIOS_V3: before the local steps), so the old and the new paths stay replayable.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from subchange.app.wiring import workflow_runner
from subchange.domain.contracts import workflow_id_for
from tests.workflow.record_histories import HISTORIES
from workflows.subscription_change import SubscriptionChange

SCENARIOS = ("completed_charge", "sales_approved", "support_cancel", "compensated_refund",
             "repeated_request", "rejected", "invalid_input", "sales_expired",
             "parked_retry_completed", "refund_ticket", "temporal_cancel_while_parked",
             "claim_taken_over")
# Each also as recorded with the code that landed before the patches of issue 9's second
# session (principals, the organisation's calendar, quoting again after a wait, ...): changes
# in flight then replay against this code.
SCENARIOS_V1 = tuple(f"{name}_v1" for name in SCENARIOS)
# And as recorded before the patch of issue 10 (upsert-only-changes: search attributes upserted
# at every step), with the taxed quotes of SPEC section 14.
SCENARIOS_V2 = tuple(f"{name}_v2" for name in SCENARIOS)
# And as recorded before the local steps (patch local-database-steps: open, authorize, quote and
# close ran as regular activities).
SCENARIOS_V3 = tuple(f"{name}_v3" for name in SCENARIOS)


async def committed_history(scenario: str) -> WorkflowHistory:
    """A history file, under the workflow id its run had (the workflow checks the id against
    the request, so replaying under another id would take another path)."""
    path = HISTORIES / f"{scenario}.json"
    assert path.exists(), f"{path} is missing; see this module's docstring to re-record it"
    text = path.read_text()
    started = WorkflowHistory.from_json("", text).events[0]
    arguments = await pydantic_data_converter.decode(
        started.workflow_execution_started_event_attributes.input.payloads)
    request = arguments[0] if len(arguments) == 1 else None
    if not isinstance(request, dict) or "request_id" not in request:
        return WorkflowHistory.from_json(f"change-replay-{scenario}", text)  # invalid input
    return WorkflowHistory.from_json(workflow_id_for(request["request_id"]), text)


# With the sandbox's context shortcut (SANDBOX_CONTEXT_SHORTCUT, the default) and without it.
@pytest.mark.parametrize("shortcut", [True, False], ids=["shortcut", "plain"])
@pytest.mark.parametrize("scenario", SCENARIOS + SCENARIOS_V1 + SCENARIOS_V2 + SCENARIOS_V3)
async def test_committed_history_replays(scenario: str, shortcut: bool):
    history = await committed_history(scenario)
    replayer = Replayer(workflows=[SubscriptionChange], data_converter=pydantic_data_converter,
                        workflow_runner=workflow_runner(pydantic_data_converter,
                                                        context_shortcut=shortcut))

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None
