"""Invoice email (R10): one message per applied change to the organisation's billing address,
composed by subchange.documents.invoice_email and sent by subchange.adapters.mail.

The invoice row is written with the applied change, so it exists exactly when the change does.
Sending is recorded before and after the SMTP call with a Message-ID derived from the invoice
number. Once the server answered "250 OK" to the end of DATA the message is sent, whatever it
answers to QUIT (subchange.adapters.mail), and the attempt records that with Temporal (a heartbeat
detail the next attempt receives) before it writes `sent`: should the database fail that write,
the next attempt writes it and sends nothing. SMTP has no idempotency, so the gap left is a
worker that dies after the "250 OK" before either record is made (the heartbeat may wait up to
2 s for its turn), where a retry re-sends the same Message-ID (which mail clients fold).
The step heartbeats (during the SMTP session too), so the attempt of a worker that died is retried
after the heartbeat timeout; a Temporal cancel never interrupts it (the change is applied).
`sending` is a lease renewed while the message goes out: an attempt that overlaps a live one
waits for it (EmailInProgress) instead of sending a second copy. The address is read from the
organisation until the invoice is sent, so fixing a billing address the server refused
(AddressNotDeliverable, parked for support) and retrying reaches the new one. A failure's message
names no address (it reaches the worker's log); the refused one is the failure's detail.
"""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dependencies import Dependencies
from activities.liveness import heartbeating, lease_end, until
from subchange.adapters.mail import AddressNotDeliverable, send_email
from subchange.documents.invoice_email import invoice_message_id, render_invoice_email
from subchange.domain.contracts import InvoiceRecord
from subchange.faults import pause_point
from subchange.store import invoices
from subchange.store.tables import Invoice


class InvoiceActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="email_invoice", no_thread_cancel_exception=True)
    def email_invoice(self, invoice_number: str) -> InvoiceRecord:
        settings, info = self.deps.settings, activity.info()
        holder = f"{info.activity_id}.{info.attempt}.{uuid.uuid4().hex[:16]}"
        with self.deps.sessions() as session:
            invoice, org = invoices.invoice_to_email(session=session, number=invoice_number)
        if invoice.email_status == "sent":
            return _record(invoice)
        if _accepted_in_an_earlier_attempt(info, invoice_number):
            # That attempt could not write `sent` (the database failed it): this one does, and
            # sends nothing.
            _tell_temporal_it_was_accepted(invoice_number)  # carried on to any next attempt
            return self._mark_sent(invoice)
        # To the billing address as it is now: one fixed after a failure is used. The message
        # is made before the lease is taken, so the lease covers only the sending.
        invoice.emailed_to, invoice.message_id = org.billing_email, invoice_message_id(invoice)
        message = render_invoice_email(invoice, org)
        activity.heartbeat()
        with self.deps.sessions() as session:
            invoices.take_sending(session=session, number=invoice_number, holder=holder,
                                  until=lease_end(), emailed_to=invoice.emailed_to,
                                  message_id=invoice.message_id)
            session.expire_all()
            invoice, org = invoices.invoice_to_email(session=session, number=invoice_number)
        if invoice.email_status == "sent":
            return _record(invoice)
        pause_point(settings, "email.before_send")
        if invoice.sending_holder != holder or not self._renew(invoice_number, holder):
            raise ApplicationError(
                f"invoice {invoice_number} is being sent by another attempt; this one waits "
                "for its lease to end", type="EmailInProgress",
                next_retry_delay=until(invoice.sending_until))
        try:
            with heartbeating(also=lambda: self._renew(invoice_number, holder)):
                send_email(message, settings=settings)
        except BaseException as failure:
            with self.deps.sessions() as session:  # nothing went out: the next attempt may send
                invoices.release_sending(session=session, number=invoice_number, holder=holder)
            if isinstance(failure, AddressNotDeliverable):
                # The address goes in a detail, sealed with the payloads, not in the message,
                # which the SDK writes to the worker's log.
                raise ApplicationError(
                    f"invoice {invoice_number}: the billing address can't be delivered: "
                    f"{failure}; correct the organisation's billing_email (starter.py load), "
                    "then retry", {"billing_email": failure.address},
                    type="AddressNotDeliverable", non_retryable=True) from None
            raise
        # The server accepted the message: it is sent, whatever happens next. Temporal hears it
        # first, so that an attempt after this one, should the database fail `sent`, writes
        # `sent` instead of sending a copy.
        _tell_temporal_it_was_accepted(invoice_number)
        pause_point(settings, "email.after_send")
        return self._mark_sent(invoice)

    def _mark_sent(self, invoice: Invoice) -> InvoiceRecord:
        assert invoice.number is not None
        with self.deps.sessions() as session:
            invoices.mark_sent(session=session, number=invoice.number)
        activity.logger.info("invoice %s emailed", invoice.number)
        return _record(invoice)

    def _renew(self, invoice_number: str, holder: str) -> bool:
        """Extend this attempt's lease; False when it no longer holds it."""
        with self.deps.sessions() as session:
            return invoices.renew_sending(session=session, number=invoice_number,
                                          holder=holder, until=lease_end())


# The heartbeat detail of an attempt whose message the server accepted. Temporal hands the last
# detail of an attempt to the next attempt of the step (heartbeat_details), also when the one
# before failed or timed out: one recorded by a heartbeat in any version, one still waiting for
# its turn (the SDK sends at most one per 2 s) along with the failure from Temporal Server 1.16
# (the SDK's core warns on an older server). A retry by support starts the step afresh, without.
ACCEPTED = "accepted"


def _tell_temporal_it_was_accepted(invoice_number: str) -> None:
    try:
        activity.heartbeat({ACCEPTED: invoice_number})
    except Exception:  # noqa: BLE001 - `sent` is still written; only a retry would not know
        activity.logger.exception("could not record with Temporal that invoice %s was accepted",
                                  invoice_number)


def _accepted_in_an_earlier_attempt(info: activity.Info, invoice_number: str) -> bool:
    return any(isinstance(detail, dict) and detail.get(ACCEPTED) == invoice_number
               for detail in info.heartbeat_details)




def _record(invoice: Invoice) -> InvoiceRecord:
    return InvoiceRecord(number=invoice.number or "", amount=invoice.amount,
                         currency=invoice.currency, emailed_to=invoice.emailed_to,
                         subtotal=invoice.subtotal, tax=invoice.tax)
