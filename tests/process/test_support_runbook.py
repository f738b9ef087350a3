"""The support runbook of docs/runbook.md, command by command, against the dev server and a worker
process: find the changes waiting for a person, read why, retry, cancel; and what the Web UI
shows of such a change (summary, details, current details, activity summaries)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata

from subchange.dev.devstack import binary
from tests.helpers.documents import SUPPORT
from tests.helpers.processes import WorkerProcess, park_a_change, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(process_env) -> dict[str, str]:
    return process_env("runbook")


@pytest.fixture(scope="module")
def worker(env, tmp_path_factory) -> Iterator[WorkerProcess]:
    with WorkerProcess(env, tmp_path_factory.mktemp("runbook") / "worker.log").running() as process:
        yield process


WAITING = 'ChangeStep IN ("awaiting_support", "awaiting_payment")'


def waiting_for_support(env: dict[str, str], org: str) -> list[str]:
    """The runbook's first command: `temporal workflow list` with the Web UI's filter of the
    changes waiting for a person (support, or a card that can pay)."""
    done = subprocess.run(
        [binary("temporal"), "workflow", "list", "--address", env["TEMPORAL_ADDRESS"],
         "--query", f'{WAITING} AND OrgId="{org}"', "--output", "json"],
        capture_output=True, text=True, check=True, timeout=30)
    return [item["execution"]["workflowId"] for item in json.loads(done.stdout or "[]")]


def eventually(probe, expected, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while (value := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    return value


def test_find_read_retry_and_cancel_a_stuck_change(env, worker, tmp_path):
    org, workflow_id = park_a_change(env, tmp_path)

    assert eventually(lambda: waiting_for_support(env, org), [workflow_id]) == [workflow_id]

    status = run_cli(env, "status", workflow_id)
    assert status.code == 0 and status.json["state"] == "awaiting_payment"
    assert "CardDeclined" in status.json["last_error"]

    retried = run_cli(env, "retry", workflow_id, "--by", SUPPORT)
    assert retried.code == 0 and "retrying charge" in retried.stdout
    assert eventually(lambda: sum(1 for step in run_cli(env, "status", workflow_id).json[
        "history"] if step["step"] == "charge" and step["outcome"] == "failed"), 2) == 2

    cancelled = run_cli(env, "cancel", workflow_id, "--by", SUPPORT)
    assert cancelled.code == 0 and "nothing was charged" in cancelled.stdout
    final = run_cli(env, "status", workflow_id).json
    assert final["result"]["status"] == "cancelled"
    assert eventually(lambda: waiting_for_support(env, org), []) == []


async def test_the_web_ui_tells_the_story_of_a_stuck_change(env, worker, dev_env, tmp_path):
    """The fields the Web UI shows, read the way it reads them: the static summary and details
    of the start, the workflow's current details, and each step's summary (a regular
    activity's, or the marker's of a local one)."""
    org, workflow_id = park_a_change(env, tmp_path)
    handle = dev_env.client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    assert await described.static_summary() == f"{org}/one: seats → 12 (by admin@{org}.example)"
    details = await described.static_details()
    assert f"`python starter.py status {workflow_id}`" in details
    assert f"`retry {workflow_id} --by EMAIL`" in details
    assert f"`cancel {workflow_id} --by EMAIL`" in details

    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    current = metadata.current_details
    assert "**State:** awaiting_payment" in current
    assert "**Waiting for:** payment: the charge is tried again in 1 day" in current
    assert "CardDeclined" in current

    converter = dev_env.client.data_converter
    summaries = [event.user_metadata.summary async for event in handle.fetch_history_events()
                 if event.HasField("activity_task_scheduled_event_attributes")
                 or event.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    texts = await converter.decode(summaries, [str] * len(summaries))
    assert texts[:4] == [f"open the change record of {workflow_id.removeprefix('change-')}",
                         f"is admin@{org}.example an active admin of {org}?",
                         f"check {org}/one: seats → 12 against the seat and plan rules",
                         f"price the change as of {described.start_time.date()}"]
    assert texts[4].startswith("charge ") and texts[4].endswith(" JPY to the card")
    assert run_cli(env, "cancel", workflow_id, "--by", SUPPORT).code == 0
