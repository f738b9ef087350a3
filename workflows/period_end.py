"""A change at the period end (SPEC section 10): quoted when requested, it takes the
subscription's one slot for a scheduled change and frees the subscription's claim (immediate
changes stay possible), waits durably until the start of the period end in the organisation's
time zone, then claims the subscription again and is judged anew (R1, R2, R3, R5, R7) against
it as it is then, and priced for the next period, which the workflow applies and invoices.

What the wait depends on is this module and the `status` query, nothing a patch of the
immediate path touches; a change may wait here a year (docs/architecture.md, "Versioning").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeState
    from subchange.domain.contracts import (
        ChangeRequest,
        PaymentRecord,
        Quote,
        ScheduledReplaced,
    )
    from subchange.domain.step_io import FireInput, ScheduleInput

from workflows.cancellation import Cancellation
from workflows.progress import describe_duration
from workflows.requote import QuoteNoLongerValid
from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import FIRE_SCHEDULED_CHANGE, SCHEDULE_CHANGE

REPLACED_SIGNAL = "scheduled_change_replaced"
BUSY = "change_in_progress"  # the subscription is held by another change when this one fires
FIRST_RETRY, LAST_RETRY = timedelta(minutes=1), timedelta(hours=1)


class PeriodEnd:
    def __init__(self, state: ChangeRun, runner: StepRunner, cancels: Cancellation) -> None:
        self.state = state
        self.runner = runner
        self.cancels = cancels

    async def wait_and_fire(self, request: ChangeRequest, quote: Quote
                            ) -> tuple[PaymentRecord, Quote]:
        """Schedule the change, wait for its period end, judge and price it again: the
        payment (none: nothing is charged now) and the quote to apply. A change no longer
        allowed raises QuoteNoLongerValid; a cancel, CancelRequested."""
        assert quote.effective_date is not None and quote.effective_at is not None
        scheduled = await self.runner.run(SCHEDULE_CHANGE,
                                          ScheduleInput(request=request, quote=quote))
        if not scheduled.admitted:
            raise QuoteNoLongerValid(scheduled.rejection)
        if scheduled.replaced is not None:
            await _tell_replaced(scheduled.replaced)
        self.state.fires_at = quote.effective_at
        await self._until_due(quote.effective_date)
        self.state.quote = fired = await self._fire(request, quote.effective_date)
        return PaymentRecord(method="none", currency=fired.currency), fired

    async def _until_due(self, effective_date: date) -> None:
        """Wait until `fires_at`, which the `reschedule` update may move (staging only)."""
        state = self.state
        while True:
            fires_at = state.fires_at
            assert fires_at is not None
            left = fires_at - workflow.now()
            state.progress.wait(workflow.now(), "period_end",
                                f"the period end: takes effect on {effective_date}, fires at "
                                f"{fires_at.isoformat()} (in {describe_duration(left)})")
            state.publish()
            if left <= timedelta(0):
                break
            def moved(at: datetime = fires_at) -> bool:  # `reschedule` moved this wait's end
                return state.fires_at != at

            try:
                await self.cancels.wait(moved, timeout=left, timeout_summary="the period end")
            except TimeoutError:
                break
            state.progress.done(workflow.now(), "rescheduled",
                                f"by {state.rescheduled_by}: fires at "
                                f"{state.fires_at.isoformat() if state.fires_at else '?'}")
        state.progress.done(workflow.now(), "due")

    async def _fire(self, request: ChangeRequest, effective_date: date) -> Quote:
        """Judged again as of now; while another change holds the subscription, tried again
        after a wait (1 minute, doubling up to an hour) that a cancel ends."""
        state, delay = self.state, FIRST_RETRY
        while True:
            fired = await self.runner.run(FIRE_SCHEDULED_CHANGE, FireInput(
                request=request, scheduled_for=effective_date, as_of=workflow.now()))
            if fired.replaced_by is not None:  # its signal was lost: the slot says so
                self.cancels.replaced(fired.replaced_by)
                self.cancels.raise_if_requested()
            if fired.admitted:
                assert fired.quote is not None
                return fired.quote
            if fired.rejection is None or fired.rejection.reason_code != BUSY:
                raise QuoteNoLongerValid(fired.rejection)
            state.progress.wait(workflow.now(), "subscription",
                                f"{fired.rejection.reason}; tried again in "
                                f"{describe_duration(delay)}")
            state.publish()
            try:
                await self.cancels.wait(lambda: False, timeout=delay,
                                        timeout_summary="the subscription's other change")
            except TimeoutError:
                pass
            state.progress.done(workflow.now(), "retry")
            delay = min(delay * 2, LAST_RETRY)

    # --- the reschedule update (staging only) -------------------------------------------------

    def reschedule_refusal(self) -> str | None:
        state = self.state
        if state.ended is not None or state.lifecycle.current is not ChangeState.SCHEDULED \
                or state.fires_at is None:
            return (f"nothing to reschedule: the change is {state.lifecycle.current.value}; "
                    "reschedule applies only to a change waiting for its period end")
        if state.cancel is not None:
            return "can't reschedule: a cancel is under way"
        return None

    def reschedule(self, at: datetime, by: str | None) -> None:
        self.state.fires_at, self.state.rescheduled_by = at, by


async def _tell_replaced(replaced: str) -> None:
    """Tell the change whose slot this one took that it is replaced, so it ends cancelled at
    once. Best effort: one that ended meanwhile needs no telling, and one that never hears
    finds its slot taken when it fires."""
    try:
        await workflow.get_external_workflow_handle(replaced).signal(
            REPLACED_SIGNAL, ScheduledReplaced(by=workflow.info().workflow_id))
    except FailureError:
        workflow.logger.info("the replaced scheduled change %s could not be told", replaced)
