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
    from subchange.domain.step_io import Admission, ParkedChange

from workflows.cancellation import Cancellation
from workflows.state import ChangeRun
from workflows.steps import RECORD_AWAITING_SUPPORT, Step
from workflows.versions import AWAITING_SUPPORT_EVENT

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")
WAIT_FOR_THE_ATTEMPT = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


class StepRunner:
    def __init__(self, state: ChangeRun, cancels: Cancellation) -> None:
        self.state = state
        self.cancels = cancels

    async def run(self, step: Step[ArgT, ResultT], arg: ArgT, *, advance: bool = True
                  ) -> ResultT:
        """The step's result once it succeeds; advances the lifecycle when the result admits the
        change (a rejection is the caller's to end with)."""
        result, _ = await self.run_refreshed(step, arg, advance=advance)
        return result

    async def run_refreshed(self, step: Step[ArgT, ResultT], arg: ArgT, *, advance: bool = True,
                            refresh: Callable[[ArgT], Awaitable[ArgT]] | None = None,
                            recover: Callable[[FailureError], Awaitable[bool]] | None = None
                            ) -> tuple[ResultT, ArgT]:
        """The step's result and the argument it succeeded with: `refresh` makes the argument
        again after the change waited (for support, or for payment), before the step is tried
        again. `recover` may take a failure over before the change parks: True when the step is
        to be tried again (payment recovery, workflows/payment_recovery.py), False to park."""
        state = self.state
        while True:
            if step.cancellable:
                await self.cancels.settle()
                self.cancels.raise_if_requested()
            started = workflow.now()
            state.begun.add(step.name)
            state.progress.begin(started, step.name)
            state.publish()
            try:
                result = await execute(step, arg)
            except asyncio.CancelledError:
                # A Temporal cancel that reached the workflow together with the attempt's end
                # (one workflow task): the SDK raises the cancel and keeps the outcome from us.
                # A step that takes money may have taken it.
                if step.policy.money_safe is not None:
                    state.money_at_risk = True
                raise
            except FailureError as error:  # ActivityError; a local step's own failure as it is
                if self.cancels.temporal_cancel_arrived():
                    # Cancelled through Temporal while the step ran: no parking, the cancel
                    # decides, knowing whether this attempt may have taken money.
                    _judge_money(state, step, error)
                    raise asyncio.CancelledError from error
                _judge_money(state, step, error)
                _record_duration(step.name, "failed", workflow.now() - started)
                if recover is not None and await recover(error):
                    retried = True
                else:
                    retried = await self._park(step, error)
                if retried and refresh is not None and not self.cancels.pending():
                    arg = await refresh(arg)  # (a cancel takes effect first)
                continue
            state.progress.done(workflow.now(), "ok")
            _record_duration(step.name, "ok", workflow.now() - started)
            admitted = not isinstance(result, Admission) or result.admitted
            if step.advances is not None and advance and admitted:
                state.advance(step.advances)
            return result, arg

    def retry_refusal(self) -> str | None:
        """Why the `retry` update is refused now, or None when it is accepted."""
        lifecycle = self.state.lifecycle
        if not (lifecycle.is_parked or lifecycle.is_awaiting_payment):
            return (f"nothing to retry: the change is {lifecycle.current.value}; retry applies "
                    "only to a change awaiting support or payment")
        if self.state.retry_requested:
            return "a retry is already under way"
        return None

    async def _park(self, step: Step, error: FailureError) -> bool:
        """Wait for support; True when they retried, False when a cancel woke the change."""
        message = _failure(error)[1]
        state, now = self.state, workflow.now()
        state.last_parked = step
        state.progress.fail(now, message)
        state.lifecycle.fire(Trigger.PARK)
        state.progress.wait(now, "support", f"support to retry {step.name} or cancel the change")
        state.publish()
        if AWAITING_SUPPORT_EVENT in state.patches:
            state.parks += 1
            await execute(RECORD_AWAITING_SUPPORT,
                           ParkedChange(step=step.name, error=message, park=state.parks))
        await workflow.wait_condition(
            lambda: state.retry_requested or (step.cancellable and self.cancels.pending()))
        retried = state.retry_requested
        state.progress.done(workflow.now(), "retry" if retried else "cancel")
        state.retry_requested = False
        state.lifecycle.fire(Trigger.RESUME)
        return retried


async def execute(step: Step[ArgT, ResultT], arg: ArgT) -> ResultT:
    """One run of the step's activity, with its retries: a local activity for a local step, a
    regular one otherwise. When Temporal cancels the change, a running attempt is waited for, so
    what it did is known (a charge may have gone through)."""
    if step.local:
        return await workflow.execute_local_activity(
            step.name, arg, result_type=step.result_type,
            start_to_close_timeout=step.policy.start_to_close, retry_policy=step.policy.retry,
            summary=step.summary(arg), cancellation_type=WAIT_FOR_THE_ATTEMPT)
    return await workflow.execute_activity(
        step.name, arg, result_type=step.result_type,
        start_to_close_timeout=step.policy.start_to_close, heartbeat_timeout=step.policy.heartbeat,
        retry_policy=step.policy.retry, summary=step.summary(arg),
        cancellation_type=WAIT_FOR_THE_ATTEMPT)


def _judge_money(state: ChangeRun, step: Step, error: FailureError) -> None:
    """Whether money may have moved, after a failure of a step that takes money; a failure of any
    other step (the refund's included) leaves what is known of the charge as it was."""
    if step.policy.money_safe is not None:
        state.money_at_risk = step.policy.may_have_moved_money(_failure(error)[0])


def _failure(error: FailureError) -> tuple[str | None, str]:
    """The error type and message of the innermost application error (or the timeout)."""
    cause: BaseException | None = error if isinstance(error, ApplicationError) else error.cause
    while cause is not None and cause.__cause__ is not None and not isinstance(cause,
                                                                              ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        kind = f"{cause.type}: " if cause.type else ""
        return cause.type, f"{kind}{cause.message}"
    return None, str(cause or error)


def _record_duration(step: str, outcome: str, duration: timedelta) -> None:
    """Time in each step (Prometheus histogram, replay-safe: the SDK skips it on replay)."""
    workflow.metric_meter().create_histogram_timedelta(
        "subchange_step_duration", "time spent in a step of a change", "ms").record(
        duration, {"step": step, "outcome": outcome})
