"""What Temporal knows about a change's workflow: whether it has ended, and how. Used to tell a
claim whose holder still runs from one left behind by a terminated or timed-out workflow."""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode


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


class ChangeWorkflows:
    """`ended_as` for the worker's synchronous activities, on the worker's event loop."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def ended_as(self, workflow_id: str, *, timeout: float = 10.0) -> str | None:
        return asyncio.run_coroutine_threadsafe(ended_as(self.client, workflow_id),
                                                self.loop).result(timeout)
