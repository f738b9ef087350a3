"""A subscription as it stands, before any change is asked for: its terms, and what the rules of
SPEC section 2 allow from there, judged by the rule functions a change is judged by (seat limits:
R2, R3; plan moves: R5, R6, R7). A page or a backend shows it to explain a change before it is
submitted (SPEC section 15); `GET /v1/orgs/{org_id}/subscriptions/{product}` and `subchange
subscription` answer it (assembled by subchange/app/subscriptions.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from state_machines.plan_tiers import PlanTierMachine
from subchange.domain import rules
from subchange.domain.catalog import Catalog, Product
from subchange.domain.facts import Organisation, SubscriptionTerms
from subchange.domain.quoting import unit_prices


class SeatLimits(BaseModel):
    """The seat counts a change may ask for (R2, R3), beside `seats` (asking for it again is a
    `no_change`)."""

    floor: int = Field(description="R2: the active users holding a seat (`active_users`); "
                                   "fewer seats are refused (`seat_floor`) until users who "
                                   "left are deactivated")
    minimum: int = Field(description="R3: the fewest seats the plan has: 1 on a paid plan, 0 "
                                     "on a free one (`seat_bounds`)")
    maximum: int = Field(description="R3: the plan's maximum, from the catalog (`seat_bounds`)")


class PlanMove(BaseModel):
    """A move from the current plan to another tier of the product, judged now as a change
    would be (R5, R6, R7, and R2 for the seats the move keeps)."""

    plan: str = Field(description="the tier moved to")
    direction: Literal["upgrade", "downgrade"]
    allowed: bool = Field(description="whether a change to this plan would pass the rules now")
    reason_code: str | None = Field(
        description="when refused: the reason code the quote and the change would give "
                    "(forbidden_move, agent_limit, seat_floor)")
    reason: str | None = Field(description="when refused: why, and what to do first")
    route: list[str] | None = Field(
        description="R5: for a move that is not direct, the allowed moves that reach it, from "
                    "the current plan to this one (each step a change of its own)")
    features_switched_off: list[str] = Field(
        description="R6: the current plan's features this plan lacks; the data is kept, the "
                    "features become unavailable")
    seats_after: int | None = Field(
        description="when allowed: the seats after the move (the current ones, cut to the "
                    "plan's maximum)")
    agent_limit: int | None = Field(
        description="R7: the active agents this plan allows (the free tier's limit); null: "
                    "no limit")
    unit_price: Decimal = Field(
        description="the catalog's price per seat of this plan for the subscription's pricing "
                    "model, currency and billing period, as a quote prices the move")


class Card(BaseModel):
    """What the gateway shows of the card on file: never its number."""

    brand: str = Field(description="visa, mastercard, amex, ...")
    last4: str = Field(description="the card number's last four digits")
    exp_month: int | None
    exp_year: int | None


class PaymentDetails(BaseModel):
    method: Literal["card", "offline"] = Field(
        description="R9: card (charged through the gateway) or offline (bank transfer: a "
                    "change is routed to sales)")
    card: Card | None = Field(description="the card on file, read from the gateway; null for "
                                          "an offline payer or when card_status says why")
    card_status: Literal["on_file", "none_on_file", "unavailable"] | None = Field(
        description="for a card payer: on_file (card shown), none_on_file (no card the gateway "
                    "knows: a charge would fail until one is registered with POST "
                    "/v1/orgs/{org_id}/card), or unavailable (the gateway did not answer now: "
                    "ask again); null for an offline payer")


class ScheduledChangeRef(BaseModel):
    """The period-end change holding the subscription's slot (SPEC section 10)."""

    workflow_id: str = Field(description="follow it at /v1/changes/{workflow_id}")
    effective_date: date = Field(description="the day it takes effect (the period end)")


class SubscriptionDetails(BaseModel):
    """A subscription as it is now, and what a change of it may ask for."""

    org_id: str
    product: str
    product_name: str = Field(description="the product's name in the catalog")
    plan: str = Field(description="the current plan tier")
    plan_features: list[str] = Field(description="the current plan's features (catalog)")
    disabled_features: list[str] = Field(
        description="R6: features earlier downgrades switched off (their data is kept)")
    pricing_model: str = Field(description="R4: all_employee, flexible_user, per_agent, ...")
    billing_period: Literal["monthly", "yearly"]
    seats: int
    active_users: int = Field(
        description="the active users holding a seat, counted as the seat floor counts them "
                    "(R2, R4: every active user of the organisation under all_employee, else "
                    "the active users assigned the product)")
    currency: str
    unit_price: Decimal = Field(
        description="the price per seat and billing period: a negotiated price when the "
                    "subscription has one, else the catalog's")
    period_start: date = Field(description="the billing period is [period_start, period_end)")
    period_end: date
    time_zone: str = Field(description="the organisation's IANA time zone, whose calendar "
                                       "dates its changes and periods")
    seat_limits: SeatLimits
    plan_moves: list[PlanMove] = Field(
        description="every other tier of the product, in catalog order (empty for a product "
                    "with one plan)")
    payment: PaymentDetails
    scheduled_change: ScheduledChangeRef | None = Field(
        description="the change waiting for the period end, if any (at most one, SPEC 10)")
    change_in_progress: str | None = Field(
        description="the workflow id of the change holding the subscription now (one at a "
                    "time): a second change is refused change_in_progress until it ends")


def seat_limits(product: Product, terms: SubscriptionTerms, active: int) -> SeatLimits:
    """The counts check_seat_floor and check_seat_bounds allow, stated before a change is."""
    tier = product.tier(terms.plan)
    return SeatLimits(floor=active, minimum=rules.fewest_seats(tier), maximum=tier.max_seats)


def plan_moves(catalog: Catalog, org: Organisation, terms: SubscriptionTerms, active: int
               ) -> list[PlanMove]:
    """Every other tier, judged by check_plan_move as the workflow judges a plan change."""
    product = catalog.product(terms.product)
    machine = PlanTierMachine(product)
    rank = product.tier(terms.plan).rank
    moves = []
    for tier in product.tiers:
        if tier.id == terms.plan:
            continue
        target, rejection = rules.check_plan_move(product, terms, tier.id, active)
        not_direct = rejection is not None and rejection.reason_code == "forbidden_move"
        moves.append(PlanMove(
            plan=tier.id, direction="upgrade" if tier.rank > rank else "downgrade",
            allowed=target is not None,
            reason_code=rejection.reason_code if rejection else None,
            reason=rejection.reason if rejection else None,
            route=list(machine.route(terms.plan, tier.id)) if not_direct else None,
            # What the move's Target carries when it is allowed; said of a refused one too, so
            # a page can tell what the route ends without.
            features_switched_off=list(machine.features_switched_off(terms.plan, tier.id)),
            seats_after=target.seats if target else None,
            agent_limit=tier.agent_limit,
            unit_price=unit_prices(catalog, org, terms, tier.id)[1]))
    return moves

