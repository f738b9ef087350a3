"""The `ChangeSweep` workflow: the reconciliation sweep (SPEC section 11), started every
CHANGE_SWEEP_EVERY by the Temporal Schedule `subchange-sweep` that worker.py registers (or once by
`starter.py sweep`). It walks the change records without a result a page at a time, each page one
attempt of the `sweep_changes` step (activities/sweep.py), which settles the changes whose
workflow ended without closing them; a large backlog is many short attempts, not one long one.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from subchange.domain.limits import Budget
    from subchange.domain.sweep import (
        LISTED_AT_MOST,
        SWEEP_STEP,
        SWEEP_WORKFLOW,
        SweepInput,
        SweepPage,
        SweepPageInput,
        SweepResult,
    )

SWEEP_STEPS = (SWEEP_STEP,)
# A page settles up to its size of changes, each a few gateway requests and an email: bounded
# by the heartbeat (a worker that died is noticed within it), not by this.
PAGE_TIMEOUT = timedelta(minutes=30)
# A page that keeps failing (the database down) fails the sweep, visibly; the next one retries.
PAGE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=1), maximum_attempts=5)


@workflow.defn(name=SWEEP_WORKFLOW)
class ChangeSweep:
    @workflow.run
    async def run(self, sweep: SweepInput) -> SweepResult:
        result, after = SweepResult(), ""
        while True:
            page = await workflow.execute_activity(
                SWEEP_STEP, SweepPageInput(after=after, limit=sweep.page_size,
                                           sweep_id=workflow.info().workflow_id),
                result_type=SweepPage, start_to_close_timeout=PAGE_TIMEOUT,
                heartbeat_timeout=Budget().heartbeat, retry_policy=PAGE_RETRY,
                summary=f"changes after {after or 'the first'}")
            result.pages += 1
            result.settled_count += len(page.settled)
            result.settled.extend(page.settled[:LISTED_AT_MOST - len(result.settled)])
            result.unsettled_count += len(page.unsettled)
            result.unsettled.extend(page.unsettled[:LISTED_AT_MOST - len(result.unsettled)])
            if page.next_after is None:
                break
            after = page.next_after
        meter = workflow.metric_meter()
        meter.create_gauge(
            "subchange_sweep_unsettled",
            "changes ended without closing that the last sweep could not settle",
        ).set(result.unsettled_count)
        # Stamped, because each worker keeps the value of the last sweep it finished: with
        # several, a query reads the one of the latest sweep (deploy/prometheus/alerts.yml).
        meter.create_gauge("subchange_sweep_finished_at",
                           "when the sweep this worker last finished ended, unix seconds",
                           "s").set(int(workflow.now().timestamp()))
        return result
