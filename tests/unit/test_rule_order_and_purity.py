"""The rules as pure functions of the domain's facts, with no database: which rejection wins when
several apply, what a plan move leaves disabled (R6), who counts toward the seat floor (R4), and
that the domain loads no storage code."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from subchange.domain import rules
from subchange.domain.catalog import default_catalog
from subchange.domain.contracts import ChangeRequest
from subchange.domain.facts import ChangeContext, Organisation, Requester, SubscriptionTerms

PERIOD = (date(2026, 11, 1), date(2026, 12, 1))
IN_PERIOD, AFTER_PERIOD = date(2026, 11, 16), date(2026, 12, 2)


def context(product: str, plan: str, seats: int, *, active: int) -> ChangeContext:
    model = "all_employee" if product == "one" else "per_agent"
    terms = SubscriptionTerms(id=1, product=product, plan=plan, seats=seats, pricing_model=model,
                              billing_period="monthly", period_start=PERIOD[0],
                              period_end=PERIOD[1], payment_method="online", unit_price=None,
                              version=1)
    return ChangeContext(org=Organisation(id="acme", currency="JPY"),
                         requester=Requester(email="boss@acme.example", role="super_admin",
                                             primary_contact=True, active=True),
                         subscription=terms, active_seat_holders=active)


def request(product: str, change: dict) -> ChangeRequest:
    return ChangeRequest(request_id="req-pure", org_id="acme", product=product,
                         requested_by="boss@acme.example", change=change)


def reason_code(product: str, change: dict, ctx: ChangeContext, on: date = IN_PERIOD) -> str:
    target, rejection = rules.validate_change(default_catalog(), request(product, change), ctx, on)
    assert target is None and rejection is not None
    return rejection.reason_code


@pytest.mark.parametrize(("product", "change", "ctx", "on", "wins"), [
    # a no-op after the period ended: the period is checked first
    ("one", {"kind": "seats", "seats": 10}, context("one", "enterprise", 10, active=3),
     AFTER_PERIOD, "billing_period_closed"),
    # zero seats with users active: below the bounds before below the floor
    ("one", {"kind": "seats", "seats": 0}, context("one", "enterprise", 10, active=3),
     IN_PERIOD, "seat_bounds"),
    # above the maximum is a bound, whatever the floor
    ("desk", {"kind": "seats", "seats": 4}, context("desk", "free", 2, active=9),
     IN_PERIOD, "seat_bounds"),
    # enterprise -> standard with too many agents for either: the route is named first
    ("desk", {"kind": "plan", "plan": "standard"}, context("desk", "enterprise", 6, active=50),
     IN_PERIOD, "forbidden_move"),
    # to free with too many agents: the agent limit before the seat floor of the move
    ("desk", {"kind": "plan", "plan": "free"}, context("desk", "standard", 10, active=5),
     IN_PERIOD, "agent_limit"),
])
def test_the_first_rule_in_order_decides_when_several_apply(product, change, ctx, on, wins):
    assert reason_code(product, change, ctx, on) == wins


def test_a_downgrade_adds_what_it_switched_off_to_what_was_already_off():
    assert rules.features_disabled_after(
        disabled=["macros"], switched_off=["live_chat", "ai_assistant"],
        target_features=["email"]) == ["ai_assistant", "live_chat", "macros"]


def test_an_upgrade_turns_back_on_every_feature_the_new_plan_has():
    desk = default_catalog().product("desk")
    after_downgrade = rules.features_disabled_after(
        disabled=[], switched_off=desk.tier("enterprise").features,
        target_features=desk.tier("free").features)
    assert after_downgrade  # free lacks something enterprise has
    assert rules.features_disabled_after(
        disabled=after_downgrade, switched_off=(),
        target_features=desk.tier("enterprise").features) == []


def test_only_the_all_employee_model_counts_every_active_user():
    assert rules.counts_every_active_user("all_employee")
    assert not rules.counts_every_active_user("flexible_user")
    assert not rules.counts_every_active_user("per_agent")


def test_a_requester_missing_from_the_organisation_is_refused_by_name():
    ctx = context("one", "enterprise", 10, active=3)
    ctx = ChangeContext(org=ctx.org, requester=None, subscription=ctx.subscription,
                        active_seat_holders=3)
    rejection = rules.authorize_requester(
        default_catalog(), request("one", {"kind": "seats", "seats": 12}), ctx)
    assert rejection is not None and rejection.reason_code == "not_authorized"
    assert rejection.reason == "boss@acme.example is not an active user of acme"


def test_the_rules_and_the_quote_load_no_storage_code():
    probe = ("import sys, subchange.domain.rules, subchange.domain.quoting; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('sqlmodel', 'sqlalchemy') or m.startswith(('subchange.store', 'activities'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_free_desk_with_no_seats_moved_to_a_paid_plan_gets_one_seat():
    """R3: a paid plan has at least 1 seat; a free plan may have none, and the move must not
    carry 0 seats onto a paid tier (it would be applied, invoiced at zero, and stuck)."""
    target, rejection = rules.validate_change(
        default_catalog(), request("desk", {"kind": "plan", "plan": "standard"}),
        context("desk", "free", 0, active=0), IN_PERIOD)
    assert rejection is None and target is not None
    assert (target.plan, target.seats) == ("standard", 1)
