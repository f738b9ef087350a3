"""Business rules R1-R7 as pure functions over loaded rows: who may change, and what is valid.

Activities load the rows and record outcomes; `starter.py quote` runs the same rules read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from state_machines.plan_tiers import MoveVerdict, PlanTierMachine
from subchange.domain.catalog import Catalog
from subchange.domain.contracts import ChangeRequest, Rejection, SeatChange
from subchange.store.tables import Org, OrgUser, Subscription

ADMIN_ROLES = ("admin", "super_admin")


@dataclass
class ChangeContext:
    """What the rules need to know about one organisation and one of its subscriptions."""

    org: Org | None
    users: list[OrgUser]
    subscription: Subscription | None

    def user(self, email: str) -> OrgUser | None:
        return next((u for u in self.users if u.email.lower() == email.lower()), None)


@dataclass
class Target:
    """The validated outcome of a change: where the subscription ends up."""

    plan: str
    seats: int
    features_switched_off: tuple[str, ...] = field(default=())


def reject(code: str, reason: str) -> Rejection:
    return Rejection(reason_code=code, reason=reason)


def authorize(catalog: Catalog, request: ChangeRequest, ctx: ChangeContext) -> Rejection | None:
    """R1, R12: suite changes by org admins; help-desk changes by the primary contact or a
    super admin. The requester must be an active user of the same organisation."""
    if ctx.org is None:
        return reject("unknown_org", f"organisation {request.org_id!r} does not exist")
    user = ctx.user(request.requested_by)
    if user is None or not user.active:
        return reject("not_authorized",
                      f"{request.requested_by} is not an active user of {request.org_id}")
    product = catalog.product(request.product)
    if product.managers == "org_admin":
        allowed, needs = user.role in ADMIN_ROLES, "an organisation administrator"
    else:
        allowed = user.primary_contact or user.role == "super_admin"
        needs = "the primary contact or a super admin"
    if not allowed:
        return reject("not_authorized",
                      f"{request.requested_by} may not manage the {request.product} subscription: "
                      f"that takes {needs}")
    return None


def active_seat_holders(ctx: ChangeContext, product: str) -> int:
    """R4: under all_employee every active user counts; otherwise those assigned the product."""
    assert ctx.subscription is not None
    if ctx.subscription.pricing_model == "all_employee":
        return sum(1 for u in ctx.users if u.active)
    return sum(1 for u in ctx.users if u.active and product in u.products)


def validate(catalog: Catalog, request: ChangeRequest, ctx: ChangeContext, change_date: date
             ) -> tuple[Target | None, Rejection | None]:
    """R2, R3, R5, R7: is the requested change valid for the subscription as it stands?"""
    sub = ctx.subscription
    if sub is None:
        return None, reject("unknown_subscription",
                            f"{request.org_id} has no {request.product} subscription")
    if not sub.period_start <= change_date < sub.period_end:
        return None, reject(
            "billing_period_closed",
            f"the billing period {sub.period_start} .. {sub.period_end} does not include "
            f"{change_date}; renew the subscription before changing it")
    product = catalog.product(request.product)
    tier = product.tier(sub.plan)
    active = active_seat_holders(ctx, request.product)
    unit = product.seat_unit

    if isinstance(request.change, SeatChange):
        seats = request.change.seats
        if seats == sub.seats:
            return None, reject("no_change", f"the subscription already has {seats} {unit}s")
        if seats < 1 and not tier.is_free:
            return None, reject("seat_bounds", f"a paid plan needs at least 1 {unit}")
        if seats > tier.max_seats:
            return None, reject("seat_bounds",
                                f"{sub.plan} allows at most {tier.max_seats} {unit}s, "
                                f"{seats} requested")
        if seats < active:
            return None, reject(
                "seat_floor",
                f"{active} {unit}s are active, so seats can't go below {active}: deactivate "
                f"{active - seats} user(s) who left, then reduce")
        return Target(plan=sub.plan, seats=seats), None

    target_plan = request.change.plan
    if not product.has_tier(target_plan):
        tiers = ", ".join(t.id for t in product.tiers)
        return None, reject("unknown_plan",
                            f"{request.product} has no plan {target_plan!r}; plans: {tiers}")
    answer = PlanTierMachine(product).check_move(sub.plan, target_plan, active_agents=active)
    if answer.verdict is MoveVerdict.SAME_TIER:
        return None, reject("no_change", f"the subscription is already on {target_plan}")
    if answer.verdict is MoveVerdict.FORBIDDEN:
        route = " → ".join(answer.route)
        return None, reject(
            "forbidden_move",
            f"{sub.plan} → {target_plan} is not a direct move"
            + (f"; the allowed route is {route}" if answer.route else ""))
    if answer.verdict is MoveVerdict.OVER_AGENT_LIMIT:
        return None, reject(
            "agent_limit",
            f"{target_plan} allows {product.tier(target_plan).agent_limit} active {unit}s and "
            f"{active} are active: deactivate {answer.agents_to_deactivate} {unit}(s) first")
    target_tier = product.tier(target_plan)
    seats = min(sub.seats, target_tier.max_seats)
    if seats < active:
        return None, reject("seat_floor",
                            f"{target_plan} allows at most {target_tier.max_seats} {unit}s and "
                            f"{active} are active: deactivate {active - seats} first")
    return Target(plan=target_plan, seats=seats,
                  features_switched_off=answer.features_switched_off), None
