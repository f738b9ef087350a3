"""The cancel rules of a change, in one place: when the `cancel` update is accepted, when an
accepted cancel takes effect (at the next step boundary, while nothing irreversible has happened),
and its outcome, which the update waits for and reports."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeLifecycle
    from subchange.domain.contracts import CancelRequest

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.steps import Step
from workflows.versions import local_steps, patched

# Workflows that recorded this patch let a step's attempt finish when Temporal cancels the change
# (its outcome decides whether there is money to refund) and act on the cancel at the next step
# boundary; older histories keep the behaviour they were recorded with.
FINISH_STEP_ON_TEMPORAL_CANCEL = "finish-step-on-temporal-cancel"
# ... and ask the database, before a cancel takes effect after a failed apply, whether that apply
# committed after all (an attempt can commit after its timeout).
CHECK_APPLY_BEFORE_CANCEL = "check-apply-before-cancel"
# ... and let a cancel accepted in the same workflow task as a sales decision win.
CANCEL_BEATS_DECISION = "cancel-beats-decision"
# ... and close the sales case of an approved change cancelled before it was applied as cancelled.
CANCEL_AFTER_APPROVAL_CLOSES_CASE = "cancel-after-approval-closes-case"
# ... and so does a change rejected when it is priced again after the approval.
REJECTION_AFTER_APPROVAL_CLOSES_CASE = "rejection-after-approval-closes-case"
# ... and answer the updates under way before ending invalid or as a repeat of an earlier run.
ENDINGS_WAIT_FOR_HANDLERS = "endings-wait-for-handlers"


class CancelRequested(Exception):
    """Raised at a step boundary once support or the requester asked to cancel."""


@dataclass(frozen=True)
class CancelOutcome:
    message: str
    took_effect: bool  # False: the change got past the point of no return first


@dataclass
class Cancellation:
    request: CancelRequest | None = None
    outcome: CancelOutcome | None = None
    temporal_cancel_taken: bool = False
    ended: str | None = None  # the change ended (as this status) without its lifecycle moving
    checking: int = 0  # cancels whose sender the staff directory is being asked about
    opened: bool = False  # the change's record is open: it is not a repeat of an ended one


    @property
    def requested(self) -> bool:
        return self.request is not None

    def refusal(self, lifecycle: ChangeLifecycle, parked: Step | None) -> str | None:
        """Why the `cancel` update is refused now, or None when it is accepted."""
        if self.ended is not None:
            return f"can't cancel: the change has already ended ({self.ended})"
        if self.request is not None:
            return "a cancel is already under way"
        if lifecycle.is_parked and parked is not None and not parked.cancellable:
            return (f"can't cancel: {parked.name} finishes a change that has already been "
                    "decided; retry it instead")
        refusal = lifecycle.cancel_refusal()
        return f"can't cancel: {refusal}" if refusal is not None else None

    def accept(self, request: CancelRequest) -> None:
        self.request, self.outcome = request, None

    def pending(self, lifecycle: ChangeLifecycle) -> bool:
        """An accepted cancel that still fits the lifecycle, so it takes effect when it can."""
        return self.request is not None and lifecycle.cancel_refusal() is None

    async def settle(self) -> None:
        """Before a step of an open change starts, wait for the check of a cancel's sender under
        way, so a cancel sent before the step starts is decided before it starts (in histories
        recorded with local steps, which no longer leave the directory time to answer first).
        Not before the change is open: a repeated request ends as its earlier run did."""
        if self.checking and self.opened and local_steps():
            await workflow.wait_condition(lambda: not self.checking)

    def raise_if_requested(self, lifecycle: ChangeLifecycle) -> None:
        """At a step boundary, a pending cancel takes effect, a Temporal one too."""
        if self.temporal_cancel_arrived():
            self.take_temporal_cancel()
        if self.pending(lifecycle):
            raise CancelRequested

    def temporal_cancel_arrived(self) -> bool:
        """A cancellation through Temporal (Web UI, `temporal workflow cancel`) that arrived
        while a step ran and is not acted on yet."""
        return (not self.temporal_cancel_taken and workflow.cancellation_reason() is not None
                and patched(FINISH_STEP_ON_TEMPORAL_CANCEL))

    def take_temporal_cancel(self) -> None:
        """Act on a Temporal cancel like on the `cancel` update (once)."""
        self.temporal_cancel_taken = True
        if self.request is None:
            self.accept(CancelRequest(reason="cancellation requested through Temporal"))

    def succeeded(self, message: str) -> None:
        self.outcome = CancelOutcome(message, took_effect=True)

    def too_late(self, reached: str) -> None:
        """The change reached `reached` before an accepted cancel could take effect: the cancel
        is refused and forgotten, so it wakes no parked step and a later one is judged anew."""
        if self.request is not None and self.outcome is None:
            self.outcome = CancelOutcome(
                f"too late: the change was {reached} before the cancel took effect",
                took_effect=False)
            self.request = None
