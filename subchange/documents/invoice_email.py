"""The invoice email (R10): what one applied change's invoice says in the message to the
organisation's billing address, with the invoice as a PDF attachment (invoice_pdf.py).

A pure function of the invoice and its organisation, bar the Date header.
"""

from __future__ import annotations

from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate

from subchange.documents.invoice_pdf import (
    Addressee,
    IssuedInvoice,
    amount_lines,
    render_invoice_pdf,
    tax_within,
)
from subchange.domain.contracts import PaymentRecord, Quote
from subchange.domain.money import format_money


def invoice_message_id(invoice: IssuedInvoice) -> str:
    """The Message-ID of the invoice's email, the same on every attempt, so that a message sent
    twice after a crash is one message to the mail systems that dedupe."""
    return f"<{invoice.number}.{invoice.workflow_id}@subchange>"


def render_invoice_email(invoice: IssuedInvoice, org: Addressee) -> EmailMessage:
    """The email of an invoice: a plain-text summary with the PDF attached. `From` is the
    sender's to set (subchange.adapters.mail)."""
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
    ]
    lines += [f"{label + ':':<16} {money(amount)}{after}"
              for label, amount, after in amount_lines(quote, invoice.amount)]
    if quote.refundable_amount > 0:
        lines.append(f"Unused value:    {money(quote.refundable_total)}{tax_within(quote)} is "
                     "not refunded automatically; ask us for a prorated refund if you want one.")
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
    message.add_attachment(render_invoice_pdf(invoice, org), maintype="application",
                           subtype="pdf", filename=f"{invoice.number}.pdf")
    return message
