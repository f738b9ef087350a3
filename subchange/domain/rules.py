"""The business rules of SPEC section 2 as pure functions over the facts of one change
(subchange.domain.facts): who may change a subscription (R1, R12), whether the change is valid
(R2, R3, R4, R5, R7), which features a plan move leaves disabled (R6), and one change at a time.

`validate_change` runs the validity checks in a fixed order, so the same rejection wins when
several apply. Activities load the facts and record the outcome; `starter.py quote` runs the same
rules read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from state_machines.plan_tiers import MoveVerdict, PlanTierMachine
from subchange.domain.catalog import Catalog, Product, Tier
from subchange.domain.contracts import ChangeRequest, Rejection, SeatChange
from subchange.domain.facts import ChangeContext, SubscriptionTerms

ADMIN_ROLES = ("admin", "super_admin")


@dataclass(frozen=True)
class Target:
    """The validated outcome of a change: where the subscription ends up."""

    plan: str
    seats: int
    features_switched_off: tuple[str, ...] = field(default=())


def reject(code: str, reason: str) -> Rejection:
    return Rejection(reason_code=code, reason=reason)


def authorize_requester(catalog: Catalog, request: ChangeRequest, ctx: ChangeContext
                        ) -> Rejection | None:
    """R1, R12: suite changes by org admins; help-desk changes by the primary contact or a
    super admin. The requester must be an active user of the same organisation."""
    if ctx.org is None:
        return reject("unknown_org", f"organisation {request.org_id!r} does not exist")
    user = ctx.requester
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


def counts_every_active_user(pricing_model: str) -> bool:
    """R4: under all_employee every active user of the organisation counts toward the seat floor
    (R2); under any other pricing model only the active users assigned the product do."""
    return pricing_model == "all_employee"


def check_billing_period(terms: SubscriptionTerms, change_date: date) -> Rejection | None:
    """SPEC section 5: a change is prorated within the billing period [period_start, period_end)
    it falls in; after the period ends the subscription has to be renewed first."""
    if terms.period_start <= change_date < terms.period_end:
        return None
    return reject(
        "billing_period_closed",
        f"the billing period {terms.period_start} .. {terms.period_end} does not include "
        f"{change_date}; renew the subscription before changing it")


def check_scheduled_period(terms: SubscriptionTerms, scheduled_for: date) -> Rejection | None:
    """SPEC section 10: a scheduled change takes effect at the end of the period it was
    scheduled in, never at a later one: when the period moved meanwhile (a change from the free
    tier started a new one, say), it does not outlive the terms it was asked against."""
    if terms.period_end == scheduled_for:
        return None
    return reject(
        "billing_period_changed",
        f"the change was scheduled for the period ending {scheduled_for}, but the "
        f"subscription's period now runs {terms.period_start} .. {terms.period_end}; "
        "schedule it again")


def fewest_seats(tier: Tier) -> int:
    """R3: a paid plan has at least 1 seat; a free plan may have none."""
    return 0 if tier.is_free else 1


def check_seat_bounds(product: Product, terms: SubscriptionTerms, seats: int) -> Rejection | None:
    """R3: at least 1 seat on a paid plan, at most the plan's maximum; the current count is a
    no-op, refused rather than charged."""
    tier, unit = product.tier(terms.plan), product.seat_unit
    if seats == terms.seats:
        return reject("no_change", f"the subscription already has {seats} {unit}s")
    if seats < fewest_seats(tier):
        return reject("seat_bounds", f"a paid plan needs at least 1 {unit}")
    if seats > tier.max_seats:
        return reject("seat_bounds",
                      f"{terms.plan} allows at most {tier.max_seats} {unit}s, {seats} requested")
    return None


def check_seat_floor(product: Product, seats: int, active: int) -> Rejection | None:
    """R2: no fewer seats than active seat holders (counted as R4 says), and the rejection says
    how many to deactivate first."""
    if seats >= active:
        return None
    unit = product.seat_unit
    return reject(
        "seat_floor",
        f"{active} {unit}s are active, so seats can't go below {active}: deactivate "
        f"{active - seats} user(s) who left, then reduce")


def check_plan_move(product: Product, terms: SubscriptionTerms, target_plan: str, active: int
                    ) -> tuple[Target | None, Rejection | None]:
    """R5: only the catalog's moves, a forbidden one naming the allowed route; R7: the target
    tier's agent limit; and the seat floor of the move (R2), whose seats are the current ones cut
    to the target's maximum, and at least 1 on a paid target (R3: a free plan may have none).
    The target lists the features the move switches off (R6)."""
    if not product.has_tier(terms.plan):  # the catalog lost the current plan: a bug, not a rule
        raise KeyError(terms.plan)
    unit = product.seat_unit
    if not product.has_tier(target_plan):
        tiers = ", ".join(t.id for t in product.tiers)
        return None, reject("unknown_plan",
                            f"{terms.product} has no plan {target_plan!r}; plans: {tiers}")
    answer = PlanTierMachine(product).check_move(terms.plan, target_plan, active_agents=active)
    if answer.verdict is MoveVerdict.SAME_TIER:
        return None, reject("no_change", f"the subscription is already on {target_plan}")
    if answer.verdict is MoveVerdict.FORBIDDEN:
        route = " → ".join(answer.route)
        return None, reject(
            "forbidden_move",
            f"{terms.plan} → {target_plan} is not a direct move"
            + (f"; the allowed route is {route}" if answer.route else ""))
    target_tier = product.tier(target_plan)
    if answer.verdict is MoveVerdict.OVER_AGENT_LIMIT:
        return None, reject(
            "agent_limit",
            f"{target_plan} allows {target_tier.agent_limit} active {unit}s and "
            f"{active} are active: deactivate {answer.agents_to_deactivate} {unit}(s) first")
    seats = max(min(terms.seats, target_tier.max_seats), fewest_seats(target_tier))
    if seats < active:
        return None, reject("seat_floor",
                            f"{target_plan} allows at most {target_tier.max_seats} {unit}s and "
                            f"{active} are active: deactivate {active - seats} first")
    return Target(plan=target_plan, seats=seats,
                  features_switched_off=answer.features_switched_off), None


def validate_change(catalog: Catalog, request: ChangeRequest, ctx: ChangeContext,
                    change_date: date, *, scheduled_for: date | None = None
                    ) -> tuple[Target | None, Rejection | None]:
    """Is the requested change valid for the subscription as it stands? The checks in order:
    the subscription exists, its billing period, then R3 and R2 for seats or R5, R7 and R2 for
    a plan. A scheduled change firing (`scheduled_for`: the period end it waited for) is judged
    against the period it was scheduled to end, not today's."""
    terms = ctx.subscription
    if terms is None:
        return None, reject("unknown_subscription",
                            f"{request.org_id} has no {request.product} subscription")
    rejection = (check_billing_period(terms, change_date) if scheduled_for is None
                 else check_scheduled_period(terms, scheduled_for))
    if rejection is not None:
        return None, rejection
    product = catalog.product(request.product)
    if isinstance(request.change, SeatChange):
        seats = request.change.seats
        rejection = check_seat_bounds(product, terms, seats)
        if rejection is None:
            rejection = check_seat_floor(product, seats, ctx.active_seat_holders)
        if rejection is not None:
            return None, rejection
        return Target(plan=terms.plan, seats=seats), None
    return check_plan_move(product, terms, request.change.plan, ctx.active_seat_holders)


def features_disabled_after(*, disabled: Iterable[str], switched_off: Iterable[str],
                            target_features: Iterable[str]) -> list[str]:
    """R6: a move deletes no data. What a downgrade switches off joins the features already
    disabled; whatever the new plan has is turned back on."""
    return sorted((set(disabled) | set(switched_off)) - set(target_features))


def subscription_taken(holder: str) -> Rejection:
    """One change at a time per subscription (not a numbered rule: the claim of the validation
    step): a second change is refused while another, `holder`, is in progress."""
    return reject("change_in_progress",
                  f"another change ({holder}) to this subscription is in progress; "
                  "wait for it to end or cancel it, then try again")


def change_scheduled(holder: str) -> Rejection:
    """SPEC section 10: at most one scheduled change per subscription."""
    return reject("change_scheduled",
                  f"another change ({holder}) is scheduled for this subscription's period end; "
                  "cancel it, or send this one with replace_scheduled to take its place")
