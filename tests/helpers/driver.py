"""Starting and driving changes the way every client does (workflow id change-<request_id>), and
waiting for the states they reach, through the workflow's `status` query and result.

On the time-skipping test server, awaiting `handle.result()` unlocks the clock, and the server
then jumps to its next pending timer, which can be the ten-year execution timeout of a workflow
that already ended: a session-wide clock jump that closes every billing period. So these
helpers wait by polling the `status` query and fetch results with auto time skipping disabled;
days pass only through an explicit `env.sleep(...)`. Billing periods are taken from the server's
clock, not the machine's, so a clock moved by another test can't break them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.dependencies import Dependencies
from activities.registry import all_activities
from subchange.app.wiring import build_worker, with_temporal
from subchange.domain.contracts import ChangeRequest, ChangeResult, ChangeStatusView
from subchange.domain.search_attributes import initial_search_attributes
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    GOOD_CARD,
    admin,
    admin_email,
    current_period,
    org_document,
)
from workflows.subscription_change import SubscriptionChange

SETTLE_LIMIT_SECONDS = 60  # a guard against hanging, not a timing assertion


@contextlib.asynccontextmanager
async def worker_with_stand_ins(env: WorkflowEnvironment, deps: Dependencies, task_queue: str,
                                **stand_ins: Callable) -> AsyncIterator[Worker]:
    """A worker of the real workflow and activities, except the activities named, replaced by
    stand-ins that wrap the real ones to produce a failure or a moment the real parts can't on
    demand (tests about workflow logic only)."""
    # As build_worker does: a claim's holder is asked about, webhook relays are woken.
    deps = with_temporal(deps, env.client, task_queue=task_queue)
    real = {activity._Definition.must_from_callable(a).name: a for a in all_activities(deps)}
    assert set(stand_ins) <= set(real), f"no such activity: {set(stand_ins) - set(real)}"
    async with build_worker(env.client, deps, task_queue=task_queue, fail_workflows_on_bugs=True,
                            activities=list({**real, **stand_ins}.values())) as worker:
        yield worker


def request_for(org: str, product: str = "one", by: str | None = None,
                change: dict[str, Any] | None = None, *, seats: int | None = None,
                plan: str | None = None, refund: bool = False,
                request_id: str | None = None) -> ChangeRequest:
    """A request to change `org`'s subscription to `product` (the suite, "one", unless named)
    to `seats` seats or to `plan` (or to `change`, the request's change as a dict), asked by
    `by`, or by the org's admin (documents.admin_email) when no one is named:
    `request_for(org, seats=35)`, `request_for(org, "desk", plan="free", refund=True)`."""
    if change is None:
        assert (seats is None) != (plan is None), "name the change: seats= or plan="
        change = ({"kind": "seats", "seats": seats} if plan is None
                  else {"kind": "plan", "plan": plan})
    else:
        assert seats is None and plan is None, "the change is named twice"
    return ChangeRequest.model_validate({
        "request_id": request_id or f"req-{uuid.uuid4().hex[:12]}", "org_id": org,
        "product": product, "requested_by": admin_email(org) if by is None else by,
        "change": change, "request_refund": refund})


async def start_change(client: Client, task_queue: str, request: ChangeRequest,
                       *, search_attributes: bool = True) -> WorkflowHandle:
    return await client.start_workflow(
        SubscriptionChange.run, request.model_dump(mode="json"), id=request.workflow_id,
        task_queue=task_queue,
        search_attributes=initial_search_attributes(request) if search_attributes else None)


# --- waiting for a state -----------------------------------------------------------------------

TRANSIENT_QUERY_SECONDS = 30  # a workflow task's timeout (10 s) and its retry, with room
QUERY_SECONDS = 10  # one ask of the query; the server may hold one while a task is stuck


async def status_of(handle: WorkflowHandle) -> ChangeStatusView:
    """The `status` query. While a workflow task of the change has failed and waits to be tried
    again (timed out on a machine too busy to answer within its 10 s, say), the server answers
    no query, or holds it unanswered; a person asks again, and so does this, for at most a few
    seconds (each ask waits QUERY_SECONDS, so a query held by the server can't hang a test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRANSIENT_QUERY_SECONDS
    while True:
        try:
            return await handle.query(SubscriptionChange.status,
                                      rpc_timeout=timedelta(seconds=QUERY_SECONDS))
        except RPCError as error:
            held = error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
            failed_task = "Workflow Task in failed state" in error.message
            if not (held or failed_task) or loop.time() > deadline:
                raise
        await asyncio.sleep(0.2)


async def wait_for(handle: WorkflowHandle, condition: Callable[[ChangeStatusView], bool],
                   what: str) -> ChangeStatusView:
    """Poll the `status` query until the condition holds (never awaits the result, which on the
    time-skipping server would fast-forward any durable wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_LIMIT_SECONDS
    view = None
    while loop.time() < deadline:
        view = await status_of(handle)
        if condition(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never reached {what}; last status: {view}")


async def wait_for_event(handle: WorkflowHandle, event_type: EventType.ValueType) -> None:
    """Poll the history until the workflow recorded an event of this type (for a moment the
    status query can't show, such as the workflow having asked a running activity to cancel)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_LIMIT_SECONDS
    while loop.time() < deadline:
        history = await handle.fetch_history()
        if any(event.event_type == event_type for event in history.events):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never recorded {EventType.Name(event_type)}")


async def wait_parked(handle: WorkflowHandle) -> ChangeStatusView:
    return await wait_for(handle, lambda v: v.state == "awaiting_support",
                          "awaiting_support")


async def wait_for_payment(handle: WorkflowHandle, declines: int = 1) -> ChangeStatusView:
    """The change waits for payment (SPEC section 11) after its `declines`-th decline."""
    return await wait_for(handle, lambda v: v.state == "awaiting_payment" and sum(
        1 for step in v.history if step.step == "charge" and step.outcome == "failed"
    ) == declines, f"awaiting_payment after {declines} decline(s)")


async def wait_for_sales(handle: WorkflowHandle) -> ChangeStatusView:
    return await wait_for(handle, lambda v: v.state == "awaiting_sales" and bool(v.waiting_for),
                          "awaiting_sales")


async def wait_ended(handle: WorkflowHandle) -> ChangeStatusView:
    return await wait_for(handle, lambda v: v.result is not None, "an end")


async def refused(handle: WorkflowHandle, update: str, arg) -> str:
    """Send an update the workflow must refuse; returns why it refused."""
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(update, arg)
    return str(failure.value.cause)


# --- the driver --------------------------------------------------------------------------------

class ChangeDriver:
    """Loads organisations and runs changes on one worker's task queue."""

    def __init__(self, client: Client, task_queue: str, env: WorkflowEnvironment,
                 load: Callable[[dict], None]) -> None:
        self.client, self.task_queue, self.env, self._load = client, task_queue, env, load

    async def load(self, org: str, *, users: list[dict[str, Any]],
                   subscriptions: list[dict[str, Any]], currency: str = "JPY") -> None:
        """Load through the real loader, with billing periods around the server's today."""
        start, end = current_period((await self.env.get_current_time()).date())
        subs = [{"period_start": str(start), "period_end": str(end), **s} for s in subscriptions]
        self._load(org_document(org, currency=currency, users=users, subscriptions=subs))

    def reload(self, document: dict) -> None:
        self._load(document)

    async def start(self, org: str, *request: Any, **named: Any) -> WorkflowHandle:
        """Start the change `request_for` makes of these arguments:
        `driver.start(org, seats=35)`."""
        return await self.start_request(request_for(org, *request, **named))

    async def start_request(self, request: ChangeRequest) -> WorkflowHandle:
        return await start_change(self.client, self.task_queue, request)

    async def run(self, org: str, *request: Any, **named: Any) -> ChangeResult:
        """Start the change as `start` does and return its result (see `settle`)."""
        return await self.settle(await self.start(org, *request, **named))

    async def settle(self, handle: WorkflowHandle) -> ChangeResult:
        """The result of a change that must end on its own; fails (instead of hanging) when it
        parks in awaiting_support or waits for sales."""
        view = await wait_for(handle, lambda v: v.result is not None or v.waiting_for is not None,
                              "an end")
        assert view.result is not None, (
            f"{handle.id} stopped in {view.state}, waiting for {view.waiting_for}: "
            f"{view.last_error}")
        return await self.result(handle)

    async def result(self, handle: WorkflowHandle) -> ChangeResult:
        """The workflow's own result, once the status query shows it ended."""
        await wait_ended(handle)
        with self.env.auto_time_skipping_disabled():
            return await handle.result()


async def load_suite(driver: ChangeDriver, org: str, *, seats: int = 30,
                     card: str | None = GOOD_CARD) -> None:
    """A flexible_user suite subscription, paid by `card`, or offline when card is None."""
    await driver.load(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": seats, "pricing_model": "flexible_user",
        "card": card, "payment_method": "online" if card else "offline"}])


async def load_desk(driver: ChangeDriver, org: str, today: date, *, days_left: int,
                    card: str = GOOD_CARD) -> None:
    """A USD standard desk of 3 agents (14.00 each a month, an organisation in the US: no tax)
    whose 30-day period has `days_left` days left, today included."""
    end = today + timedelta(days=days_left)
    await driver.load(org, currency="USD", users=[admin(org)], subscriptions=[{
        "product": "desk", "plan": "standard", "seats": 3, "card": card,
        "period_start": str(end - timedelta(days=30)), "period_end": str(end)}])


async def start_declined_change(driver: ChangeDriver, org: str, seats: int = 35
                                ) -> WorkflowHandle:
    """A seat increase charged to a card the gateway declines on every charge."""
    await load_suite(driver, org, card=DECLINED_ON_CHARGE_CARD)
    return await driver.start(org, seats=seats)
