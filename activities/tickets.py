"""Refund tickets for the payments team (R11): opened once per change with the prorated amount."""

from __future__ import annotations

from urllib.parse import quote as url_quote

from temporalio import activity

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from subchange.domain.contracts import RefundTicketRecord
from subchange.domain.step_io import RefundTicketInput
from subchange.store import cases
from subchange.store.tables import RefundTicket, ticket_ref


class TicketActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def change_link(self, workflow_id: str) -> str:
        settings = self.deps.settings
        return (f"{settings.web_ui_url.rstrip('/')}/namespaces/"
                f"{url_quote(settings.temporal_namespace)}/workflows/{url_quote(workflow_id)}")

    @activity.defn(name="open_refund_ticket")
    def open_refund_ticket(self, ticket: RefundTicketInput) -> RefundTicketRecord:
        workflow_id = calling_workflow_id()
        with self.deps.sessions() as session:
            row = cases.open_refund_ticket(session=session, ticket=RefundTicket(
                workflow_id=workflow_id, org_id=ticket.request.org_id,
                product=ticket.request.product, amount=ticket.quote.refundable_total,
                currency=ticket.quote.currency, invoice_number=ticket.invoice_number,
                tax=ticket.quote.tax.refundable_tax if ticket.quote.tax is not None else None,
                change_link=self.change_link(workflow_id),
                requested_by=ticket.request.requested_by))
        assert row.id is not None
        return RefundTicketRecord(id=ticket_ref(row.id), amount=row.amount, currency=row.currency,
                                  tax=row.tax,
                                  invoice_number=row.invoice_number, change_link=row.change_link)
