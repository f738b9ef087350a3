"""Routing offline payers to sales (R9): a sales case the team decides on, and its closing."""

from __future__ import annotations

from temporalio import activity

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from subchange.domain.money import format_money
from subchange.domain.step_io import CloseSalesCaseInput, SalesCaseInput, SalesCaseOutput
from subchange.domain.webhooks import awaiting_sales_data, change_ref
from subchange.store import cases
from subchange.store.outbox import NewEvent
from subchange.store.tables import SalesCase, sales_case_ref


class SalesActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="open_sales_case")
    def open_sales_case(self, case: SalesCaseInput) -> SalesCaseOutput:
        quote, request = case.quote, case.request
        # What sales approve is what will be invoiced: the adjustment with its tax (signed: a
        # decrease is the unused value, tax included, as a refund would return it).
        with_tax = quote.total_due if quote.amount > 0 else -quote.refundable_total
        summary = (f"{request.describe()} ({quote.old_plan}/{quote.old_seats} → "
                   f"{quote.new_plan}/{quote.new_seats}), adjustment "
                   f"{format_money(quote.amount, quote.currency)}"
                   + (f", {format_money(with_tax, quote.currency)} with tax"
                      if quote.tax is not None else "")
                   + f", asked by {request.requested_by}")
        workflow_id = calling_workflow_id()
        timeout = self.deps.settings.sales_decision_timeout

        def awaiting_sales(row: SalesCase) -> NewEvent:
            assert row.id is not None
            ref = change_ref(workflow_id=workflow_id, request_id=request.request_id,
                             org_id=request.org_id, product=request.product)
            return NewEvent("change.awaiting_sales", workflow_id, awaiting_sales_data(
                ref, sales_case=sales_case_ref(row.id), quote=quote, decision_timeout=timeout))

        with self.deps.sessions() as session:
            row = cases.open_sales_case(session=session, event=awaiting_sales, case=SalesCase(
                workflow_id=workflow_id, org_id=request.org_id, product=request.product,
                summary=summary[:500], amount=with_tax, currency=quote.currency))
        assert row.id is not None
        return SalesCaseOutput(case_id=sales_case_ref(row.id), decision_timeout=timeout)

    @activity.defn(name="close_sales_case")
    def close_sales_case(self, close: CloseSalesCaseInput) -> None:
        with self.deps.sessions() as session:
            cases.close_sales_case(session=session, workflow_id=calling_workflow_id(),
                                   outcome=close.outcome, by=close.by, note=close.note)
