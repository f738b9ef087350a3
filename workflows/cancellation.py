"""The cancel rules of a change, in one place: when the `cancel` update is accepted, when an
accepted cancel takes effect (at the next step boundary, while nothing irreversible has happened),
and its outcome, which the update waits for and reports."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeLifecycle
    from subchange.domain.contracts import CancelRequest
    from workflows.steps import Step


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

    @property
    def requested(self) -> bool:
        return self.request is not None

    def refusal(self, lifecycle: ChangeLifecycle, parked: Step | None) -> str | None:
        """Why the `cancel` update is refused now, or None when it is accepted."""
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

    def raise_if_requested(self, lifecycle: ChangeLifecycle) -> None:
        """At a step boundary, a pending cancel takes effect."""
        if self.pending(lifecycle):
            raise CancelRequested

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
