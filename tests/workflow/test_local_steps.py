"""The short database steps (open, authorize, quote, close, and the record of a park for the
webhooks) run as local activities: the worker
runs them inside the workflow task and records a marker, instead of a round trip through the
server for each. What an operator reads must not change: the history still names every step, in
order, with its summary, and a change stopped in the middle of a local step can still be read.
Their failures park the change like any step's (tests/workflow/test_support_retry_and_cancel.py
and the others that make a local step fail)."""

from __future__ import annotations

import ast
import asyncio
import json
import threading
import time
from pathlib import Path

from temporalio import activity
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from activities.admission import AdmissionActivities
from activities.dependencies import Dependencies
from activities.principals import PrincipalActivities
from subchange.domain.contracts import CancelRequest, ChangeRequest, ChangeStatus
from subchange.domain.step_io import Admission, PrincipalCheck, PrincipalVerdict
from tests.helpers.documents import SUPPORT, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    status_of,
)
from tests.helpers.observers import assert_untouched
from workflows import versions
from workflows.steps import STEPS
from workflows.subscription_change import SubscriptionChange

LOCAL_STEPS = {"open_change", "authorize_admin", "quote_change", "close_change",
               "record_awaiting_support", "record_awaiting_payment"}


def steps_in(history: WorkflowHistory) -> list[tuple[str, str, str]]:
    """(step, how it ran, its summary) for every step the history records, in order."""
    found = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            found.append((name, "activity", summary_of(event)))
        elif event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            details = event.marker_recorded_event_attributes.details
            name = json.loads(details["data"].payloads[0].data)["activity_type"]
            found.append((name, "local", summary_of(event)))
    return found


def patch_markers_in(history: WorkflowHistory) -> list[str]:
    return [json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0]
                       .data)["id"]
            for event in history.events
            if event.marker_recorded_event_attributes.marker_name == "core_patch"]


def modules_asking_for_patches() -> set[str]:
    """The workflow modules that call `workflow.patched` themselves."""
    asking = set()
    for path in Path(versions.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "patched"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "workflow"):
                asking.add(path.name)
    return asking


def summary_of(event: HistoryEvent) -> str:
    summary = event.user_metadata.summary
    return json.loads(summary.data) if summary.data else ""


def test_the_short_database_steps_are_the_local_ones():
    assert {step.name for step in STEPS if step.local} == LOCAL_STEPS


async def test_the_history_names_every_step_local_ones_too(driver: ChangeDriver):
    org = unique_org("local-steps")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=33)
    result = await driver.settle(handle)
    assert result.status is ChangeStatus.COMPLETED

    steps = steps_in(await handle.fetch_history())

    assert [name for name, _, _ in steps] == [
        "open_change", "authorize_admin", "validate_change", "quote_change", "charge",
        "apply_change", "email_invoice", "close_change"]
    assert {name for name, how, _ in steps if how == "local"} == LOCAL_STEPS - {
        "record_awaiting_support", "record_awaiting_payment"}  # it never waited
    summaries = {name: summary for name, _, summary in steps}
    assert summaries["open_change"] == f"open the change record of {result.request_id}"
    assert summaries["authorize_admin"] == f"is admin@{org}.example an active admin of {org}?"
    assert summaries["quote_change"].startswith("price the change as of ")
    assert summaries["close_change"] == "close_change"


async def test_a_change_takes_its_patches_before_its_first_local_step(driver: ChangeDriver):
    """A patch first asked after a local step could answer otherwise on replay
    (workflows/versions.py): a new change takes every patch of its release at its start, before
    its first local step, and no module but versions.py asks for one."""
    assert modules_asking_for_patches() == {"versions.py"}
    org = unique_org("local-patches")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=33)
    await driver.settle(handle)
    history = await handle.fetch_history()

    first_local = next(index for index, event in enumerate(history.events)
                       if event.marker_recorded_event_attributes.marker_name
                       == "core_local_activity")
    taken = patch_markers_in(WorkflowHistory(handle.id, history.events[:first_local]))
    assert taken == list(versions.DEPRECATED + versions.PATCHES)
    assert patch_markers_in(history) == taken  # none later


async def test_a_cancel_sent_before_a_step_starts_is_decided_before_it_starts(
        driver_with_stand_ins, deps: Dependencies, gateway, mailbox):
    """The staff directory takes its time to say that support may cancel, while the change's
    local steps race ahead: the next step waits for the verdict, so nothing is charged (the
    charge would otherwise start and be refunded)."""
    directory = PrincipalActivities(deps)

    @activity.defn(name="authorize_principal")
    def slow_directory(check: PrincipalCheck) -> PrincipalVerdict:
        time.sleep(1.5)
        return directory.authorize_principal(check)

    driver = await driver_with_stand_ins(authorize_principal=slow_directory)
    org = unique_org("slow-directory")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    ack = await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    result = await driver.result(handle)

    assert ack.message == "cancelled; nothing was charged or changed"
    assert (result.status, result.payment) == (ChangeStatus.CANCELLED, None)
    assert_untouched(deps, gateway, mailbox, org)


async def test_a_change_terminated_in_a_local_step_can_still_be_read(
        driver_with_stand_ins, deps: Dependencies):
    """Terminated while the worker runs its local authorize step: the history ends inside a
    workflow task that never completed, and the status query replays what it holds."""
    started, release = threading.Event(), threading.Event()
    admission = AdmissionActivities(deps)

    @activity.defn(name="authorize_admin")
    def held_authorize(request: ChangeRequest) -> Admission:
        started.set()
        release.wait(timeout=15)
        return admission.authorize_admin(request)

    driver = await driver_with_stand_ins(authorize_admin=held_authorize)
    org = unique_org("local-terminated")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=33)
    assert await asyncio.to_thread(started.wait, 15), "authorize never started"
    await handle.terminate(reason="test: stopped in a local step")
    release.set()

    view = await status_of(handle)

    # What the last completed workflow task recorded: the open step's marker was not sent yet
    # (the task still ran the authorize step), so the replay stops in open_change.
    assert view.step in ("open_change", "authorize_admin") and view.result is None
    assert (await handle.describe()).status.name == "TERMINATED"
