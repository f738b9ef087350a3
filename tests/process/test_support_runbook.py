"""The support runbook of docs/runbook.md, command by command, against the dev server and a worker
process: find the changes waiting for a person, read why, retry, cancel; and what the Web UI
shows of such a change (summary, details, current details, activity summaries)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata

from subchange.dev.devstack import binary
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    GOOD_CARD,
    SUPPORT,
    admin_email,
    org_document,
    write_fixture,
)
from tests.helpers.processes import CliResult, WorkerProcess, change_args, park_a_change, run_cli

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


def subchange(env: dict[str, str], *args: str) -> CliResult:
    """The `subchange` console script the install puts beside the interpreter."""
    done = subprocess.run([str(Path(sys.executable).parent / "subchange"), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return CliResult(done.returncode, done.stdout, done.stderr)


def test_support_finds_a_stuck_change_by_its_step_and_retries_it(env, worker, tmp_path):
    """The issue's words: `subchange list --step awaiting_support`, then `subchange retry`. The
    organisation's card is declined and its payment schedule is one retry a second later, so
    the change is soon waiting for support; once the customer has a working card on file,
    support's retry completes it."""
    org = f"stuck-{uuid.uuid4().hex[:6]}"

    def fixture(card: str) -> str:
        document = org_document(org, users=[{"email": admin_email(org), "role": "admin",
                                             "products": ["one"]}],
                                subscriptions=[{"product": "one", "plan": "enterprise",
                                                "seats": 10, "pricing_model": "flexible_user",
                                                "card": card}])
        document["orgs"][0]["payment_retry_schedule"] = "PT1S"
        return str(write_fixture(tmp_path / f"{org}-{card}.json", document))

    assert subchange(env, "load", fixture(DECLINED_ON_CHARGE_CARD)).code == 0
    started = subchange(env, *change_args(org, "one", "--seats", "12", "--wait"))
    assert started.code == 3, started
    workflow_id = started.json["workflow_id"]

    def stuck() -> list[str]:
        found = subchange(env, "list", "--step", "awaiting_support", "--org", org)
        assert found.code == 0, found
        return [item["workflow_id"] for item in found.json]

    assert eventually(stuck, [workflow_id], timeout=30) == [workflow_id]
    shown = subchange(env, "list", "--step", "awaiting_support", "--org", org,
                      "--output", "text")
    heading, row = shown.stdout.splitlines()
    assert heading.split() == ["WORKFLOW_ID", "REQUEST_ID", "ORG_ID", "PRODUCT", "KIND", "STEP",
                               "STATUS", "STARTED_AT", "CLOSED_AT"], shown
    assert row.split()[:7] == [workflow_id, workflow_id.removeprefix("change-"), org, "one",
                               "seats", "awaiting_support", "running"], shown
    why = subchange(env, "status", workflow_id, "--output", "text")
    assert why.code == 0 and "state: awaiting_support" in why.stdout, why
    assert "CardDeclined" in why.stdout, why

    assert subchange(env, "load", fixture(GOOD_CARD)).code == 0  # the customer's new card
    retried = subchange(env, "retry", workflow_id, "--by", SUPPORT)
    assert retried.code == 0, retried
    done = eventually(lambda: subchange(env, "status", workflow_id).json.get("state"),
                      "completed", timeout=30)
    assert done == "completed"
    assert eventually(stuck, []) == []
    assert subchange(env, "list", "--org", org, "--status", "completed").json[0][
        "workflow_id"] == workflow_id
