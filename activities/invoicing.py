"""Invoice email (R10): one message per applied change to the organisation's billing address,
a plain-text body with the invoice as a PDF attachment (subchange.documents.invoice_pdf).

The invoice row is written with the applied change, so it exists exactly when the change does.
Sending is recorded before and after the SMTP call with a Message-ID derived from the invoice
number: SMTP has no idempotency, so the only gap left is a crash between the server's final
"250 OK" and our commit, where a retry re-sends the same Message-ID (which mail systems dedupe).
"""

from __future__ import annotations

import smtplib
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate

from temporalio import activity

from activities.dependencies import Dependencies
from subchange.domain.contracts import InvoiceRecord, PaymentRecord, Quote
from subchange.domain.money import format_money
from subchange.faults import pause_point
from subchange.store import invoices
from subchange.store.tables import Invoice, Org


def render_invoice(invoice: Invoice, org: Org) -> EmailMessage:
    quote = Quote.model_validate(invoice.quote)
    payment = PaymentRecord.model_validate(invoice.payment)
    money = lambda amount: format_money(Decimal(amount), quote.currency)
    confirmation = invoice.amount == 0
    title = "Subscription change confirmation" if confirmation else "Invoice"
    lines = [
        f"{title} {invoice.number}",
        "",
        f"Organisation:    {org.name} ({org.id})",
        f"Product:         {quote.product}",
        f"Pricing model:   {quote.pricing_model}, billed {quote.billing_period}",
        (f"Change:          {quote.old_plan} × {quote.old_seats} → {quote.new_plan} × "
        f"{quote.new_seats}"),
        f"Unit price:      {money(quote.old_unit_price)} → {money(quote.new_unit_price)}",
        (f"Proration:       {quote.remaining_days} of {quote.period_days} days "
        f"({quote.change_date} to {quote.new_period_end})"),
        f"Adjustment:      {money(quote.amount)}",
        f"Amount due:      {money(invoice.amount)} (tax-free)",
    ]
    if quote.refundable_amount > 0:
        lines.append(f"Unused value:    {money(quote.refundable_amount)} is not refunded "
                     "automatically; ask us for a prorated refund if you want one.")
    if quote.features_switched_off:
        lines.append("Switched off:    " + ", ".join(quote.features_switched_off)
                     + " (your data is kept)")
    if payment.method == "card":
        lines.append(f"Paid by card:    charge {payment.charge_id}")
    elif payment.method == "offline":
        lines.append(f"Bank transfer:   approved by sales, case {payment.sales_case}")
    message = EmailMessage()
    message["Subject"] = f"{title} {invoice.number}: {quote.product} subscription"
    message["To"] = invoice.emailed_to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = invoice.message_id
    message.set_content("\n".join(lines) + "\n")
    # fpdf2 is heavy to import and only the worker sends email: not at import time, which the
    # workflow definition (and so starter.py) pays too.
    from subchange.documents.invoice_pdf import render_invoice_pdf

    message.add_attachment(render_invoice_pdf(invoice, org), maintype="application",
                           subtype="pdf", filename=f"{invoice.number}.pdf")
    return message


class InvoiceActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="email_invoice")
    def email_invoice(self, invoice_number: str) -> InvoiceRecord:
        settings = self.deps.settings
        with self.deps.sessions() as session:
            invoice, org = invoices.invoice_to_email(session=session, number=invoice_number)
        record = InvoiceRecord(number=invoice_number, amount=invoice.amount,
                               currency=invoice.currency, emailed_to=invoice.emailed_to)
        if invoice.email_status == "sent":
            return record
        with self.deps.sessions() as session:
            invoice = invoices.mark_sending(
                session=session, number=invoice_number,
                message_id=f"<{invoice_number}.{invoice.workflow_id}@subchange>")
        message = render_invoice(invoice, org)
        message["From"] = settings.mail_from
        pause_point(settings, "email.before_send")
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
            smtp.send_message(message)
        pause_point(settings, "email.after_send")
        with self.deps.sessions() as session:
            invoices.mark_sent(session=session, number=invoice_number)
        activity.logger.info("invoice %s emailed", invoice_number)
        return record
