"""Admission of a change: register it, authorize the requester (R1, R12), validate it (R2, R3,
R5, R7) while claiming the subscription, and quote it (R8). Close it when it ends."""

from __future__ import annotations

from sqlmodel import Session
from temporalio import activity

from activities.claims import SubscriptionClaims
from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from activities.liveness import heartbeating
from activities.payments import LEDGER_CHARGE
from subchange.domain import rules
from subchange.domain.contracts import ChangeRequest
from subchange.domain.facts import ChangeContext
from subchange.domain.quoting import build_period_end_quote, build_quote
from subchange.domain.step_io import (
    Admission,
    CloseChangeInput,
    DatedRequest,
    OpenChangeOutput,
    QuoteOutcome,
)
from subchange.faults import pause_point
from subchange.store import audit, changes, ledger, subscriptions


class AdmissionActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.claims = SubscriptionClaims(deps)

    @staticmethod
    def _context(session: Session, request: ChangeRequest) -> ChangeContext:
        return subscriptions.load_context(session=session, org_id=request.org_id,
                                          product=request.product,
                                          requested_by=request.requested_by)

    @activity.defn(name="open_change")
    def open_change(self, request: ChangeRequest) -> OpenChangeOutput:
        with self.deps.sessions() as session:
            previous = changes.open_change(
                session=session, workflow_id=calling_workflow_id(), request=request)
        return OpenChangeOutput(previous_result=previous)

    @activity.defn(name="authorize_admin")
    def authorize_admin(self, request: ChangeRequest) -> Admission:
        workflow_id = calling_workflow_id()
        with self.deps.sessions() as session:
            ctx = self._context(session, request)
            rejection = rules.authorize_requester(self.deps.catalog, request, ctx)
            # Every attempt is audited (R1), an unknown org's too; once per change, not per retry.
            audit.record_audit(
                session=session, org_id=request.org_id, actor=request.requested_by,
                action=f"request_{request.change.kind}_change",
                outcome="denied" if rejection else "authorized",
                detail=rejection.reason if rejection else request.describe(),
                workflow_id=workflow_id)
        return Admission(rejection=rejection)

    @activity.defn(name="validate_change", no_thread_cancel_exception=True)
    def validate_change(self, step: DatedRequest) -> Admission:
        request = step.request
        workflow_id = calling_workflow_id()
        with heartbeating(), self.deps.sessions() as session:
            ctx = self._context(session, request)
            _, rejection = rules.validate_change(self.deps.catalog, request, ctx,
                                                 step.day_for(ctx.org))
            if rejection is None:
                assert ctx.subscription is not None
                rejection = self.claims.claim(session=session, request=request,
                                              subscription_id=ctx.subscription.id,
                                              workflow_id=workflow_id)
        return Admission(rejection=rejection)

    @activity.defn(name="quote_change")
    def quote_change(self, step: DatedRequest) -> QuoteOutcome:
        request = step.request
        with self.deps.sessions() as session:
            ctx = self._context(session, request)
            charge = ledger.gateway_call(session=session, workflow_id=calling_workflow_id(),
                                         step=LEDGER_CHARGE)
        day = step.day_for(ctx.org)
        target, rejection = rules.validate_change(self.deps.catalog, request, ctx, day)
        if rejection is not None:
            return QuoteOutcome(rejection=rejection)
        assert target is not None and ctx.org is not None and ctx.subscription is not None
        if request.effective == "period_end":  # SPEC section 10: nothing prorated or due now
            return QuoteOutcome(quote=build_period_end_quote(
                catalog=self.deps.catalog, org=ctx.org, sub=ctx.subscription, request=request,
                target=target, change_date=day))
        quote = build_quote(catalog=self.deps.catalog, org=ctx.org, sub=ctx.subscription,
                            request=request, target=target, change_date=day,
                            minimums=self.deps.minimums)
        if quote.carried_to_renewal and charge is not None and charge.external_id is not None:
            # An earlier run of this workflow id (terminated before its apply, started again)
            # holds an intent that may have taken money: the charge step settles it first (it
            # refunds it, then refuses this amount, money-safe), so this quote is not carried past
            # it. A later quote, with no intent left on record, is carried.
            quote = quote.model_copy(update={"carried_to_renewal": False})
        return QuoteOutcome(quote=quote)

    @activity.defn(name="close_change")
    def close_change(self, close: CloseChangeInput) -> None:
        with self.deps.sessions() as session:
            changes.close_change(session=session, workflow_id=calling_workflow_id(),
                                 result=close.result)
        pause_point(self.deps.settings, "close.after_commit")
