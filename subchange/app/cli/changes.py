"""The commands that talk to Temporal: start and follow a change, its status, and the updates
support and sales send (retry, cancel, sales-decision)."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
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
    emit,
    progress,
)
from subchange.app.cli.inputs import (
    CancelOptions,
    ChangeOptions,
    RetryOptions,
    SalesDecisionOptions,
    StatusOptions,
)
from subchange.app.client import connect
from subchange.domain.contracts import (
    WORKFLOW_TYPE,
    ChangeRequest,
    ChangeResult,
    ChangeStatus,
    ChangeStatusView,
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


async def cmd_change(options: ChangeOptions, settings: Settings) -> int:
    request = options.request
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
    if not options.wait:
        emit({"workflow_id": handle.id, "request_id": request.request_id,
              "started": started})
        return EXIT_OK
    progress(f"{handle.id}: {request.describe()}")
    return await follow(handle)


async def follow(handle: WorkflowHandle, poll_seconds: float = 0.3) -> int:
    """Print each step on stderr as it happens; print the result, or the status when the
    change stops to wait for a person, or how it ended when it was ended from outside
    (terminated, timed out), even while it waited: nobody waits for that one any more."""
    shown = 0
    while True:
        view, unanswered = await look(handle)
        if view is not None:
            shown = show_steps(view, shown)
            if view.result is not None:
                with contextlib.suppress(WorkflowFailureError):  # ended from outside after all
                    return finished(await handle.result())
        status = (await handle.describe()).status
        if status == WorkflowExecutionStatus.COMPLETED:
            if view is None:
                return finished(await handle.result())
            continue  # it ended since the query: the next one reads its result and last steps
        if status not in (None, WorkflowExecutionStatus.RUNNING):
            report_ended(handle.id, status, view)
            return EXIT_FAILED
        if view is None:
            raise CommandError(f"the status query failed: {unanswered}")
        if view.waiting_for:
            if shown < len(view.history):
                progress(f"  {view.history[-1].step:<24} waiting: {view.waiting_for}")
            emit(view)
            return EXIT_WAITING
        await asyncio.sleep(poll_seconds)


async def look(handle: WorkflowHandle) -> tuple[ChangeStatusView | None, Exception | None]:
    """The `status` query's answer, or why there is none. A run that has ended answers from its
    history (a worker replays it), which can fail where a running one would not."""
    try:
        return await handle.query("status", result_type=ChangeStatusView), None
    except (WorkflowQueryFailedError, RPCError) as error:
        return None, error


def show_steps(view: ChangeStatusView, shown: int) -> int:
    for record in view.history[shown:]:
        if record.finished_at is None:
            continue
        detail = f" ({record.detail})" if record.detail else ""
        progress(f"  {record.step:<24} {record.outcome}{detail}")
        shown += 1
    return shown


def finished(result: ChangeResult) -> int:
    if result.payment is not None and result.payment.method == "carried":
        progress(f"  {'payment':<24} carried: {result.payment.amount} "
                 f"{result.payment.currency} goes on the next renewal invoice (below "
                 "the gateway's minimum charge; nothing charged now)")
    emit(result)
    return EXIT_OK if result.status is ChangeStatus.COMPLETED else EXIT_FAILED


def report_ended(workflow_id: str, status: WorkflowExecutionStatus,
                 view: ChangeStatusView | None) -> None:
    """A change whose run ended without a result of its own (terminated, timed out): its end
    as `status` and `state`, what it was doing then as `last_state` (None when its history could
    not say), its steps and last error; `waiting_for` is None, since nobody waits for it."""
    end = status.name.lower()
    doing = f" while {view.state} (step {view.step})" if view is not None else ""
    progress(f"{workflow_id} {end.replace('_', ' ')}{doing}: it ended without a result of its "
             "own, and nothing more will happen to it")
    emit({"workflow_id": workflow_id, "status": end, "state": end,
          "last_state": view.state if view else None, "step": view.step if view else None,
          "waiting_for": None,
          "history": [r.model_dump(mode="json") for r in view.history] if view else [],
          "last_error": view.last_error if view else None, "result": None})


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


async def cmd_status(options: StatusOptions, settings: Settings) -> int:
    handle = await existing_handle(await connect(settings), options.workflow_id)
    view, unanswered = await look(handle)
    status = (await handle.describe()).status
    if status not in (None, WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        report_ended(handle.id, status, view)
    elif view is None:
        raise CommandError(f"the status query failed: {unanswered}")
    else:
        emit(view)
    return EXIT_OK


async def run_update(options: RetryOptions | CancelOptions | SalesDecisionOptions,
                     settings: Settings, name: str) -> int:
    handle = await existing_handle(await connect(settings), options.workflow_id)
    try:
        ack = await handle.execute_update(name, options.update, result_type=UpdateAck)
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


async def cmd_retry(options: RetryOptions, settings: Settings) -> int:
    return await run_update(options, settings, "retry")


async def cmd_cancel(options: CancelOptions, settings: Settings) -> int:
    return await run_update(options, settings, "cancel")


async def cmd_sales_decision(options: SalesDecisionOptions, settings: Settings) -> int:
    return await run_update(options, settings, "sales_decision")
