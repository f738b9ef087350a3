"""Invoices: issued with the applied change they bill (R10), then emailed once. The email state
is recorded before and after sending (pending, sending, sent) with the Message-ID it went out
with, so a retry re-sends the same message rather than a second one. `sending` is a lease, taken
by compare-and-set and renewed while the attempt sends: an attempt beside it waits for the lease
to end instead of sending too."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from subchange.domain.contracts import PaymentRecord, Quote
from subchange.domain.seller import Seller
from subchange.store.tables import Invoice, InvoiceCounter, Org, invoice_ref, utcnow


def issue_invoice(*, session: Session, workflow_id: str, org: Org, product: str, quote: Quote,
                  payment: PaymentRecord, seller: Seller) -> Invoice:
    """Add the change's invoice, numbered, to the caller's transaction (the apply's), with its
    issuer, language and recipient as they are now."""
    issued = utcnow()
    year = issued.astimezone(ZoneInfo(org.time_zone or "UTC")).year  # as the invoice is dated
    number = next_invoice_number(session=session, year=year)
    invoice = Invoice(workflow_id=workflow_id, org_id=org.id, product=product, number=number,
                      created_at=issued,
                      seller=dataclasses.asdict(seller), locale=org.locale, billed_to=org.name,
                      amount=quote.total_due, currency=quote.currency,
                      subtotal=quote.amount_due if quote.tax is not None else None,
                      tax=quote.tax.tax if quote.tax is not None else None,
                      emailed_to=org.billing_email, quote=quote.model_dump(mode="json"),
                      payment=payment.model_dump(mode="json"))
    session.add(invoice)
    return invoice


def next_invoice_number(*, session: Session, year: int) -> str:
    """The next invoice number of the year, taken in the caller's transaction: the counter row
    stays locked until that transaction ends, so concurrent issues take consecutive numbers and
    one rolled back (a crash, a stale quote) gives its number back: no gaps. A year's counter
    starts after the highest number that year already has (invoices numbered before counters
    existed), so numbers stay unique. The sequence is the deployment issuer's; should the
    issuer change (SELLER_REGISTRATION_NUMBER), the new one continues it rather than restart
    at 1 and repeat numbers."""
    key = (col(InvoiceCounter.year) == year,)
    bump = (sa.update(InvoiceCounter).where(*key).values(last=InvoiceCounter.last + 1)
            .returning(col(InvoiceCounter.last)).execution_options(synchronize_session=False))
    sequence = session.execute(bump).scalar_one_or_none()
    if sequence is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(InvoiceCounter).values(
            year=year, last=_highest_of(session, year)).on_conflict_do_nothing())
        sequence = session.execute(bump).scalar_one()
    return invoice_ref(year, sequence)


def _highest_of(session: Session, year: int) -> int:
    numbers = session.execute(sa.select(col(Invoice.number)).where(
        col(Invoice.number).like(f"{invoice_ref(year, 0)[:-6]}%"))).scalars()
    return max((int(number.rsplit("-", 1)[1]) for number in numbers if number), default=0)


def change_invoice(*, session: Session, workflow_id: str) -> Invoice:
    return session.exec(select(Invoice).where(Invoice.workflow_id == workflow_id)).one()


def invoice_to_email(*, session: Session, number: str) -> tuple[Invoice, Org]:
    """The invoice and the organisation it is addressed to."""
    invoice = _invoice(session, number)
    org = session.get(Org, invoice.org_id)
    assert org is not None
    return invoice, org


def issued(*, session: Session, number: str) -> tuple[Invoice, Org] | None:
    """An issued invoice and its organisation; None for a number never issued."""
    invoice = session.exec(select(Invoice).where(Invoice.number == number)).first()
    if invoice is None:
        return None
    org = session.get(Org, invoice.org_id)
    assert org is not None
    return invoice, org


# Updates of the email state, evaluated by the database alone (a row this session holds may be
# stale; the compare-and-set is the point).
_UPDATE = sa.update(Invoice).execution_options(synchronize_session=False)


def take_sending(*, session: Session, number: str, holder: str, until: datetime,
                 emailed_to: str, message_id: str) -> bool:
    """Take the lease to send the invoice to `emailed_to` (the billing address as it is now):
    when it is pending, when the lease of an earlier attempt ran out, or when `holder` has it."""
    now = utcnow()
    taken = session.exec(_UPDATE.where(
        col(Invoice.number) == number,
        sa.or_(col(Invoice.email_status) == "pending",
               sa.and_(col(Invoice.email_status) == "sending",
                       sa.or_(col(Invoice.sending_until).is_(None),
                              col(Invoice.sending_until) < now,
                              col(Invoice.sending_holder) == holder))),
    ).values(email_status="sending", sending_holder=holder, sending_until=until,
             emailed_to=emailed_to, message_id=message_id))
    session.commit()
    return taken.rowcount == 1


def renew_sending(*, session: Session, number: str, holder: str, until: datetime) -> bool:
    renewed = session.exec(_UPDATE.where(
        col(Invoice.number) == number, col(Invoice.email_status) == "sending",
        col(Invoice.sending_holder) == holder).values(sending_until=until))
    session.commit()
    return renewed.rowcount == 1


def release_sending(*, session: Session, number: str, holder: str) -> None:
    """Give the lease back after a send that failed (nothing went out)."""
    session.execute(_UPDATE.where(
        col(Invoice.number) == number, col(Invoice.email_status) == "sending",
        col(Invoice.sending_holder) == holder).values(email_status="pending", sending_holder=None,
                                                 sending_until=None))
    session.commit()


def mark_sent(*, session: Session, number: str) -> None:
    """The message went out (by whichever attempt): sent, for good."""
    session.execute(_UPDATE.where(col(Invoice.number) == number).values(
        email_status="sent", sent_at=utcnow(), sending_holder=None, sending_until=None))
    session.commit()


def _invoice(session: Session, number: str) -> Invoice:
    return session.exec(select(Invoice).where(Invoice.number == number)).one()
