"""The commands that talk to Temporal: start and follow a change, its status, and the updates
support and sales send (retry, cancel, sales-decision)."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from subchange.app.changes import (
    RequestIdTaken,
    UnknownChange,
    UpdateRefused,
    list_query,
    look,
    report,
    send_update,
    start_change,
    summary,
)
from subchange.app.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SCHEDULED,
    EXIT_WAITING,
    CommandError,
    emit,
    progress,
)
from subchange.app.cli.inputs import (
    CancelOptions,
    ChangeOptions,
    ListOptions,
    RescheduleOptions,
    RetryOptions,
    SalesDecisionOptions,
    StatusOptions,
)
from subchange.app.client import connect
from subchange.domain.contracts import ChangeResult, ChangeStatus, ChangeStatusView
from subchange.settings import Settings


async def cmd_change(options: ChangeOptions, settings: Settings) -> int:
    request = options.request
    client = await connect(settings)
    try:
        outcome = await start_change(client, settings, request)
    except RequestIdTaken as error:
        raise CommandError(f"--request-id: {error}", EXIT_BAD_INPUT) from None
    handle = outcome.handle
    if not options.wait:
        emit({"workflow_id": handle.id, "request_id": request.request_id,
              "started": outcome.started})
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
            report_ended(handle.id, status.name.lower(), view)
            return EXIT_FAILED
        if view is None:
            raise CommandError(f"the status query failed: {unanswered}")
        if view.state == "scheduled" and view.waiting_for:  # waits for a date (SPEC 10)
            progress(f"  {'scheduled':<24} waiting: {view.waiting_for}")
            emit(view)
            return EXIT_SCHEDULED
        if view.waiting_for:
            if shown < len(view.history):
                progress(f"  {view.history[-1].step:<24} waiting: {view.waiting_for}")
            emit(view)
            return EXIT_WAITING
        await asyncio.sleep(poll_seconds)


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


def report_ended(workflow_id: str, end: str, view: ChangeStatusView | None) -> None:
    """A change whose run ended without a result of its own (terminated, timed out): its end
    as `status` and `state`, what it was doing then as `last_state` (None when its history could
    not say), its steps and last error; `waiting_for` is None, since nobody waits for it."""
    doing = f" while {view.state} (step {view.step})" if view is not None else ""
    progress(f"{workflow_id} {end.replace('_', ' ')}{doing}: it ended without a result of its "
             "own, and nothing more will happen to it")
    emit({"workflow_id": workflow_id, "status": end, "state": end,
          "last_state": view.state if view else None, "step": view.step if view else None,
          "waiting_for": None,
          "history": [r.model_dump(mode="json") for r in view.history] if view else [],
          "last_error": view.last_error if view else None, "result": None})


async def cmd_list(options: ListOptions, settings: Settings) -> int:
    """The changes with these search attributes, the running ones first, then by when they
    ended, newest first (Temporal visibility's order; it can lag
    a change's last step by a moment)."""
    client = await connect(settings)
    query = list_query(org_id=options.org, product=options.product, step=options.step,
                       status=options.status)
    found = [summary(execution) async for execution in client.list_workflows(
        query, limit=options.limit, page_size=min(options.limit, 1000))]
    if len(found) == options.limit:
        progress(f"showing the first {options.limit}; --limit for more")
    emit(found)
    return EXIT_OK


async def cmd_status(options: StatusOptions, settings: Settings) -> int:
    try:
        found = await report(await connect(settings), options.workflow_id)
    except UnknownChange:
        raise CommandError(f"WORKFLOW_ID: no change {options.workflow_id!r}",
                           EXIT_BAD_INPUT) from None
    if found.ended_from_outside is not None:
        report_ended(options.workflow_id, found.ended_from_outside, found.view)
    elif found.view is None:
        raise CommandError(f"the status query failed: {found.unanswered}")
    else:
        emit(found.view)
    return EXIT_OK


async def run_update(options: RetryOptions | CancelOptions | SalesDecisionOptions
                     | RescheduleOptions,
                     settings: Settings, name: str) -> int:
    try:
        ack = await send_update(await connect(settings), options.workflow_id, name,
                                options.update)
    except UnknownChange:
        raise CommandError(f"WORKFLOW_ID: no change {options.workflow_id!r}",
                           EXIT_BAD_INPUT) from None
    except UpdateRefused as error:
        raise CommandError(str(error)) from None
    emit(ack)
    return EXIT_OK


async def cmd_retry(options: RetryOptions, settings: Settings) -> int:
    return await run_update(options, settings, "retry")


async def cmd_cancel(options: CancelOptions, settings: Settings) -> int:
    return await run_update(options, settings, "cancel")


async def cmd_sales_decision(options: SalesDecisionOptions, settings: Settings) -> int:
    return await run_update(options, settings, "sales_decision")


async def cmd_reschedule(options: RescheduleOptions, settings: Settings) -> int:
    return await run_update(options, settings, "reschedule")
