"""What a running activity knows of its call."""

from __future__ import annotations

from temporalio import activity


def calling_workflow_id() -> str:
    """The id of the workflow whose step the running activity is. Every activity here is a
    workflow's step; Temporal names no workflow only for a standalone activity."""
    workflow_id = activity.info().workflow_id
    if workflow_id is None:
        raise RuntimeError("this activity is a workflow's step: it can't run standalone")
    return workflow_id
