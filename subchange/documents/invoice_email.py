"""The invoice email (R10): what one applied change's invoice says in the message to the
organisation's billing address, in its language, with the invoice as a PDF attachment. The body
and the PDF are drawn from the same sheet (invoice_sheet.py).

A pure function of the invoice and its organisation, bar the Date header.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

from subchange.documents.invoice_pdf import render_invoice_pdf
from subchange.documents.invoice_sheet import Addressee, IssuedInvoice, invoice_sheet


def invoice_message_id(invoice: IssuedInvoice) -> str:
    """The Message-ID of the invoice's email, the same on every attempt, so that a message sent
    twice after a crash is one message to the mail systems that dedupe."""
    return f"<{invoice.number}.{invoice.workflow_id}@subchange>"


def render_invoice_email(invoice: IssuedInvoice, org: Addressee) -> EmailMessage:
    """The email of an invoice: a plain-text copy of the invoice with the PDF attached. `From`
    is the sender's to set (subchange.adapters.mail)."""
    sheet = invoice_sheet(invoice, org)
    lines = [f"{sheet.title} {invoice.number}", ""]
    lines += [f"{label}: {value}" if label else value for label, value in sheet.header]
    lines.append("")
    lines += [f"{label}: {value}" for label, value in sheet.supplied]
    lines.append("")
    lines += [f"{label}: {value}" if label else value for label, value in sheet.totals]
    if sheet.notes:
        lines.append("")
        lines += sheet.notes
    message = EmailMessage()
    message["Subject"] = sheet.subject
    message["To"] = invoice.emailed_to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = invoice.message_id
    message.set_content("\n".join(lines) + "\n")
    message.add_attachment(render_invoice_pdf(invoice, org), maintype="application",
                           subtype="pdf", filename=f"{invoice.number}.pdf")
    return message
