"""Driving changes through the workflow and reading back what a user can see: the workflow's
`status` query and result, the gateway (localstripe through the stripe SDK), and the database.

On the time-skipping test server, awaiting `handle.result()` unlocks the clock, and the server
then jumps to its next pending timer, which can be the ten-year execution timeout of a workflow
that already ended: a session-wide clock jump that closes every billing period. So these
helpers wait by polling the `status` query and fetch results with auto time skipping disabled;
days pass only through an explicit `env.sleep(...)`. Billing periods are taken from the server's
clock, not the machine's, so a clock moved by another test can't break them.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from email.message import Message
from typing import Any

import stripe
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities import Dependencies
from subchange.domain.contracts import ChangeRequest, ChangeResult, ChangeStatusView, Quote
from subchange.store.tables import AuditLog, ChangeRecord, RefundTicket, SalesCase, Subscription
from tests.helpers.services import DECLINED_ON_CHARGE_CARD, GOOD_CARD, current_period, org_document
from tests.workflow_helpers import request_for, start_change
from workflows.subscription_change import SubscriptionChange

SETTLE_LIMIT_SECONDS = 60  # a guard against hanging, not a timing assertion


def unique_org(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin(org: str, **fields: Any) -> dict[str, Any]:
    return {"email": f"admin@{org}.example", "role": "admin", "primary_contact": True,
            "products": ["one", "desk"], **fields}


def members(org: str, count: int, *, products: list[str], active: bool = True,
            prefix: str = "user") -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{i}@{org}.example", "role": "member", "active": active,
             "products": products} for i in range(count)]


# --- the workflow ------------------------------------------------------------------------------

async def status_of(handle: WorkflowHandle) -> ChangeStatusView:
    return await handle.query(SubscriptionChange.status)


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


async def wait_parked(handle: WorkflowHandle) -> ChangeStatusView:
    return await wait_for(handle, lambda v: v.state == "awaiting_support",
                          "awaiting_support")


async def wait_for_sales(handle: WorkflowHandle) -> ChangeStatusView:
    return await wait_for(handle, lambda v: v.state == "awaiting_sales" and bool(v.waiting_for),
                          "awaiting_sales")


async def wait_ended(handle: WorkflowHandle) -> ChangeStatusView:
    return await wait_for(handle, lambda v: v.result is not None, "an end")


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

    async def start(self, org: str, product: str, by: str, change: dict[str, Any], *,
                    refund: bool = False, request_id: str | None = None) -> WorkflowHandle:
        return await self.start_request(request_for(org, product, by, change, refund=refund,
                                                    request_id=request_id))

    async def start_request(self, request: ChangeRequest) -> WorkflowHandle:
        return await start_change(self.client, self.task_queue, request)

    async def run(self, org: str, product: str, by: str, change: dict[str, Any], *,
                  refund: bool = False) -> ChangeResult:
        return await self.settle(await self.start(org, product, by, change, refund=refund))

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


async def load_suite(changes: ChangeDriver, org: str, *, seats: int = 30,
                     card: str | None = GOOD_CARD) -> None:
    """A flexible_user suite subscription, paid by `card`, or offline when card is None."""
    await changes.load(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": seats, "pricing_model": "flexible_user",
        "card": card, "payment_method": "online" if card else "offline"}])


async def start_declined_change(changes: ChangeDriver, org: str, seats: int = 35
                                ) -> WorkflowHandle:
    """A seat increase charged to a card the gateway declines on every charge."""
    await load_suite(changes, org, card=DECLINED_ON_CHARGE_CARD)
    return await changes.start(org, "one", f"admin@{org}.example",
                               {"kind": "seats", "seats": seats})


# --- the gateway -------------------------------------------------------------------------------

def stripe_client(deps: Dependencies) -> stripe.StripeClient:
    return _stripe_client(deps.settings.stripe_api_key, deps.settings.stripe_api_base)


@functools.cache
def _stripe_client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": api_base})


def customer_id(deps: Dependencies, org: str, product: str) -> str | None:
    return subscription_row(deps, org, product).gateway_customer_id


def charges(deps: Dependencies, org: str, product: str) -> list[Any]:
    """Every charge attempt at the gateway on the organisation's customer for that product."""
    customer = customer_id(deps, org, product)
    if customer is None:
        return []
    return list(stripe_client(deps).v1.charges.list(
        params={"customer": customer, "limit": 100}).data)


def succeeded_charges(deps: Dependencies, org: str, product: str) -> list[Any]:
    return [c for c in charges(deps, org, product) if c.status == "succeeded"]


def refunds_of(deps: Dependencies, intent_id: str) -> list[Any]:
    return list(stripe_client(deps).v1.refunds.list(
        params={"payment_intent": intent_id, "limit": 100}).data)


def payment_intent(deps: Dependencies, intent_id: str) -> Any:
    return stripe_client(deps).v1.payment_intents.retrieve(intent_id)


# --- the database ------------------------------------------------------------------------------

def subscription_row(deps: Dependencies, org: str, product: str) -> Subscription:
    with deps.sessions() as session:
        return session.exec(select(Subscription).where(Subscription.org_id == org,
                                                       Subscription.product == product)).one()


def sales_case_row(deps: Dependencies, workflow_id: str) -> SalesCase | None:
    with deps.sessions() as session:
        return session.exec(select(SalesCase)
                            .where(SalesCase.workflow_id == workflow_id)).first()


def refund_ticket_row(deps: Dependencies, workflow_id: str) -> RefundTicket | None:
    with deps.sessions() as session:
        return session.exec(select(RefundTicket)
                            .where(RefundTicket.workflow_id == workflow_id)).first()


def change_record(deps: Dependencies, workflow_id: str) -> ChangeRecord | None:
    with deps.sessions() as session:
        return session.get(ChangeRecord, workflow_id)


def audit_entries(deps: Dependencies, org: str) -> list[AuditLog]:
    with deps.sessions() as session:
        return list(session.exec(select(AuditLog).where(AuditLog.org_id == org)
                                 .order_by(AuditLog.id)))


# --- money -------------------------------------------------------------------------------------

MINOR_DIGITS = {"JPY": 0, "USD": 2, "EUR": 2}


def recomputed_amount(quote: Quote) -> Decimal:
    """SPEC section 5 recomputed from the quote's own inputs, independently of subchange.domain.money."""
    difference = (quote.new_seats * quote.new_unit_price
                  - quote.old_seats * quote.old_unit_price)
    exact = difference * quote.remaining_days / quote.period_days
    return exact.quantize(Decimal(1).scaleb(-MINOR_DIGITS[quote.currency]),
                          rounding=ROUND_HALF_UP)


def in_minor_units(amount: Decimal, currency: str) -> int:
    return int(amount * 10 ** MINOR_DIGITS[currency])


# --- the mailbox -------------------------------------------------------------------------------

def mail_text(message: Message) -> str:
    """The plain-text body of an email from the Maildir; the invoice email is multipart (the text
    and a PDF attachment), so `get_payload()` is a list of parts, not the text."""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {message['Subject']!r}")
