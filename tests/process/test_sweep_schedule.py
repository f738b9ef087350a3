"""The reconciliation sweep is a Temporal Schedule an operator sees in the Web UI (Schedules):
worker.py registers it when it is missing and brings its interval to CHANGE_SWEEP_EVERY when it
differs, keeping a pause an operator set; `temporal schedule trigger` runs a sweep at once, which a
worker of the task queue completes. On the dev server, through what worker.py calls."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from datetime import timedelta

from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError

from subchange.adapters.workflows import running_among
from subchange.app.schedules import ensure_sweep_schedule
from subchange.app.wiring import build_worker
from subchange.domain.sweep import SWEEP_SCHEDULE_ID, SWEEP_WORKFLOW, SweepResult


async def test_the_worker_registers_the_sweep_schedule_and_keeps_its_interval(dev_env, deps):
    client, handle = dev_env.client, dev_env.client.get_schedule_handle(SWEEP_SCHEDULE_ID)
    with contextlib.suppress(RPCError):  # left by a worker.py of another test
        await handle.delete()
    queue = f"sweep-{uuid.uuid4().hex[:8]}"
    settings = deps.settings.model_copy(update={"task_queue": queue})
    try:
        assert await ensure_sweep_schedule(client, settings) == "created"
        assert await ensure_sweep_schedule(client, settings) is None  # as it should be already
        described = await handle.describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == (SWEEP_WORKFLOW, queue)
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=15)]
        assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP

        await handle.pause(note="an operator looks into something")
        faster = settings.model_copy(update={"change_sweep_every": timedelta(minutes=5)})
        assert await ensure_sweep_schedule(client, faster) == "updated"
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=5)]
        assert described.schedule.state.paused  # the operator's pause stays

        # Run now: the schedule starts a sweep, which a worker of the queue completes.
        worker_deps = dataclasses.replace(deps, settings=faster)
        async with build_worker(client, worker_deps, task_queue=queue):
            await handle.trigger()
            for _ in range(300):
                recent = (await handle.describe()).info.recent_actions
                if recent:
                    sweep = client.get_workflow_handle(recent[-1].action.workflow_id,
                                                       result_type=SweepResult)
                    if (await sweep.describe()).close_time is not None:
                        break
                await asyncio.sleep(0.1)
            result = await sweep.result()
        assert result.pages >= 1 and result.unsettled_count == 0
    finally:
        await handle.delete()


async def test_one_visibility_query_names_the_running_changes_of_a_page(dev_env):
    """The sweep lists a page's running changes in one query and describes only the others
    (activities/sweep.py): running ones are named, ended, unknown and unquotable ones are not."""
    client, run = dev_env.client, uuid.uuid4().hex[:8]
    queue = f"nobody-polls-{run}"  # no worker: a workflow started here stays running
    running = await client.start_workflow("SubscriptionChange", id=f"change-sweep-run-{run}",
                                          task_queue=queue)
    ended = await client.start_workflow("SubscriptionChange", id=f"change-sweep-end-{run}",
                                        task_queue=queue)
    await ended.terminate("ended from outside")
    page = [running.id, ended.id, f"change-sweep-none-{run}", f'change-"{run}']
    try:
        for _ in range(100):  # visibility is eventually consistent
            found = await running_among(client, page)
            if found == {running.id}:
                break
            await asyncio.sleep(0.1)
        assert found == {running.id}
    finally:
        await running.terminate("the test ended")
