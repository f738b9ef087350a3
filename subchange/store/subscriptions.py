"""Subscriptions: the facts a change is judged by (load_context), the card on file, and applying
a quoted change, atomically and once per workflow id (SPEC step 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from sqlalchemy import func, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from subchange.domain import rules
from subchange.domain.catalog import BillingPeriod
from subchange.domain.contracts import ChangeRequest, PaymentRecord, Quote, SubscriptionView
from subchange.domain.facts import ChangeContext, Organisation, Requester, SubscriptionTerms
from subchange.domain.seller import Seller
from subchange.store import changes
from subchange.store.audit import add_audit_entry
from subchange.store.invoices import change_invoice, issue_invoice
from subchange.store.renewals import carry_to_renewal
from subchange.store.tables import (
    AppliedChange,
    Org,
    OrgUser,
    OrgUserProduct,
    Subscription,
    utcnow,
)


class StaleSubscription(Exception):
    """The subscription changed after the change was quoted."""


class ChangeWithdrawn(Exception):
    """The change was withdrawn (cancelled, or its charge refunded after it ended) before this
    apply could commit."""


@dataclass(frozen=True)
class CardOnFile:
    customer_id: str
    payment_method_id: str


def load_context(*, session: Session, org_id: str, product: str, requested_by: str
                 ) -> ChangeContext:
    """The facts the rules judge a change of this subscription by, in four indexed queries
    whatever the size of the organisation: its users are counted by the database, never read."""
    org = session.get(Org, org_id)
    sub = session.exec(_subscription_of(org_id, product)).first()
    user = session.exec(select(OrgUser).where(OrgUser.org_id == org_id,
                                              OrgUser.email == requested_by.lower())).first()
    return ChangeContext(
        org=_organisation(org) if org is not None else None,
        requester=(Requester(email=user.email, role=user.role,
                             primary_contact=user.primary_contact, active=user.active)
                   if user is not None else None),
        subscription=_terms(sub) if sub is not None else None,
        active_seat_holders=_active_seat_holders(session, org_id, product, sub.pricing_model)
        if sub is not None else 0)


@dataclass(frozen=True)
class SubscriptionOnFile:
    """A subscription as it stands, with what the rules judge a change of it by."""

    org: Organisation
    terms: SubscriptionTerms
    active_seat_holders: int  # counted as R4 says, as load_context counts them
    disabled_features: tuple[str, ...]  # R6: what earlier downgrades switched off
    card: CardOnFile | None


def read_subscription(*, session: Session, org_id: str, product: str
                      ) -> SubscriptionOnFile | None:
    """The organisation's subscription of the product, None when it has none."""
    sub = session.exec(_subscription_of(org_id, product)).first()
    org = session.get(Org, org_id) if sub is not None else None
    if sub is None or org is None:
        return None
    return SubscriptionOnFile(
        org=_organisation(org), terms=_terms(sub),
        active_seat_holders=_active_seat_holders(session, org_id, product, sub.pricing_model),
        disabled_features=tuple(sub.disabled_features), card=_card(sub))


def org_exists(*, session: Session, org_id: str) -> bool:
    return session.get(Org, org_id) is not None


def _organisation(org: Org) -> Organisation:
    return Organisation(id=org.id, currency=org.currency, time_zone=org.time_zone,
                        country=org.country, tax_exempt=org.tax_exempt)


def _active_seat_holders(session: Session, org_id: str, product: str, pricing_model: str
                         ) -> int:
    """R4: every active user of the organisation, or the active users assigned the product."""
    count = select(func.count()).select_from(OrgUser).where(OrgUser.org_id == org_id,
                                                            col(OrgUser.active))
    if not rules.counts_every_active_user(pricing_model):
        count = count.join(OrgUserProduct, col(OrgUserProduct.user_id) == OrgUser.id).where(
            OrgUserProduct.org_id == org_id, OrgUserProduct.product == product)
    return session.exec(count).one()


def _terms(sub: Subscription) -> SubscriptionTerms:
    assert sub.id is not None
    return SubscriptionTerms(
        id=sub.id, product=sub.product, plan=sub.plan, seats=sub.seats,
        pricing_model=sub.pricing_model,
        billing_period=cast(BillingPeriod, sub.billing_period),
        period_start=sub.period_start, period_end=sub.period_end,
        payment_method=cast(Literal["online", "offline"], sub.payment_method),
        unit_price=sub.unit_price, version=sub.version)


def card_on_file(*, session: Session, org_id: str, product: str) -> CardOnFile | None:
    """The gateway customer and payment method the subscription is charged to, if it has both."""
    return _card(session.exec(_subscription_of(org_id, product)).one())


def _card(sub: Subscription) -> CardOnFile | None:
    if not (sub.gateway_customer_id and sub.gateway_payment_method_id):
        return None
    return CardOnFile(customer_id=sub.gateway_customer_id,
                      payment_method_id=sub.gateway_payment_method_id)


def customer_of(*, session: Session, org_id: str) -> str | None:
    """The organisation's gateway customer (one per organisation), if it has one."""
    return session.exec(select(Subscription.gateway_customer_id)
                        .where(Subscription.org_id == org_id,
                               col(Subscription.gateway_customer_id).is_not(None))).first()


