"""What Temporal knows about a change's workflow: whether it has ended, and how (to tell a claim
whose holder still runs from one left behind by a terminated or timed-out workflow), and who asked
the server to cancel it (for the audit log)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")
UNQUOTABLE = set('"\\\'')  # what would end or escape a quoted id in a visibility query


async def ended_as(client: Client, workflow_id: str) -> str | None:
    """How the workflow ended ("terminated", "timed_out", "completed", ..., or "unknown" when
    the server no longer knows it), or None while it runs."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return "unknown"  # past the namespace's retention: it ended long ago
        raise
    if description.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    return description.status.name.lower()


async def cancel_requested_by(client: Client, workflow_id: str) -> str | None:
    """The identity the server recorded with the request to cancel the workflow (a client sets
    its own: `pid@host` by default), or None when it recorded none."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            return event.workflow_execution_cancel_requested_event_attributes.identity or None
    return None


async def running_among(client: Client, workflow_ids: Collection[str]) -> set[str]:
    """Which of these workflows visibility lists as running: one query for many, instead of a
    describe each. Eventually consistent, so a caller takes "not listed" as "ask each one" and
    "listed" as "running a moment ago". Ids that could not be quoted safely are left out (so
    asked about one by one)."""
    quotable = [workflow_id for workflow_id in workflow_ids
                if not set(workflow_id) & UNQUOTABLE]
    if not quotable:
        return set()
    listed = ", ".join(f'"{workflow_id}"' for workflow_id in quotable)
    query = f'ExecutionStatus="Running" AND WorkflowId IN ({listed})'
    return {execution.id async for execution in client.list_workflows(query)}


async def running_changes_at(client: Client, step: str) -> int:
    """How many changes run and are at `step` (the ChangeStep search attribute: awaiting_support,
    awaiting_payment, ...), as the server's visibility store counts them (eventually
    consistent: a change that moved a second ago may be counted where it was)."""
    counted = await client.count_workflows(
        f'WorkflowType="SubscriptionChange" AND ExecutionStatus="Running" '
        f'AND ChangeStep="{step}"')
    return counted.count


class ChangeWorkflows:
    """For the worker's synchronous activities, on the worker's event loop."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def _wait(self, call: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `call` on the worker's event loop from an activity's thread; cancelled there when
        the wait ends first, so a slow server does not leave calls behind."""
        future = asyncio.run_coroutine_threadsafe(call, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def ended_as(self, workflow_id: str, *, timeout: float = 10.0) -> str | None:
        return self._wait(ended_as(self.client, workflow_id), timeout)

    def cancel_requested_by(self, workflow_id: str, *, timeout: float = 10.0) -> str | None:
        return self._wait(cancel_requested_by(self.client, workflow_id), timeout)

    def running_among(self, workflow_ids: Collection[str], *, timeout: float = 10.0
                      ) -> set[str]:
        return self._wait(running_among(self.client, workflow_ids), timeout)

    def running_changes_at(self, step: str, *, timeout: float = 10.0) -> int:
        return self._wait(running_changes_at(self.client, step), timeout)
