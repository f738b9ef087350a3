"""Starting, reading and updating changes through Temporal: the one path that `starter.py` and the
HTTP API share, so a request id, a status and a refusal mean the same on every surface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from subchange.domain.contracts import (
    WORKFLOW_TYPE,
    ChangeOutcome,
    ChangeRequest,
    ChangeResult,
    ChangeStatusView,
    ChangeSummary,
    UpdateAck,
)
from subchange.domain.search_attributes import (
    CHANGE_KIND,
    CHANGE_STATUS,
    CHANGE_STEP,
    ORG_ID,
    PRODUCT,
    initial_search_attributes,
)
from subchange.settings import Settings

UPDATES = ("retry", "cancel", "sales_decision", "reschedule")


class UnknownChange(Exception):
    """No change has this workflow id."""


class RequestIdTaken(Exception):
    """The request id (an idempotency key) already named a change with a different request."""

    def __init__(self, workflow_id: str, existing: ChangeRequest | None) -> None:
        super().__init__(f"request id {workflow_id.removeprefix('change-')!r} already names "
                         f"another change ({existing.describe() if existing else 'unreadable'}); "
                         "use a new one for a different request")
        self.workflow_id = workflow_id
        self.existing = existing


class UpdateRefused(Exception):
    """The change refused the update; `by_principal` when because of who sent it (SPEC 9),
    `ended` when the change had already ended."""

    def __init__(self, message: str, *, by_principal: bool = False, ended: bool = False) -> None:
        super().__init__(message)
        self.by_principal = by_principal
        self.ended = ended


def static_details(request: ChangeRequest) -> str:
    """The Web UI's Details panel (markdown): the request, and what support can do with it."""
    workflow_id = request.workflow_id
    return (f"**Request** `{request.request_id}` · refund requested: "
            f"{'yes' if request.request_refund else 'no'}\n\n"
            f"**Support** (docs/runbook.md, Support runbook): "
            f"`python starter.py status {workflow_id}` · "
            f"`retry {workflow_id} --by EMAIL` · `cancel {workflow_id} --by EMAIL` (EMAIL: a "
            "member of support in the staff directory)")


@dataclass(frozen=True)
class Started:
    handle: WorkflowHandle
    started: bool  # False: the request id named this very request already


async def start_change(client: Client, settings: Settings, request: ChangeRequest) -> Started:
    """Start the change, or find the one its request id already started (running or ended): the
    same request is the same change, whoever sent it first; another request under the same id is
    RequestIdTaken. Two racing starts of one request id start one workflow (the server's id
    uniqueness), and the loser compares requests like any repeat."""
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE, request.model_dump(mode="json"), id=request.workflow_id,
            result_type=ChangeResult, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
            static_summary=f"{request.describe()} (by {request.requested_by})",
            static_details=static_details(request))
        return Started(handle, True)
    except WorkflowAlreadyStartedError:
        pass
    existing = await request_of(client, request.workflow_id)
    if existing != request:
        raise RequestIdTaken(request.workflow_id, existing)
    return Started(client.get_workflow_handle(request.workflow_id, result_type=ChangeResult),
                   False)


