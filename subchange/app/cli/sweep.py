"""`starter.py sweep`: run the reconciliation sweep now (the workflow the `subchange-sweep`
schedule starts, on a worker of the task queue) and print what it settled. Exit 1 when it found a
change it could not settle (named in `unsettled`; the next sweep tries again)."""

from __future__ import annotations

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from subchange.app.cli.common import EXIT_FAILED, EXIT_OK, emit, progress
from subchange.app.cli.inputs import SweepOptions
from subchange.app.client import connect
from subchange.app.schedules import SWEEP_TIMEOUT
from subchange.domain.sweep import SWEEP_SCHEDULE_ID, SWEEP_WORKFLOW, SweepInput, SweepResult
from subchange.settings import Settings

# One sweep from the command line at a time: a second command joins the one running.
MANUAL_SWEEP_ID = f"{SWEEP_SCHEDULE_ID}-now"


async def cmd_sweep(options: SweepOptions, settings: Settings) -> int:
    client = await connect(settings)
    progress(f"sweeping on task queue {settings.task_queue!r} (a worker runs it)")
    result = await client.execute_workflow(
        SWEEP_WORKFLOW, SweepInput(page_size=options.page_size), id=MANUAL_SWEEP_ID,
        task_queue=settings.task_queue, result_type=SweepResult,
        execution_timeout=SWEEP_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    emit(result)
    return EXIT_OK if result.unsettled_count == 0 else EXIT_FAILED
