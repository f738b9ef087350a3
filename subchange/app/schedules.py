"""The Temporal Schedule of the reconciliation sweep (`subchange-sweep`, SPEC section 11):
registered by worker.py when it is missing, its interval and task queue brought to this worker's
settings when they differ (idempotent, like the search attributes), visible and pausable in the
Web UI (Schedules) and with `temporal schedule ...`."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from subchange.domain.sweep import SWEEP_SCHEDULE_ID, SWEEP_WORKFLOW, SweepInput
from subchange.settings import Settings

# A sweep that has not started within this of its time (the server was down) is skipped: the
# next one does the same work.
CATCHUP_WINDOW = timedelta(minutes=1)
SWEEP_TIMEOUT = timedelta(hours=1)


def sweep_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_WORKFLOW, SweepInput(), id=SWEEP_SCHEDULE_ID, task_queue=settings.task_queue,
            execution_timeout=SWEEP_TIMEOUT,
            static_summary="settle the changes whose workflow ended without closing them"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.change_sweep_every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
    )


async def ensure_sweep_schedule(client: Client, settings: Settings) -> str | None:
    """Create the sweep's schedule, or update its interval and task queue to these settings;
    "created", "updated", or None when it was as they say already."""
    try:
        await client.create_schedule(SWEEP_SCHEDULE_ID, sweep_schedule(settings))
        return "created"
    except ScheduleAlreadyRunningError:
        pass
    changed = False

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal changed
        schedule = current.description.schedule
        action = schedule.action
        intervals = [interval.every for interval in schedule.spec.intervals]
        same_queue = (isinstance(action, ScheduleActionStartWorkflow)
                      and action.task_queue == settings.task_queue)
        if intervals == [settings.change_sweep_every] and same_queue:
            changed = False
            return None
        changed = True
        wanted = sweep_schedule(settings)
        schedule.spec, schedule.action = wanted.spec, wanted.action  # its state (paused) stays
        return ScheduleUpdate(schedule=schedule)

    try:
        await client.get_schedule_handle(SWEEP_SCHEDULE_ID).update(update)
    except RPCError as error:  # deleted meanwhile: the next start creates it
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return None
    return "updated" if changed else None
