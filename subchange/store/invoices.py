"""Invoices: issued with the applied change they bill (R10), then emailed once. The email state
is recorded before and after sending (pending, sending, sent) with the Message-ID it went out
with, so a retry re-sends the same message rather than a second one."""

from __future__ import annotations

from sqlmodel import Session, select

from subchange.domain.contracts import PaymentRecord, Quote
from subchange.store.tables import Invoice, Org, invoice_ref, utcnow


def issue_invoice(*, session: Session, workflow_id: str, org: Org, product: str, quote: Quote,
                  payment: PaymentRecord) -> Invoice:
    """Add the change's invoice, numbered, to the caller's transaction (the apply's)."""
    invoice = Invoice(workflow_id=workflow_id, org_id=org.id, product=product,
                      amount=quote.amount_due, currency=quote.currency,
                      emailed_to=org.billing_email, quote=quote.model_dump(mode="json"),
                      payment=payment.model_dump(mode="json"))
    session.add(invoice)
    session.flush()
    assert invoice.id is not None
    invoice.number = invoice_ref(invoice.id, invoice.created_at)
    return invoice


def change_invoice(*, session: Session, workflow_id: str) -> Invoice:
    return session.exec(select(Invoice).where(Invoice.workflow_id == workflow_id)).one()


def invoice_to_email(*, session: Session, number: str) -> tuple[Invoice, Org]:
    """The invoice and the organisation it is addressed to."""
    invoice = _invoice(session, number)
    org = session.get(Org, invoice.org_id)
    assert org is not None
    return invoice, org


def mark_sending(*, session: Session, number: str, message_id: str) -> Invoice:
    invoice = _invoice(session, number)
    invoice.email_status, invoice.message_id = "sending", message_id
    session.add(invoice)
    session.commit()
    return invoice


def mark_sent(*, session: Session, number: str) -> None:
    invoice = _invoice(session, number)
    invoice.email_status, invoice.sent_at = "sent", utcnow()
    session.add(invoice)
    session.commit()


def _invoice(session: Session, number: str) -> Invoice:
    return session.exec(select(Invoice).where(Invoice.number == number)).one()
