"""What one run of the workflow knows about its change (the cancel and the step runner keep their
own few flags), and how it shows it: search attributes for the Web UI's filters and the current
details of the change's page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import ChangeLifecycle, Trigger
    from subchange.domain.contracts import (
        ChangeRequest,
        ChangeResult,
        ChangeStatus,
        PaymentRecord,
        Quote,
        SalesDecision,
    )
    from subchange.domain.search_attributes import search_attribute_updates
    from subchange.domain.step_io import ApplyOutput, DatedRequest

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.progress import Progress
from workflows.versions import patched

# Changes started with this patch upsert a search attribute only when its value changes (about
# half as many upserts, each a visibility write on the server); older histories upserted all five
# at every step and keep doing so on replay.
UPSERT_ONLY_CHANGES = "upsert-only-changes"


@dataclass
class ChangeRun:
    lifecycle: ChangeLifecycle = field(default_factory=ChangeLifecycle)
    progress: Progress = field(default_factory=Progress)
    request: ChangeRequest | None = None
    dated: DatedRequest | None = None  # the request as of the day it is validated and quoted
    quote: Quote | None = None
    payment: PaymentRecord | None = None
    sales_case: str | None = None
    decision: SalesDecision | None = None
    applied: ApplyOutput | None = None
    # Set when the change has decided how it ends, so a Temporal cancel finishes that ending.
    finishing: tuple[Trigger, ChangeResult] | None = None
    result: ChangeResult | None = None

    def advance(self, trigger: Trigger) -> None:
        self.lifecycle.fire(trigger)
        self.publish()

    def publish(self) -> None:
        """Keep search attributes and the Web UI's current details in step with the state."""
        state = self.lifecycle.current.value
        status = self.result.status if self.result else ChangeStatus.RUNNING
        updates = search_attribute_updates(request=self.request, state=state,
                                           status=status.value)
        if patched(UPSERT_ONLY_CHANGES):
            # Only what differs from the attributes the change already has (those the starter
            # set, or the last upsert): a step that starts in the same state writes nothing.
            current = workflow.info().typed_search_attributes
            updates = [update for update in updates if current.get(update.key) != update.value]
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self.progress.describe(state))

    def result_of(self, status: ChangeStatus, **fields: Any) -> ChangeResult:
        assert self.request is not None
        return ChangeResult(workflow_id=workflow.info().workflow_id,
                            request_id=self.request.request_id, status=status, quote=self.quote,
                            payment=self.payment, **fields)
