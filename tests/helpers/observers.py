"""What a user can see of a change, read where they would read it: the gateway (localstripe
through the stripe SDK, as the payments team sees it, not through the application's adapter),
the database rows, the search attributes the server lists, and the billing mailbox (the Maildir
the SMTP sink writes) with the text of its emails and of their PDF invoices."""

from __future__ import annotations

import asyncio
import functools
import io
import mailbox as maildir
from email.message import Message
from pathlib import Path
from typing import Any

import stripe
from pypdf import PdfReader
from sqlmodel import func, select
from temporalio.client import WorkflowHandle

from activities.dependencies import Dependencies
from subchange.domain.search_attributes import CHANGE_STATUS, CHANGE_STEP
from subchange.store.tables import (
    AppliedChange,
    AuditLog,
    ChangeRecord,
    Invoice,
    RefundTicket,
    SalesCase,
    Subscription,
    SubscriptionClaim,
)

# --- the gateway -------------------------------------------------------------------------------


@functools.cache
def stripe_client(api_base: str, api_key: str) -> stripe.StripeClient:
    """The stripe SDK on localstripe. No retries: a gateway that doesn't answer fails the test
    rather than being asked again."""
    return stripe.StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=0)


def payment_intents_of(gateway: stripe.StripeClient, workflow_id: str) -> list[Any]:
    """Every PaymentIntent the gateway holds for one change (tagged with its workflow id)."""
    page = gateway.v1.payment_intents.list(params={"limit": 100})
    return [pi for pi in page.auto_paging_iter()
            if pi.metadata and pi.metadata.to_dict().get("workflow_id") == workflow_id]


def charges(gateway: stripe.StripeClient, subscription: Subscription | None = None, *,
            workflow_id: str | None = None) -> list[Any]:
    """Every charge attempt at the gateway on the customer of a subscription (none when it has
    no gateway customer, as for an offline payer), or for one change (the charges of the
    PaymentIntents tagged with its workflow id), or both at once."""
    if subscription is None and workflow_id is None:
        raise TypeError("charges of what: give a subscription row, a workflow id, or both")
    params: dict[str, Any] = {"limit": 100}
    if subscription is not None:
        if subscription.gateway_customer_id is None:
            return []
        params["customer"] = subscription.gateway_customer_id
    found = list(gateway.v1.charges.list(params=params).auto_paging_iter())
    if workflow_id is not None:
        intents = {pi.id for pi in payment_intents_of(gateway, workflow_id)}
        found = [charge for charge in found if charge.payment_intent in intents]
    return found


def succeeded_charges(gateway: stripe.StripeClient, subscription: Subscription | None = None, *,
                      workflow_id: str | None = None) -> list[Any]:
    """The charges of `charges(...)` that took the money."""
    return [c for c in charges(gateway, subscription, workflow_id=workflow_id)
            if c.status == "succeeded"]


def refunds_of(gateway: stripe.StripeClient, intent_id: str) -> list[Any]:
    return list(gateway.v1.refunds.list(
        params={"payment_intent": intent_id, "limit": 100}).data)


def payment_intent(gateway: stripe.StripeClient, intent_id: str) -> Any:
    return gateway.v1.payment_intents.retrieve(intent_id)


# --- the database ------------------------------------------------------------------------------

def subscription_row(deps: Dependencies, org: str, product: str) -> Subscription:
    with deps.sessions() as session:
        return session.exec(select(Subscription).where(Subscription.org_id == org,
                                                       Subscription.product == product)).one()


def claim_of(deps: Dependencies, org: str, product: str) -> str | None:
    """The workflow id holding the subscription for its change, or None when it is free."""
    sub = subscription_row(deps, org, product)
    with deps.sessions() as session:
        claim = session.get(SubscriptionClaim, sub.id)
        return claim.workflow_id if claim else None


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


def change_rows(deps: Dependencies, workflow_id: str) -> dict[str, int]:
    """How many of each per-change row the database holds for one workflow id."""
    with deps.sessions() as session:
        return {name: session.exec(select(func.count()).select_from(table)
                                   .where(table.workflow_id == workflow_id)).one()
                for name, table in (("change_record", ChangeRecord),
                                    ("applied_change", AppliedChange), ("invoice", Invoice),
                                    ("refund_ticket", RefundTicket))}


def audit_entries(deps: Dependencies, *, org: str | None = None,
                  workflow_id: str | None = None) -> list[AuditLog]:
    """The audit log of an organisation, of one change, or of one change of an organisation,
    oldest first."""
    if org is None and workflow_id is None:
        raise TypeError("audit entries of what: give an org, a workflow id, or both")
    query = select(AuditLog)
    if org is not None:
        query = query.where(AuditLog.org_id == org)
    if workflow_id is not None:
        query = query.where(AuditLog.workflow_id == workflow_id)
    with deps.sessions() as session:
        return list(session.exec(query.order_by(AuditLog.id)))


# --- what the server lists ---------------------------------------------------------------------

async def search_attributes(handle: WorkflowHandle, expected: tuple[str, str]
                            ) -> tuple[str | None, str | None]:
    """ChangeStep and ChangeStatus as the server lists them, once they read `expected` (the
    workflow task that upserts them may reach the server just after the query shows the state).
    """
    seen: tuple[str | None, str | None] = (None, None)
    for _ in range(100):
        described = (await handle.describe()).typed_search_attributes
        seen = (described.get(CHANGE_STEP), described.get(CHANGE_STATUS))
        if seen == expected:
            break
        await asyncio.sleep(0.05)
    return seen


# --- the mailbox -------------------------------------------------------------------------------

class Mailbox:
    """The Maildir the SMTP sink writes: what the billing contacts received."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self, to: str | None = None) -> list[Message]:
        box = maildir.Maildir(self.path, create=False)
        found = [m for m in box if to is None or m["To"] == to]
        return sorted(found, key=lambda m: m["Date"] or "")

    def with_subject(self, fragment: str) -> list[Message]:
        return [m for m in self.messages() if fragment in (m["Subject"] or "")]


def mail_text(message: Message) -> str:
    """The plain-text body of an email from the Maildir; the invoice email is multipart (the text
    and a PDF attachment), so `get_payload()` is a list of parts, not the text."""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {message['Subject']!r}")


def pdf_attachments(message: Message) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() == "application/pdf"]


def pdf_text(data: bytes) -> str:
    """What a reader of the PDF sees, read back with pypdf."""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


# --- nothing moved -----------------------------------------------------------------------------

def assert_untouched(deps: Dependencies, gateway: stripe.StripeClient, mailbox: Mailbox,
                     org: str, product: str = "one", *, seats: int = 30,
                     version: int = 1) -> None:
    """Nothing a user could see moved: no money taken, no email, the subscription as loaded."""
    sub = subscription_row(deps, org, product)
    assert succeeded_charges(gateway, sub) == []
    assert [m["Subject"] for m in mailbox.messages(to=f"billing@{org}.example")
            if not is_payment_notice(m)] == []
    assert (sub.seats, sub.version) == (seats, version)


def is_payment_notice(message: Message) -> bool:
    """The notice of a declined payment (SPEC section 11), not an invoice."""
    return (message["Message-ID"] or "").startswith("<payment-failed.")


def payment_notices(mailbox: Mailbox, org: str) -> list[Message]:
    return [m for m in mailbox.messages(to=f"billing@{org}.example") if is_payment_notice(m)]
