"""Invoice email (R10): one message per applied change to the organisation's billing address,
composed by subchange.documents.invoice_email and sent by subchange.adapters.mail.

The invoice row is written with the applied change, so it exists exactly when the change does.
Sending is recorded before and after the SMTP call with a Message-ID derived from the invoice
number: SMTP has no idempotency, so the only gap left is a crash between the server's final
"250 OK" and our commit, where a retry re-sends the same Message-ID (which mail systems dedupe).
The step heartbeats (during the SMTP session too), so the attempt of a worker that died is retried
after the heartbeat timeout; a Temporal cancel never interrupts it (the change is applied).
"""

from __future__ import annotations

from temporalio import activity

from activities.dependencies import Dependencies
from activities.liveness import heartbeating
from subchange.adapters.mail import send_email
from subchange.documents.invoice_email import invoice_message_id, render_invoice_email
from subchange.domain.contracts import InvoiceRecord
from subchange.faults import pause_point
from subchange.store import invoices


class InvoiceActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="email_invoice", no_thread_cancel_exception=True)
    def email_invoice(self, invoice_number: str) -> InvoiceRecord:
        settings = self.deps.settings
        with self.deps.sessions() as session:
            invoice, org = invoices.invoice_to_email(session=session, number=invoice_number)
        record = InvoiceRecord(number=invoice_number, amount=invoice.amount,
                               currency=invoice.currency, emailed_to=invoice.emailed_to)
        if invoice.email_status == "sent":
            return record
        activity.heartbeat()
        with self.deps.sessions() as session:
            invoice = invoices.mark_sending(session=session, number=invoice_number,
                                            message_id=invoice_message_id(invoice))
        message = render_invoice_email(invoice, org)
        activity.heartbeat()
        pause_point(settings, "email.before_send")
        with heartbeating():
            send_email(message, settings=settings)
        pause_point(settings, "email.after_send")
        activity.heartbeat()
        with self.deps.sessions() as session:
            invoices.mark_sent(session=session, number=invoice_number)
        activity.logger.info("invoice %s emailed", invoice_number)
        return record
