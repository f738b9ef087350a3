"""Routing offline payers to sales (R9): a sales case the team decides on, and its closing."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities import Dependencies
from subchange.domain.money import format_money
from subchange.domain.step_io import CloseSalesCaseInput, SalesCaseInput, SalesCaseOutput
from subchange.store.tables import SalesCase, sales_case_ref, utcnow


class SalesActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="open_sales_case")
    def open_sales_case(self, case: SalesCaseInput) -> SalesCaseOutput:
        workflow_id = activity.info().workflow_id
        quote, request = case.quote, case.request
        summary = (f"{request.describe()} ({quote.old_plan}/{quote.old_seats} → "
                   f"{quote.new_plan}/{quote.new_seats}), adjustment "
                   f"{format_money(quote.amount, quote.currency)}, asked by "
                   f"{request.requested_by}")
        with self.deps.sessions() as session:
            row = self._find(session, workflow_id)
            if row is None:
                session.add(SalesCase(workflow_id=workflow_id, org_id=request.org_id,
                                      product=request.product, summary=summary[:500],
                                      amount=quote.amount, currency=quote.currency))
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                row = self._find(session, workflow_id)
            assert row is not None and row.id is not None
            return SalesCaseOutput(case_id=sales_case_ref(row.id),
                                   decision_timeout=self.deps.settings.sales_decision_timeout)

    @activity.defn(name="close_sales_case")
    def close_sales_case(self, close: CloseSalesCaseInput) -> None:
        with self.deps.sessions() as session:
            row = self._find(session, activity.info().workflow_id)
            if row is None or row.status != "open":
                return
            row.status, row.decided_by, row.note = close.outcome, close.by, close.note
            row.decided_at = utcnow()
            session.add(row)
            session.commit()

    @staticmethod
    def _find(session, workflow_id: str) -> SalesCase | None:
        return session.exec(select(SalesCase).where(SalesCase.workflow_id == workflow_id)).first()
