"""Reads and writes of the service's database, one unit of work per call (keyword-only)."""

from __future__ import annotations

from typing import Literal, cast

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from subchange.domain import rules
from subchange.domain.catalog import BillingPeriod
from subchange.domain.contracts import (
    ChangeRequest,
    ChangeResult,
    PaymentRecord,
    Quote,
    SubscriptionView,
)
from subchange.domain.facts import ChangeContext, Organisation, Requester, SubscriptionTerms
from subchange.store.tables import (
    AppliedChange,
    AuditLog,
    ChangeRecord,
    GatewayCall,
    Invoice,
    Org,
    OrgUser,
    Subscription,
    SubscriptionClaim,
    invoice_ref,
    utcnow,
)


class StaleSubscription(Exception):
    """The subscription changed after the change was quoted."""


def load_context(*, session: Session, org_id: str, product: str, requested_by: str
                 ) -> ChangeContext:
    """The facts the rules judge a change of this subscription by."""
    org = session.get(Org, org_id)
    sub = session.exec(select(Subscription).where(Subscription.org_id == org_id,
                                                  Subscription.product == product)).first()
    # The organisation's users are read here, and only here, to find the requester and count
    # the seat holders (R4): few enough to count in Python.
    users = list(session.exec(select(OrgUser).where(OrgUser.org_id == org_id)))
    return ChangeContext(
        org=Organisation(id=org.id, currency=org.currency) if org is not None else None,
        requester=_requester(users, requested_by),
        subscription=_terms(sub) if sub is not None else None,
        active_seat_holders=_active_seat_holders(users, product, sub.pricing_model)
        if sub is not None else 0)


def _requester(users: list[OrgUser], email: str) -> Requester | None:
    user = next((u for u in users if u.email.lower() == email.lower()), None)
    if user is None:
        return None
    return Requester(email=user.email, role=user.role, primary_contact=user.primary_contact,
                     active=user.active)


def _active_seat_holders(users: list[OrgUser], product: str, pricing_model: str) -> int:
    if rules.counts_every_active_user(pricing_model):
        return sum(1 for u in users if u.active)
    return sum(1 for u in users if u.active and product in u.products)


def _terms(sub: Subscription) -> SubscriptionTerms:
    assert sub.id is not None
    return SubscriptionTerms(
        id=sub.id, product=sub.product, plan=sub.plan, seats=sub.seats,
        pricing_model=sub.pricing_model,
        billing_period=cast(BillingPeriod, sub.billing_period),
        period_start=sub.period_start, period_end=sub.period_end,
        payment_method=cast(Literal["online", "offline"], sub.payment_method),
        unit_price=sub.unit_price, version=sub.version)


def record_audit(*, session: Session, org_id: str, actor: str, action: str, outcome: str,
                 detail: str = "", workflow_id: str | None = None) -> None:
    """Add an audit entry; with a workflow id, at most one per (workflow id, action)."""
    if workflow_id is not None and session.exec(select(AuditLog.id).where(
            AuditLog.workflow_id == workflow_id, AuditLog.action == action)).first() is not None:
        return
    session.add(AuditLog(org_id=org_id, actor=actor, action=action, outcome=outcome,
                         detail=detail[:1000], workflow_id=workflow_id))


def open_change(*, session: Session, workflow_id: str, request: ChangeRequest
                ) -> ChangeResult | None:
    """Register the change; return the stored result when this workflow id already ended."""
    record = session.get(ChangeRecord, workflow_id)
    if record is not None:
        return ChangeResult.model_validate(record.result) if record.result else None
    session.add(ChangeRecord(workflow_id=workflow_id, request_id=request.request_id,
                             org_id=request.org_id, product=request.product,
                             kind=request.change.kind, requested_by=request.requested_by))
    try:
        session.commit()
    except IntegrityError:  # a concurrent attempt registered it first
        session.rollback()
    return None


def close_change(*, session: Session, workflow_id: str, result: ChangeResult) -> None:
    record = session.get(ChangeRecord, workflow_id)
    if record is not None and record.result is None:
        record.status = result.status.value
        record.result = result.model_dump(mode="json")
        record.updated_at = utcnow()
        session.add(record)
    for claim in session.exec(select(SubscriptionClaim)
                              .where(SubscriptionClaim.workflow_id == workflow_id)):
        session.delete(claim)
    session.commit()