async def request_of(client: Client, workflow_id: str) -> ChangeRequest | None:
    """The request a change was started with (its first history event), opened by the client's
    converter (sealed payloads included); None when the server no longer has it."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [value] = await client.data_converter.decode(payloads, [ChangeRequest])
            return value
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    return None


async def existing_handle(client: Client, workflow_id: str
                          ) -> tuple[WorkflowHandle, WorkflowExecutionStatus | None]:
    """The change's handle and its run's status; UnknownChange when the server has no such
    workflow."""
    handle = client.get_workflow_handle(workflow_id, result_type=ChangeResult)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise UnknownChange(workflow_id) from None
        raise
    return handle, description.status


async def look(handle: WorkflowHandle) -> tuple[ChangeStatusView | None, Exception | None]:
    """The `status` query's answer, or why there is none. A run that has ended answers from its
    history (a worker replays it), which can fail where a running one would not."""
    try:
        return await handle.query("status", result_type=ChangeStatusView), None
    except (WorkflowQueryFailedError, RPCError) as error:
        return None, error


@dataclass(frozen=True)
class Report:
    """What a change is: its `status` answer (None when it could not be had), and, for a run
    ended from outside without a result of its own, how it ended (terminated, timed_out, ...)."""

    view: ChangeStatusView | None
    ended_from_outside: str | None
    unanswered: Exception | None


async def report(client: Client, workflow_id: str) -> Report:
    handle, status = await existing_handle(client, workflow_id)
    view, unanswered = await look(handle)
    ended = (None if status in (None, WorkflowExecutionStatus.RUNNING,
                                WorkflowExecutionStatus.COMPLETED)
             else status.name.lower())
    return Report(view, ended, unanswered)


async def send_update(client: Client, workflow_id: str, name: str, argument: object) -> UpdateAck:
    """One of the updates of SPEC section 7; UnknownChange, or UpdateRefused with the change's
    own words."""
    assert name in UPDATES
    handle, _ = await existing_handle(client, workflow_id)
    try:
        return await handle.execute_update(name, argument, result_type=UpdateAck)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = getattr(cause, "message", None) or str(cause or error)
        by_principal = isinstance(cause, ApplicationError) and cause.type == "PrincipalRefused"
        raise UpdateRefused(f"{name} refused: {message}", by_principal=by_principal) from None
    except RPCError as error:
        if "completed" in error.message or error.status == RPCStatusCode.NOT_FOUND:
            raise UpdateRefused(f"{name} refused: the change has already ended",
                                ended=True) from None
        raise


# How a change's status is found in visibility: a result's status is the ChangeStatus search
# attribute; an end from outside is the execution's own status.
STATUS_FILTERS = {"running": "ExecutionStatus = 'Running'",
                  "terminated": "ExecutionStatus = 'Terminated'",
                  "timed_out": "ExecutionStatus = 'TimedOut'",
                  "failed": "ExecutionStatus = 'Failed'",
                  **{s: f"ChangeStatus = '{s}'"
                     for s in ("completed", "rejected", "cancelled", "expired")}}
ENDED_FROM_OUTSIDE = {WorkflowExecutionStatus.TERMINATED: "terminated",
                      WorkflowExecutionStatus.TIMED_OUT: "timed_out",
                      WorkflowExecutionStatus.FAILED: "failed",
                      WorkflowExecutionStatus.CANCELED: "cancelled"}


def list_query(*, org_id: str | None = None, product: str | None = None,
               step: str | None = None, status: str | None = None) -> str:
    """The visibility query of the changes with these search attributes, so no one types one.
    The callers check the values first (identifiers, a product, a state, an outcome): nothing
    reaches the query that could end its quoted string."""
    filters = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if org_id is not None:
        filters.append(f"{ORG_ID.name} = '{org_id}'")
    if product is not None:
        filters.append(f"{PRODUCT.name} = '{product}'")
    if step is not None:
        filters.append(f"{CHANGE_STEP.name} = '{step}'")
    if status is not None:
        filters.append(STATUS_FILTERS[status])
    return " AND ".join(filters)


def summary(execution: WorkflowExecution) -> ChangeSummary:
    attributes = execution.typed_search_attributes
    ended = ENDED_FROM_OUTSIDE.get(execution.status) if execution.status else None
    status = cast(ChangeOutcome, ended or attributes.get(CHANGE_STATUS) or "running")
    return ChangeSummary(
        workflow_id=execution.id, request_id=execution.id.removeprefix("change-"),
        org_id=attributes.get(ORG_ID), product=attributes.get(PRODUCT),
        kind=attributes.get(CHANGE_KIND), step=attributes.get(CHANGE_STEP),
        status=status, started_at=execution.start_time, closed_at=execution.close_time)
