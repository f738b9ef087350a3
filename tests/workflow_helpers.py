"""Starting changes in workflow tests the way every client does: workflow id change-<request_id>."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle

from subchange.domain.contracts import ChangeRequest
from subchange.domain.search_attributes import initial_search_attributes
from workflows.subscription_change import SubscriptionChange


def request_for(org: str, product: str, by: str, change: dict[str, Any], *,
                refund: bool = False, request_id: str | None = None) -> ChangeRequest:
    return ChangeRequest.model_validate({
        "request_id": request_id or f"req-{uuid.uuid4().hex[:12]}", "org_id": org,
        "product": product, "requested_by": by, "change": change, "request_refund": refund})


async def start_change(client: Client, task_queue: str, request: ChangeRequest,
                       *, search_attributes: bool = True) -> WorkflowHandle:
    return await client.start_workflow(
        SubscriptionChange.run, request.model_dump(mode="json"), id=request.workflow_id,
        task_queue=task_queue,
        search_attributes=initial_search_attributes(request) if search_attributes else None)

