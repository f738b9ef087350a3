"""A cancel, in one place: whether it is accepted (the `cancel` update, or a cancellation through
Temporal: the Web UI's Request Cancellation, `temporal workflow cancel`), where it takes effect (at
the next step boundary, or at once in a wait), and what it costs then (`cost`): nothing to undo, a
refund first, or nothing at all because it came too late. The workflow catches a cancel once, in
`run`, and compensates by the cost (workflows/subscription_change.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import Enum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeState
    from subchange.domain.contracts import CancelRequest

from workflows.state import CancelOutcome, ChangeRun
from workflows.steps import APPLY_CHANGE

TEMPORAL_CANCEL = "cancellation requested through Temporal"


class CancelRequested(Exception):
    """Raised where a cancel takes effect: at a step boundary, or in a wait."""


class Cost(Enum):
    """What a cancel that reaches the compensation costs (its value is the audit log's outcome)."""

    ENDING_DECIDED = "too late: ending decided"  # that ending stands
    APPLIED = "too late: applied"  # the change is finished: the invoice still goes out
    MAYBE_APPLIED = "apply unknown"  # an apply began: the database says whether it committed
    REFUND = "refund first"  # charged, or a charge of unknown outcome
    NOTHING = "nothing to undo"


class Cancellation:
    def __init__(self, state: ChangeRun) -> None:
        self.state = state
        self.lock = asyncio.Lock()  # one `cancel` update at a time

    # --- accepting -------------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why the `cancel` update is refused now, or None when it is accepted."""
        state = self.state
        if state.ended is not None:
            return f"can't cancel: the change has already ended ({state.ended})"
        if state.cancel is not None:
            return "a cancel is already under way"
        parked = state.last_parked
        if state.lifecycle.is_parked and parked is not None and not parked.cancellable:
            return (f"can't cancel: {parked.name} finishes a change that has already been "
                    "decided; retry it instead")
        refusal = state.lifecycle.cancel_refusal()
        return f"can't cancel: {refusal}" if refusal is not None else None

    async def receive(self, request: CancelRequest, vet: Callable[[], Awaitable[None]]
                      ) -> CancelOutcome:
        """The `cancel` update's course: `vet` checks the sender (the staff directory) and then
        the change's state again, which may have moved on meanwhile, or while this cancel waited
        behind another; then the cancel is accepted and its outcome awaited."""
        async with self.lock:
            self.state.cancel_checks += 1  # the next step waits for the verdict (`settle`)
            try:
                await vet()
                self._accept(request)
            finally:
                self.state.cancel_checks -= 1
            await workflow.wait_condition(lambda: self.state.cancel_outcome is not None)
            outcome = self.state.cancel_outcome
            assert outcome is not None
            return outcome

    def replaced(self, by: str) -> None:
        """Another scheduled change took this one's slot (SPEC section 10): it ends cancelled,
        naming its replacement, unless it has ended or a cancel is already under way."""
        if self.refusal() is None:
            self._accept(CancelRequest(reason=f"replaced by the scheduled change {by}"))

    def _accept(self, request: CancelRequest) -> None:
        self.state.cancel, self.state.cancel_outcome = request, None

    # --- taking effect ---------------------------------------------------------------------

    def pending(self) -> bool:
        """An accepted cancel that still fits the lifecycle, so it takes effect when it can."""
        return self.state.cancel is not None and self.state.lifecycle.cancel_refusal() is None

    async def settle(self) -> None:
        """Before a step of an open change starts, wait for the check of a cancel's sender under
        way, so a cancel sent before the step starts is decided before it starts (local steps
        leave the staff directory no time to answer first). Not before the change is open: a
        repeated request ends as its earlier run did."""
        if self.state.cancel_checks and self.state.opened:
            await workflow.wait_condition(lambda: not self.state.cancel_checks)

    def raise_if_requested(self) -> None:
        """At a step boundary, a pending cancel takes effect, a Temporal one too."""
        if self.temporal_cancel_arrived():
            self.take_temporal_cancel()
        if self.pending():
            raise CancelRequested

    async def wait(self, until: Callable[[], bool], *, timeout: timedelta | None = None,
                   timeout_summary: str | None = None) -> None:
        """A durable wait that a cancel ends at once: CancelRequested when a cancel was accepted
        before `until` held (a cancel and `until` in one workflow task: the cancel wins),
        TimeoutError at the timeout. A Temporal cancel arriving during the wait raises
        asyncio.CancelledError; one that arrived with the end of the step before it (the SDK
        then lets the step's result through) is taken here, as at a step boundary."""
        self.raise_if_requested()
        await workflow.wait_condition(lambda: until() or self.pending(), timeout=timeout,
                                      timeout_summary=timeout_summary)
        self.raise_if_requested()

    def temporal_cancel_unrecorded(self) -> bool:
        """A cancellation through Temporal arrived that the audit log does not hold yet."""
        return (workflow.cancellation_reason() is not None
                and not self.state.temporal_cancel_recorded)

    def temporal_cancel_arrived(self) -> bool:
        """A cancellation through Temporal that arrived while a step ran, not acted on yet."""
        return (not self.state.temporal_cancel_taken
                and workflow.cancellation_reason() is not None)

    def take_temporal_cancel(self) -> None:
        """Act on a Temporal cancel, if one arrived, like on the `cancel` update."""
        if workflow.cancellation_reason() is None:
            return
        self.state.temporal_cancel_taken = True
        if self.state.cancel is None:
            self._accept(CancelRequest(reason=TEMPORAL_CANCEL))

    # --- what it costs ---------------------------------------------------------------------

    def cost(self) -> Cost:
        state = self.state
        if state.finishing is not None:
            return Cost.ENDING_DECIDED
        if state.applied is not None:
            return Cost.APPLIED
        if APPLY_CHANGE.name in state.begun:  # an attempt began, and none was seen to commit
            return Cost.MAYBE_APPLIED
        return self.cost_in_money()

    def cost_in_money(self) -> Cost:
        """The cost of a cancel of a change that was not applied."""
        return Cost.REFUND if self.refund_owed() else Cost.NOTHING

    def charged(self) -> bool:
        """The charge went through, as far as the lifecycle knows."""
        return (self.state.lifecycle.effective is ChangeState.CHARGED
                and self.state.payment is not None)

    def refund_owed(self) -> bool:
        return self.charged() or self.state.money_at_risk

    # --- its outcome, which the update reports ---------------------------------------------

    def succeeded(self, message: str) -> None:
        self.state.cancel_outcome = CancelOutcome(message, took_effect=True)

    def too_late(self, reached: str) -> None:
        """The change reached `reached` before an accepted cancel could take effect: the cancel
        is refused and forgotten, so it wakes no parked step and a later one is judged anew."""
        state = self.state
        if state.cancel is not None and state.cancel_outcome is None:
            state.cancel_outcome = CancelOutcome(
                f"too late: the change was {reached} before the cancel took effect",
                took_effect=False)
            state.cancel = None
