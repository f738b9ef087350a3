"""A subscription as it stands (subchange.domain.subscription_details), assembled from the
database and the payment gateway: what `GET /v1/orgs/{org_id}/subscriptions/{product}` and
`subchange subscription` answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlmodel import Session

from subchange.domain.catalog import Catalog
from subchange.domain.quoting import unit_prices
from subchange.domain.subscription_details import (
    Card,
    PaymentDetails,
    ScheduledChangeRef,
    SubscriptionDetails,
    plan_moves,
    seat_limits,
)
from subchange.store import changes, scheduled, subscriptions
from subchange.store.subscriptions import CardOnFile

if TYPE_CHECKING:
    from subchange.adapters.gateway import Gateway

log = logging.getLogger("subchange.subscriptions")


class UnknownSubscription(Exception):
    """No such organisation, or it has no subscription of the product: the message says which."""


def describe_subscription(*, sessions: Callable[[], Session], catalog: Catalog,
                          gateway: Gateway, org_id: str, product: str) -> SubscriptionDetails:
    """The subscription now. The card is read from the gateway after the database session is
    closed, so a slow gateway holds no connection."""
    if product not in catalog.products:
        raise UnknownSubscription(f"no product {product!r}; products: "
                                  f"{', '.join(catalog.products)}")
    with sessions() as session:
        found = subscriptions.read_subscription(session=session, org_id=org_id, product=product)
        if found is None:
            raise UnknownSubscription(
                f"{org_id} has no {product} subscription"
                if subscriptions.org_exists(session=session, org_id=org_id)
                else f"no organisation {org_id!r}")
        terms = found.terms
        slot = scheduled.slot_of(session=session, subscription_id=terms.id)
        holder = changes.claim_holder(session=session, subscription_id=terms.id)
    tier = catalog.product(product).tier(terms.plan)
    return SubscriptionDetails(
        org_id=org_id, product=product, product_name=catalog.product(product).name,
        plan=terms.plan, plan_features=list(tier.features),
        disabled_features=list(found.disabled_features), pricing_model=terms.pricing_model,
        billing_period=terms.billing_period, seats=terms.seats,
        active_users=found.active_seat_holders, currency=found.org.currency,
        unit_price=unit_prices(catalog, found.org, terms, terms.plan)[0],
        period_start=terms.period_start, period_end=terms.period_end,
        time_zone=found.org.time_zone,
        seat_limits=seat_limits(catalog.product(product), terms, found.active_seat_holders),
        plan_moves=plan_moves(catalog, found.org, terms, found.active_seat_holders),
        payment=(PaymentDetails(method="offline", card=None, card_status=None)
                 if terms.payment_method == "offline" else card_payment(gateway, found.card)),
        scheduled_change=(ScheduledChangeRef(workflow_id=slot.workflow_id,
                                             effective_date=slot.effective_date)
                          if slot is not None else None),
        change_in_progress=holder)


def card_payment(gateway: Gateway, on_file: CardOnFile | None) -> PaymentDetails:
    """A card payer's card, as the gateway shows it. A gateway that does not answer leaves the
    card out (`unavailable`) rather than failing the read: the rest is the database's, and is
    what a page needs to explain a change; the card is read again when it is charged."""
    import stripe  # the gateway's code is loaded by the first card read, not at start

    if on_file is None:
        return PaymentDetails(method="card", card=None, card_status="none_on_file")
    try:
        card = gateway.card_details(on_file.payment_method_id)
    except stripe.StripeError as error:
        log.warning("the gateway did not show the card %s: %s", on_file.payment_method_id,
                    type(error).__name__)
        return PaymentDetails(method="card", card=None, card_status="unavailable")
    if card is None:
        return PaymentDetails(method="card", card=None, card_status="none_on_file")
    return PaymentDetails(method="card", card_status="on_file", card=Card(
        brand=card.brand, last4=card.last4, exp_month=card.exp_month, exp_year=card.exp_year))