def use_card(*, session: Session, org_id: str, customer_id: str, method_id: str, last4: str
             ) -> list[str]:
    """Charge every subscription of the organisation to this card from now on, in the caller's
    transaction; an offline payer becomes a card payer (R9), which a quote names, so its version
    moves. The products, in order."""
    products = []
    for sub in session.exec(select(Subscription).where(Subscription.org_id == org_id)
                            .order_by(Subscription.product)):
        if sub.payment_method != "online":
            sub.payment_method, sub.version = "online", sub.version + 1
        sub.gateway_customer_id, sub.gateway_payment_method_id = customer_id, method_id
        sub.card_last4 = last4 or None
        session.add(sub)
        products.append(sub.product)
    return products


def version_of(*, session: Session, org_id: str, product: str) -> int:
    """The subscription's version (bumped by every change applied and every billing-field
    update a fixture load makes)."""
    return session.exec(_subscription_of(org_id, product)).one().version


def subscription_id_of(*, session: Session, org_id: str, product: str) -> int | None:
    sub = session.exec(_subscription_of(org_id, product)).first()
    return sub.id if sub is not None else None


def is_applied(*, session: Session, workflow_id: str) -> bool:
    return session.get(AppliedChange, workflow_id) is not None


def applied_change(*, session: Session, workflow_id: str) -> tuple[SubscriptionView, str] | None:
    """What the change's apply left (the subscription after it, the invoice number), if it ran."""
    done = session.get(AppliedChange, workflow_id)
    if done is None:
        return None
    invoice = change_invoice(session=session, workflow_id=workflow_id)
    assert invoice.number is not None
    return SubscriptionView.model_validate(done.after), invoice.number


def subscription_view(sub: Subscription) -> SubscriptionView:
    return SubscriptionView(plan=sub.plan, seats=sub.seats, pricing_model=sub.pricing_model,
                            period_start=sub.period_start, period_end=sub.period_end,
                            disabled_features=list(sub.disabled_features))


def apply_change(*, session: Session, workflow_id: str, request: ChangeRequest, quote: Quote,
                 payment: PaymentRecord, target_features: frozenset[str], seller: Seller
                 ) -> tuple[SubscriptionView, str]:
    """Apply the quoted change and issue its invoice in one transaction, once per workflow id;
    a change whose payment is carried adds its pending renewal item in that transaction too.

    The update is a compare-and-set on the version the quote priced, so a change quoted against a
    state that has since moved can never be applied over it (R6: data is kept, features are
    only recorded as switched off)."""
    done = applied_change(session=session, workflow_id=workflow_id)
    if done is not None:
        return done
    if changes.settle(session=session, workflow_id=workflow_id,
                      outcome=changes.APPLIED) == changes.WITHDRAWN:
        session.rollback()
        raise ChangeWithdrawn(f"{workflow_id} was withdrawn (cancelled, or refunded after it "
                              "ended) before this apply could commit: nothing was applied")

    sub = session.exec(_subscription_of(request.org_id, request.product)).one()
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
    result = session.exec(
        update(Subscription)
        .where(col(Subscription.id) == sub.id,
               col(Subscription.version) == quote.subscription_version)
        .values(**values))
    if result.rowcount != 1:
        session.rollback()
        if session.get(AppliedChange, workflow_id) is not None:
            # An overlapping attempt of this same change (one that outlived its timeout)
            # committed first: that is this change applied, not a stale quote.
            return apply_change(session=session, workflow_id=workflow_id, request=request,
                                quote=quote, payment=payment, target_features=target_features,
                                seller=seller)
        raise StaleSubscription(
            f"the {request.product} subscription of {request.org_id} changed after it was quoted "
            f"(quoted version {quote.subscription_version}, now {sub.version})")
    session.refresh(sub)
    assert sub.id is not None
    after = subscription_view(sub)
    session.add(AppliedChange(workflow_id=workflow_id, subscription_id=sub.id,
                              before=before.model_dump(mode="json"),
                              after=after.model_dump(mode="json")))
    org = session.get(Org, request.org_id)
    assert org is not None
    invoice = issue_invoice(session=session, workflow_id=workflow_id, org=org,
                            product=request.product, quote=quote, payment=payment,
                            seller=seller)
    if payment.method == "carried":  # below the gateway's minimum: billed at the next renewal
        assert invoice.number is not None and sub.id is not None
        carry_to_renewal(session=session, workflow_id=workflow_id, org_id=org.id,
                         subscription_id=sub.id, quote=quote, invoice_number=invoice.number)
    add_audit_entry(session=session, org_id=org.id, actor=request.requested_by,
                    action=f"apply_{request.change.kind}_change", outcome="applied",
                    detail=f"{before.plan}/{before.seats} -> {after.plan}/{after.seats}",
                    workflow_id=workflow_id)
    session.commit()
    assert invoice.number is not None
    return after, invoice.number


def _subscription_of(org_id: str, product: str) -> SelectOfScalar[Subscription]:
    return select(Subscription).where(Subscription.org_id == org_id,
                                      Subscription.product == product)
