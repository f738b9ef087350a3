"""Everything one run of the workflow knows about its change, in one object, and how it shows it:
search attributes for the Web UI's filters and the current details of the change's page. The
workflow's helpers read it and say what changed by what they return; the workflow (and the
update handlers, for what a message brings) write it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeLifecycle, Trigger
    from subchange.domain.contracts import (
        CancelRequest,
        ChangeRequest,
        ChangeResult,
        ChangeStatus,
        PaymentRecord,
        Quote,
        SalesDecision,
    )
    from subchange.domain.search_attributes import search_attribute_updates
    from subchange.domain.step_io import ApplyOutput

from workflows.progress import Progress
from workflows.steps import Step


@dataclass(frozen=True)
class CancelOutcome:
    message: str
    took_effect: bool  # False: the change got past the point of no return first


@dataclass
class ChangeRun:
    patches: frozenset[str] = frozenset()  # workflows/versions.py
    lifecycle: ChangeLifecycle = field(default_factory=ChangeLifecycle)
    progress: Progress = field(default_factory=Progress)
    # --- the change --------------------------------------------------------------------------
    request: ChangeRequest | None = None
    invalid: str | None = None  # why the input is not a change request this workflow can run
    opened: bool = False  # its record is open: it is not a repeat of an ended change
    quote: Quote | None = None  # the price it is charged, refunded and invoiced at
    payment: PaymentRecord | None = None
    sales_case: str | None = None
    decision: SalesDecision | None = None
    sales_deadline_passed: bool = False
    applied: ApplyOutput | None = None
    # A change at the period end (workflows/period_end.py): when it fires, and who moved that
    # (the `reschedule` update, staging only).
    fires_at: datetime | None = None
    rescheduled_by: str | None = None
    # Set when the change has decided how it ends, so a Temporal cancel finishes that ending.
    finishing: tuple[Trigger, ChangeResult] | None = None
    ended: str | None = None  # the status it ended with, once the run is done with it
    result: ChangeResult | None = None
    # --- its steps (workflows/runner.py) -----------------------------------------------------
    begun: set[str] = field(default_factory=set)  # the steps an attempt of which began
    retry_requested: bool = False
    last_parked: Step | None = None  # the step that failed for good last
    parks: int = 0  # how many times it parked: each park's event is recorded once
    # The charge's last failure may have taken the money (its outcome is unknown): a cancel
    # refunds it. Only a step that takes money says so (the refund's own failures don't).
    money_at_risk: bool = False
    # --- payment recovery (workflows/payment_recovery.py) -----------------------------------
    payment_declines: int = 0  # declined charges so far
    first_decline_at: datetime | None = None
    next_payment_attempt: datetime | None = None  # while it waits for a scheduled attempt
    card_updates: int = 0  # `card_updated` signals received: a new card of the organisation
    # --- a cancel (workflows/cancellation.py) ------------------------------------------------
    cancel: CancelRequest | None = None  # accepted, not yet taken effect or refused
    cancel_outcome: CancelOutcome | None = None
    cancel_checks: int = 0  # cancels whose sender the staff directory is being asked about
    temporal_cancel_taken: bool = False
    temporal_cancel_recorded: bool = False  # in the audit log

    def advance(self, trigger: Trigger) -> None:
        self.lifecycle.fire(trigger)
        self.publish()

    def publish(self) -> None:
        """Keep search attributes and the Web UI's current details in step with the state."""
        state = self.lifecycle.current.value
        status = self.result.status if self.result else ChangeStatus.RUNNING
        # Only what differs from the attributes the change already has (those the starter set,
        # or the last upsert): a step that starts in the same state writes nothing.
        current = workflow.info().typed_search_attributes
        updates = [update for update in search_attribute_updates(
            request=self.request, state=state, status=status.value,
            effective_at=self.fires_at)
            if current.get(update.key) != update.value]
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self.progress.describe(state))

    def result_of(self, status: ChangeStatus, **fields: Any) -> ChangeResult:
        assert self.request is not None
        return ChangeResult(workflow_id=workflow.info().workflow_id,
                            request_id=self.request.request_id, status=status, quote=self.quote,
                            payment=self.payment, **fields)
