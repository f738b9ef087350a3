"""Running a step: its activity by name, with the step's timeouts and retries; when the retries
run out, the change parks in awaiting_support until support retries the step or cancels the
change. What a failure means (could money have moved?) comes from the step's policy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import Trigger
    from subchange.domain.step_io import Admission


# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.cancellation import FINISH_STEP_ON_TEMPORAL_CANCEL, Cancellation
from workflows.state import ChangeRun
from workflows.steps import Step
from workflows.versions import local_steps, patched

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


class StepRunner:
    def __init__(self, change: ChangeRun, cancellation: Cancellation) -> None:
        self.change = change
        self.cancellation = cancellation
        self.retry_requested = False
        self.last_parked: Step | None = None  # the step that failed for good last
        self.money_at_risk = False  # its failure may have taken money (a charge of unknown outcome)

    async def run(self, step: Step[ArgT, ResultT], arg: ArgT, *, advance: bool = True,
                  refresh: Callable[[ArgT], Awaitable[ArgT]] | None = None) -> ResultT:
        """The step's result once it succeeds; advances the lifecycle when the result admits the
        change (a rejection is the caller's to end with). `refresh` makes the argument again
        after the change waited for support, before the step is tried again."""
        change = self.change
        while True:
            if step.cancellable:
                await self.cancellation.settle()
                self.cancellation.raise_if_requested(change.lifecycle)
            started = workflow.now()
            change.progress.begin(started, step.name)
            change.publish()
            try:
                result = await _execute(step, arg)
            except FailureError as error:  # ActivityError; a local step's own failure as it is
                if self.cancellation.temporal_cancel_arrived():
                    # Cancelled through Temporal while the step ran: no parking, the cancel
                    # decides, knowing whether this attempt may have taken money.
                    self.money_at_risk = step.policy.may_have_moved_money(_failure(error)[0])
                    raise asyncio.CancelledError from error
                retried = await self._park(step, error, workflow.now() - started)
                if (retried and refresh is not None  # a cancel takes effect first
                        and not self.cancellation.pending(change.lifecycle)):
                    arg = await refresh(arg)
                continue
            change.progress.done(workflow.now(), "ok")
            _record_duration(step.name, "ok", workflow.now() - started)
            admitted = not isinstance(result, Admission) or result.admitted
            if step.advances is not None and advance and admitted:
                change.advance(step.advances)
            return result

    def retry_refusal(self) -> str | None:
        """Why the `retry` update is refused now, or None when it is accepted."""
        lifecycle = self.change.lifecycle
        if not lifecycle.is_parked:
            return (f"nothing to retry: the change is {lifecycle.current.value}; retry applies "
                    "only to a change awaiting support")
        if self.retry_requested:
            return "a retry is already under way"
        return None

    async def _park(self, step: Step, error: FailureError, spent: timedelta) -> bool:
        """Wait for support; True when they retried, False when a cancel woke the change."""
        error_type, message = _failure(error)
        _record_duration(step.name, "failed", spent)
        self.last_parked = step
        self.money_at_risk = step.policy.may_have_moved_money(error_type)
        change, now = self.change, workflow.now()
        change.progress.fail(now, message)
        change.lifecycle.fire(Trigger.PARK)
        change.progress.wait(now, "support", f"support to retry {step.name} or cancel the change")
        change.publish()
        await workflow.wait_condition(
            lambda: self.retry_requested
            or (step.cancellable and self.cancellation.pending(change.lifecycle)))
        retried = self.retry_requested
        change.progress.done(workflow.now(), "retry" if retried else "cancel")
        self.retry_requested = False
        change.lifecycle.fire(Trigger.RESUME)
        return retried


async def _execute(step: Step[ArgT, ResultT], arg: ArgT) -> ResultT:
    """One run of the step's activity, with its retries: a local activity for a local step (in
    histories recorded with local steps: workflows/versions.py), a regular one otherwise."""
    cancellation_type = _cancellation_type()
    if step.local and local_steps():
        return await workflow.execute_local_activity(
            step.name, arg, result_type=step.result_type,
            start_to_close_timeout=step.policy.start_to_close, retry_policy=step.policy.retry,
            summary=step.summary(arg), cancellation_type=cancellation_type)
    return await workflow.execute_activity(
        step.name, arg, result_type=step.result_type,
        start_to_close_timeout=step.policy.start_to_close, heartbeat_timeout=step.policy.heartbeat,
        retry_policy=step.policy.retry, summary=step.summary(arg),
        cancellation_type=cancellation_type)


def _cancellation_type() -> ActivityCancellationType:
    """Wait for a running attempt to end when Temporal cancels the change, so what it did is
    known (a charge may have gone through); histories from before this patch did not wait."""
    if patched(FINISH_STEP_ON_TEMPORAL_CANCEL):
        return ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
    return ActivityCancellationType.TRY_CANCEL


def _failure(error: FailureError) -> tuple[str | None, str]:
    """The error type and message of the innermost application error (or the timeout)."""
    cause: BaseException | None = error if isinstance(error, ApplicationError) else error.cause
    while cause is not None and cause.cause is not None and not isinstance(cause,
                                                                          ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        kind = f"{cause.type}: " if cause.type else ""
        return cause.type, f"{kind}{cause.message}"
    return None, str(cause or error)


def _record_duration(step: str, outcome: str, duration: timedelta) -> None:
    """Time in each step (Prometheus histogram, replay-safe: the SDK skips it on replay)."""
    workflow.metric_meter().create_histogram_timedelta(
        "subchange_step_duration", "time spent in a step of a change", "ms").record(
        duration, {"step": step, "outcome": outcome})
