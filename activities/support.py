"""Waiting for support: a change whose step failed for good parks until support retries the
step or cancels the change (workflows/runner.py). Backends hear of it as a
change.awaiting_support event, recorded once per park."""

from __future__ import annotations

import hashlib

from temporalio import activity

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from subchange.domain.step_io import ParkedChange
from subchange.domain.webhooks import awaiting_support_data
from subchange.store import outbox


class SupportActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="record_awaiting_support")
    def record_awaiting_support(self, parked: ParkedChange) -> None:
        info = activity.info()
        # One event per park of this run, whichever attempt records it: its id is derived from
        # the run and the park's number, so an attempt run again adds nothing.
        key = f"{info.workflow_id}:{info.workflow_run_id}:awaiting_support:{parked.park}"
        event_id = f"evt_{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        with self.deps.sessions() as session:
            outbox.record_once(session=session, event_id=event_id,
                               type="change.awaiting_support", workflow_id=calling_workflow_id(),
                               data=awaiting_support_data({}, step=parked.step,
                                                          error=parked.error))
