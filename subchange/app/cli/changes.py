"""The commands that talk to Temporal: start and follow a change, its status, and the updates
support and sales send (retry, cancel, sales-decision)."""

from __future__ import annotations

import argparse
import asyncio
import uuid

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from subchange.app.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
    CommandError,
    bad_input,
    change_request,
    emit,
    progress,
)
from subchange.app.client import connect
from subchange.domain.contracts import (
    WORKFLOW_TYPE,
    CancelRequest,
    ChangeRequest,
    ChangeResult,
    ChangeStatus,
    ChangeStatusView,
    RetryRequest,
    SalesDecision,
    UpdateAck,
)
from subchange.domain.search_attributes import initial_search_attributes
from subchange.settings import Settings


def static_details(request: ChangeRequest) -> str:
    """The Web UI's Details panel (markdown): the request, and what support can do with it."""
    workflow_id = request.workflow_id
    return (f"**Request** `{request.request_id}` · refund requested: "
            f"{'yes' if request.request_refund else 'no'}\n\n"
            f"**Support** (docs/runbook.md, Support runbook): "
            f"`python starter.py status {workflow_id}` · "
            f"`retry {workflow_id} --by EMAIL` · `cancel {workflow_id} --by EMAIL` (EMAIL: a "
            "member of support in the staff directory)")


async def cmd_change(args: argparse.Namespace, settings: Settings) -> int:
    request = change_request(args, args.request_id or f"req-{uuid.uuid4().hex[:12]}")
    client = await connect(settings)
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE, request.model_dump(mode="json"), id=request.workflow_id,
            result_type=ChangeResult,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
            static_summary=f"{request.describe()} (by {request.requested_by})",
            static_details=static_details(request),
        )
        started = True
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(request.workflow_id, result_type=ChangeResult)
        started = False
    if not args.wait:
        emit({"workflow_id": handle.id, "request_id": request.request_id,
              "started": started})
        return EXIT_OK
    progress(f"{handle.id}: {request.describe()}")
    return await follow(handle)


async def follow(handle: WorkflowHandle, poll_seconds: float = 0.3) -> int:
    """Print each step on stderr as it happens; print the result, or the status when the
    change stops to wait for a person."""
    shown = 0
    while True:
        view = await handle.query("status", result_type=ChangeStatusView)
        for record in view.history[shown:]:
            if record.finished_at is None:
                continue
            detail = f" ({record.detail})" if record.detail else ""
            progress(f"  {record.step:<24} {record.outcome}{detail}")
            shown += 1
        if view.result is not None:
            result = await handle.result()
            if result.payment is not None and result.payment.method == "carried":
                progress(f"  {'payment':<24} carried: {result.payment.amount} "
                         f"{result.payment.currency} goes on the next renewal invoice (below "
                         "the gateway's minimum charge; nothing charged now)")
            emit(result)
            return EXIT_OK if result.status is ChangeStatus.COMPLETED else EXIT_FAILED
        if view.waiting_for:
            if shown < len(view.history):
                progress(f"  {view.history[-1].step:<24} waiting: {view.waiting_for}")
            emit(view)
            return EXIT_WAITING
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            continue  # it ended since the query: the next one reads its result and last steps
        if description.status != WorkflowExecutionStatus.RUNNING:
            emit(await handle.result())
            return EXIT_FAILED
        await asyncio.sleep(poll_seconds)


async def existing_handle(client: Client, workflow_id: str) -> WorkflowHandle:
    handle = client.get_workflow_handle(workflow_id, result_type=ChangeResult)
    try:
        await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"WORKFLOW_ID: no change {workflow_id!r}",
                               EXIT_BAD_INPUT) from None
        raise
    return handle


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    handle = await existing_handle(await connect(settings), args.workflow_id)
    emit(await handle.query("status", result_type=ChangeStatusView))
    return EXIT_OK


async def run_update(args: argparse.Namespace, settings: Settings, name: str,
                     payload: BaseModel) -> int:
    handle = await existing_handle(await connect(settings), args.workflow_id)
    try:
        ack = await handle.execute_update(name, payload, result_type=UpdateAck)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = getattr(cause, "message", None) or str(cause or error)
        raise CommandError(f"{name} refused: {message}") from None
    except RPCError as error:
        if "completed" in error.message or error.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"{name} refused: the change has already ended") from None
        raise
    emit(ack)
    return EXIT_OK


async def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    return await run_update(args, settings, "retry", RetryRequest(by=args.by))


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    return await run_update(args, settings, "cancel",
                            CancelRequest(by=args.by, reason=args.reason))


async def cmd_sales_decision(args: argparse.Namespace, settings: Settings) -> int:
    try:
        decision = SalesDecision(approved=args.approve, by=args.by, note=args.note or "")
    except ValidationError as error:
        raise bad_input(error) from None
    return await run_update(args, settings, "sales_decision", decision)
