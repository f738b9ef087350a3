"""Replay of committed workflow histories, so a change to `SubscriptionChange` that running
workflows could not replay fails the suite instead of production (guard new code paths with
`workflow.patched(...)`).

The histories in tests/workflow/histories/ were recorded from real runs (real activities,
localstripe, SMTP) of representative changes: a charged seat increase, an offline change
approved by sales, a declined card parked in awaiting_support then cancelled, a charged change
compensated by a refund, and a repeated request answered from the recorded result. Replaying
them needs neither a server nor a database.

Regenerate them (after an intended, patched change, or to add a scenario) with:

    REGENERATE_HISTORIES=1 .venv/bin/pytest tests/workflow/test_committed_histories_replay.py -q

which runs the scenarios against the time-skipping server and rewrites the JSON files (the
replays then run on the new files); commit them with the workflow change. Never regenerate to
make a failing replay pass: a failure means workflows already running would break. After a
patched change, keep the old files too (e.g. as `<scenario>_v1.json` and add the name to
SCENARIOS), so both the old and the new path stay replayable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from subchange.app.wiring import workflow_runner
from subchange.domain.contracts import (
    CancelRequest,
    ChangeStatus,
    RetryRequest,
    SalesDecision,
    workflow_id_for,
)
from tests.helpers.documents import GOOD_CARD, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    request_for,
    start_declined_change,
    wait_for,
    wait_for_sales,
    wait_parked,
)
from workflows.subscription_change import SubscriptionChange

HISTORIES = Path(__file__).parent / "histories"
SCENARIOS = ("completed_charge", "sales_approved", "support_cancel", "compensated_refund",
             "repeated_request")
REGENERATE = os.environ.get("REGENERATE_HISTORIES") == "1"


# --- recording (REGENERATE_HISTORIES=1), before the replays that read the files -------------

async def _completed_charge(changes: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-charge")
    await load_suite(changes, org)
    handle = await changes.start(org, "one", f"admin@{org}.example",
                                 {"kind": "seats", "seats": 35})
    assert (await changes.settle(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _sales_approved(changes: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-sales")
    await load_suite(changes, org, card=None)
    handle = await changes.start(org, "one", f"admin@{org}.example",
                                 {"kind": "seats", "seats": 28})
    await wait_for_sales(handle)
    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by="sales@vendor.example"))
    assert (await changes.result(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _support_cancel(changes: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-cancel")
    handle = await start_declined_change(changes, org)
    await wait_parked(handle)
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by="support@x.example"))
    assert (await changes.result(handle)).status is ChangeStatus.CANCELLED
    return handle


async def _compensated_refund(changes: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-refund")
    handle = await start_declined_change(changes, org)
    await wait_parked(handle)
    await load_suite(changes, org, seats=31, card=GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest())
    await wait_for(handle, lambda v: v.state == "awaiting_support" and v.step == "apply_change",
                   "a failed apply")
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest())
    result = await changes.result(handle)
    assert result.status is ChangeStatus.CANCELLED and result.payment.refund_id
    return handle


async def _repeated_request(changes: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-again")
    await load_suite(changes, org)
    request = request_for(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 33})
    await changes.settle(await changes.start_request(request))
    handle = await changes.start_request(request)  # a second run of the same workflow id
    assert (await changes.settle(handle)).status is ChangeStatus.COMPLETED
    return handle


RECORDERS = {"completed_charge": _completed_charge, "sales_approved": _sales_approved,
             "support_cancel": _support_cancel, "compensated_refund": _compensated_refund,
             "repeated_request": _repeated_request}


@pytest.mark.skipif(not REGENERATE, reason="set REGENERATE_HISTORIES=1 to re-record histories")
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_record_history(changes, scenario: str):
    handle = await RECORDERS[scenario](changes)
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{scenario}.json").write_text(history.to_json())


# --- replay -----------------------------------------------------------------------------------

async def committed_history(scenario: str) -> WorkflowHistory:
    """A history file, under the workflow id its run had (the workflow checks the id against
    the request, so replaying under another id would take another path)."""
    path = HISTORIES / f"{scenario}.json"
    assert path.exists(), f"{path} is missing; see this module's docstring to regenerate it"
    text = path.read_text()
    started = WorkflowHistory.from_json("", text).events[0]
    [request] = await pydantic_data_converter.decode(
        started.workflow_execution_started_event_attributes.input.payloads, [dict])
    return WorkflowHistory.from_json(workflow_id_for(request["request_id"]), text)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_committed_history_replays(scenario: str):
    history = await committed_history(scenario)
    replayer = Replayer(workflows=[SubscriptionChange], data_converter=pydantic_data_converter,
                        workflow_runner=workflow_runner())

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None