def claim_subscription(*, session: Session, subscription_id: int, workflow_id: str) -> str | None:
    """Take the subscription for this change. Returns the workflow id of another holder, if any."""
    claim = session.get(SubscriptionClaim, subscription_id)
    if claim is not None:
        return None if claim.workflow_id == workflow_id else claim.workflow_id
    session.add(SubscriptionClaim(subscription_id=subscription_id, workflow_id=workflow_id))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        claim = session.get(SubscriptionClaim, subscription_id)
        return None if claim is None or claim.workflow_id == workflow_id else claim.workflow_id
    return None


def subscription_view(sub: Subscription) -> SubscriptionView:
    return SubscriptionView(plan=sub.plan, seats=sub.seats, pricing_model=sub.pricing_model,
                            period_start=sub.period_start, period_end=sub.period_end,
                            disabled_features=list(sub.disabled_features))


def apply_change(*, session: Session, workflow_id: str, request: ChangeRequest, quote: Quote,
                 payment: PaymentRecord, target_features: frozenset[str]
                 ) -> tuple[SubscriptionView, str]:
    """Apply the quoted change and issue its invoice in one transaction, once per workflow id.

    The update is a compare-and-set on the version the quote priced, so a change quoted against a
    state that has since moved can never be applied over it (R6: data is kept, features are
    only recorded as switched off)."""
    done = session.get(AppliedChange, workflow_id)
    if done is not None:
        sub = session.get(Subscription, done.subscription_id)
        invoice = session.exec(select(Invoice).where(Invoice.workflow_id == workflow_id)).one()
        assert sub is not None and invoice.number is not None
        return SubscriptionView.model_validate(done.after), invoice.number

    sub = session.exec(select(Subscription).where(Subscription.org_id == request.org_id,
                                                  Subscription.product == request.product)).one()
    before = subscription_view(sub)
    values = {
        "plan": quote.new_plan,
        "seats": quote.new_seats,
        "period_start": quote.new_period_start,
        "period_end": quote.new_period_end,
        "disabled_features": rules.features_disabled_after(
            disabled=sub.disabled_features, switched_off=quote.features_switched_off,
            target_features=target_features),
        "unit_price": sub.unit_price if quote.new_plan == quote.old_plan else None,
        "version": sub.version + 1,
        "updated_at": utcnow(),
    }
    result = session.execute(
        update(Subscription)
        .where(col(Subscription.id) == sub.id, col(Subscription.version) == quote.subscription_version)
        .values(**values))
    if result.rowcount != 1:
        session.rollback()
        if session.get(AppliedChange, workflow_id) is not None:
            # An overlapping attempt of this same change (one that outlived its timeout)
            # committed first: that is this change applied, not a stale quote.
            return apply_change(session=session, workflow_id=workflow_id, request=request,
                                quote=quote, payment=payment, target_features=target_features)
        raise StaleSubscription(
            f"the {request.product} subscription of {request.org_id} changed after it was quoted "
            f"(quoted version {quote.subscription_version}, now {sub.version})")
    session.refresh(sub)
    after = subscription_view(sub)
    session.add(AppliedChange(workflow_id=workflow_id, subscription_id=sub.id,
                              before=before.model_dump(mode="json"),
                              after=after.model_dump(mode="json")))
    org = session.get(Org, request.org_id)
    assert org is not None
    invoice = Invoice(workflow_id=workflow_id, org_id=org.id, product=request.product,
                      amount=quote.amount_due, currency=quote.currency,
                      emailed_to=org.billing_email, quote=quote.model_dump(mode="json"),
                      payment=payment.model_dump(mode="json"))
    session.add(invoice)
    session.flush()
    assert invoice.id is not None
    invoice.number = invoice_ref(invoice.id, invoice.created_at)
    record_audit(session=session, org_id=org.id, actor=request.requested_by,
                 action=f"apply_{request.change.kind}_change", outcome="applied",
                 detail=f"{before.plan}/{before.seats} -> {after.plan}/{after.seats}",
                 workflow_id=workflow_id)
    session.commit()
    return after, invoice.number


def gateway_call(*, session: Session, workflow_id: str, step: str) -> GatewayCall | None:
    return session.get(GatewayCall, (workflow_id, step))


def save_gateway_call(*, session: Session, call: GatewayCall) -> None:
    call.updated_at = utcnow()
    session.add(call)
    session.commit()


def is_applied(*, session: Session, workflow_id: str) -> bool:
    return session.get(AppliedChange, workflow_id) is not None
