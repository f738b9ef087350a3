"""Business rules over loaded rows: who may change a subscription (R1, R12) and whether a change
is valid (R2, R3, R4, R5, R7). Organisations are loaded through the real fixture loader into the
session database, each under its own id."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.admission import AdmissionActivities
from activities.dependencies import Dependencies
from subchange.domain import rules
from subchange.domain.contracts import ChangeRequest, Rejection
from subchange.domain.rules import Target
from subchange.store import audit, subscriptions
from subchange.store.tables import OrgUser
from tests.helpers.documents import org_document
from tests.helpers.observers import audit_entries


def today():
    return datetime.now(UTC).date()


def user(name: str, role: str = "member", *, products: tuple[str, ...] = ("one", "desk"),
         primary: bool = False, active: bool = True) -> dict[str, Any]:
    return {"email": name, "role": role, "primary_contact": primary, "active": active,
            "products": list(products)}


@pytest.fixture
def new_org(load):
    """Load an organisation under a fresh id; user names become name@<org>.example."""

    def _new_org(*, users: list[dict[str, Any]], subscriptions: list[dict[str, Any]]) -> str:
        org_id = f"rules-{uuid.uuid4().hex[:10]}"
        for u in users:
            u["email"] = f"{u['email']}@{org_id}.example"
        load(org_document(org_id, users=users, subscriptions=subscriptions))
        return org_id

    return _new_org


def request(org_id: str, product: str, by: str, change: dict[str, Any]) -> ChangeRequest:
    email = by if "@" in by else f"{by}@{org_id}.example"
    return ChangeRequest(request_id=f"req-{uuid.uuid4().hex[:12]}", org_id=org_id,
                         product=product, requested_by=email, change=change)


def authorize(deps: Dependencies, req: ChangeRequest) -> Rejection | None:
    with deps.sessions() as session:
        ctx = subscriptions.load_context(session=session, org_id=req.org_id, product=req.product,
                                         requested_by=req.requested_by)
    return rules.authorize_requester(deps.catalog, req, ctx)


def validate(deps: Dependencies, req: ChangeRequest, change_date=None
             ) -> tuple[Target | None, Rejection | None]:
    with deps.sessions() as session:
        ctx = subscriptions.load_context(session=session, org_id=req.org_id, product=req.product,
                                         requested_by=req.requested_by)
    return rules.validate_change(deps.catalog, req, ctx, change_date or today())


def seats(n: int) -> dict[str, Any]:
    return {"kind": "seats", "seats": n}


def plan(tier: str) -> dict[str, Any]:
    return {"kind": "plan", "plan": tier}


# Subscriptions paid by bank transfer need no gateway card, which keeps loading quick.
def one_sub(n: int, model: str = "all_employee") -> dict[str, Any]:
    return {"product": "one", "plan": "enterprise", "seats": n, "pricing_model": model,
            "payment_method": "offline", "card": None}


def desk_sub(tier: str, n: int) -> dict[str, Any]:
    return {"product": "desk", "plan": tier, "seats": n, "payment_method": "offline",
            "card": None}


@pytest.fixture
def staffed_org(new_org) -> str:
    """Roles of R1/R12: the same person may manage one product and not the other."""
    return new_org(
        users=[user("admin", "admin"), user("boss", "super_admin"),
               user("contact", "member", primary=True), user("staff", "member"),
               user("gone", "admin", primary=True, active=False)],
        subscriptions=[one_sub(10), desk_sub("professional", 5)])


# --- R1, R12: who may change ---------------------------------------------------------------

@pytest.mark.parametrize(("product", "who"), [
    ("one", "admin"), ("one", "boss"),  # organisation administrators
    ("desk", "contact"), ("desk", "boss"),  # the primary contact or a super admin
])
def test_the_managers_of_each_product_are_authorized(deps, staffed_org, product, who):
    change = seats(12) if product == "one" else plan("enterprise")
    assert authorize(deps, request(staffed_org, product, who, change)) is None


@pytest.mark.parametrize(("product", "who", "needs"), [
    ("one", "contact", "an organisation administrator"),  # primary contact, but not admin
    ("one", "staff", "an organisation administrator"),
    ("desk", "admin", "the primary contact or a super admin"),  # admin, but not primary contact
    ("desk", "staff", "the primary contact or a super admin"),
])
def test_anyone_else_is_refused_with_what_it_takes(deps, staffed_org, product, who, needs):
    change = seats(12) if product == "one" else plan("enterprise")
    rejection = authorize(deps, request(staffed_org, product, who, change))
    assert rejection is not None and rejection.reason_code == "not_authorized"
    assert needs in rejection.reason
    assert f"{who}@{staffed_org}.example" in rejection.reason


@pytest.mark.parametrize("product", ["one", "desk"])
def test_an_inactive_user_is_refused_whatever_their_role(deps, staffed_org, product):
    change = seats(12) if product == "one" else plan("enterprise")
    rejection = authorize(deps, request(staffed_org, product, "gone", change))
    assert rejection is not None and rejection.reason_code == "not_authorized"
    assert "not an active user" in rejection.reason


def test_an_admin_of_another_organisation_is_refused(deps, new_org, staffed_org):
    other = new_org(users=[user("admin", "super_admin", primary=True)],
                    subscriptions=[one_sub(3)])
    rejection = authorize(deps, request(staffed_org, "one", f"admin@{other}.example",
                                        seats(12)))
    assert rejection is not None and rejection.reason_code == "not_authorized"
    assert staffed_org in rejection.reason


def test_the_requester_email_is_matched_regardless_of_case(deps, staffed_org):
    req = request(staffed_org, "one", f"ADMIN@{staffed_org.upper()}.EXAMPLE", seats(12))
    assert authorize(deps, req) is None


def test_an_unknown_organisation_is_refused_by_name(deps):
    org_id = f"nobody-{uuid.uuid4().hex[:8]}"
    rejection = authorize(deps, request(org_id, "one", "admin@nobody.example", seats(3)))
    assert rejection is not None and rejection.reason_code == "unknown_org"
    assert org_id in rejection.reason


def run_authorize_step(deps: Dependencies, req: ChangeRequest):
    """The authorize step as the worker runs it, which records the attempt."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=req.workflow_id)
    return env.run(AdmissionActivities(deps).authorize_admin, req)


def test_a_refused_attempt_is_recorded_in_the_audit_log(deps, staffed_org):
    req = request(staffed_org, "desk", "admin", plan("enterprise"))
    decision = run_authorize_step(deps, req)
    assert decision.rejection is not None
    [entry] = audit_entries(deps, workflow_id=req.workflow_id)
    assert (entry.org_id, entry.actor, entry.outcome) == (staffed_org, req.requested_by,
                                                          "denied")
    assert entry.detail == decision.rejection.reason


def test_an_authorized_attempt_is_recorded_too(deps, staffed_org):
    req = request(staffed_org, "one", "admin", seats(12))
    assert run_authorize_step(deps, req).rejection is None
    [entry] = audit_entries(deps, workflow_id=req.workflow_id)
    assert (entry.actor, entry.outcome) == (req.requested_by, "authorized")


# --- R2, R4: the seat floor ------------------------------------------------------------------

@pytest.fixture
def workforce() -> list[dict[str, Any]]:
    """8 active users, 5 of them holding a suite seat, plus 2 who left (inactive)."""
    return ([user("admin", "admin")]
            + [user(f"holder{i}", products=("one",)) for i in range(4)]
            + [user(f"other{i}", products=("desk",)) for i in range(3)]
            + [user(f"left{i}", products=("one",), active=False) for i in range(2)])


def test_all_employee_floor_counts_every_active_user(deps, new_org, workforce):
    org = new_org(users=workforce, subscriptions=[one_sub(10, "all_employee")])
    target, rejection = validate(deps, request(org, "one", "admin", seats(6)))
    assert target is None and rejection is not None
    assert rejection.reason_code == "seat_floor"
    assert "8 users are active" in rejection.reason
    assert "deactivate 2 user(s) who left, then reduce" in rejection.reason


def test_all_employee_reduction_down_to_the_active_users_is_valid(deps, new_org, workforce):
    org = new_org(users=workforce, subscriptions=[one_sub(10, "all_employee")])
    target, rejection = validate(deps, request(org, "one", "admin", seats(8)))
    assert rejection is None
    assert target == Target(plan="enterprise", seats=8)


def test_flexible_user_floor_counts_only_users_assigned_the_product(deps, new_org, workforce):
    org = new_org(users=workforce, subscriptions=[one_sub(10, "flexible_user")])
    target, rejection = validate(deps, request(org, "one", "admin", seats(5)))
    assert rejection is None and target is not None and target.seats == 5
    _, rejection = validate(deps, request(org, "one", "admin", seats(3)))
    assert rejection is not None and rejection.reason_code == "seat_floor"
    assert "5 users are active" in rejection.reason
    assert "deactivate 2 user(s)" in rejection.reason


def test_help_desk_floor_counts_active_agents(deps, new_org):
    org = new_org(users=[user("contact", primary=True, products=("desk",)),
                         *[user(f"agent{i}", products=("desk",)) for i in range(3)],
                         user("suite", products=("one",))],
                  subscriptions=[desk_sub("standard", 6)])
    _, rejection = validate(deps, request(org, "desk", "contact", seats(2)))
    assert rejection is not None and rejection.reason_code == "seat_floor"
    assert "4 agents are active" in rejection.reason and "deactivate 2" in rejection.reason
    target, rejection = validate(deps, request(org, "desk", "contact", seats(4)))
    assert rejection is None and target is not None and target.seats == 4


def test_a_reload_that_takes_a_product_away_or_deactivates_a_user_lowers_the_floor(
        deps, load, new_org, workforce):
    org = new_org(users=workforce, subscriptions=[one_sub(10, "flexible_user")])
    _, rejection = validate(deps, request(org, "one", "admin", seats(4)))
    assert rejection is not None and "5 users are active" in rejection.reason
    users = [dict(u) for u in workforce]
    users[1]["products"] = ["desk"]  # holder0 moves to the help desk
    users[2]["active"] = False       # holder1 left
    load(org_document(org, users=users, subscriptions=[one_sub(10, "flexible_user")]))
    target, rejection = validate(deps, request(org, "one", "admin", seats(3)))
    assert rejection is None and target is not None and target.seats == 3


@pytest.mark.parametrize("model", ["all_employee", "flexible_user"])
def test_the_facts_take_the_same_queries_for_ten_users_or_two_thousand(deps, engine, new_org,
                                                                      model):
    """The seat floor and the requester are counted and found by the database: neither the
    number of statements nor the rows read grow with the organisation (issue 10)."""
    def facts_of(users: int) -> tuple[int, int, int]:
        org = new_org(users=[user("admin", "admin"), *(user(f"u{i}", products=("one",))
                                                        for i in range(users - 1))],
                      subscriptions=[one_sub(users, model)])
        statements: list[str] = []
        users_loaded: list[OrgUser] = []

        def on_statement(_conn, _cursor, statement, *_):
            statements.append(statement)

        def on_load(target, _context):
            users_loaded.append(target)

        sa.event.listen(engine, "before_cursor_execute", on_statement)
        sa.event.listen(OrgUser, "load", on_load)
        try:
            with deps.sessions() as session:
                ctx = subscriptions.load_context(session=session, org_id=org, product="one",
                                                 requested_by=f"admin@{org}.example")
        finally:
            sa.event.remove(engine, "before_cursor_execute", on_statement)
            sa.event.remove(OrgUser, "load", on_load)
        assert ctx.requester is not None and ctx.requester.role == "admin"
        return len(statements), len(users_loaded), ctx.active_seat_holders

    small, large = facts_of(10), facts_of(2000)
    assert small[2] == 10 and large[2] == 2000
    assert small[:2] == large[:2] == (small[0], 1)  # the requester's row alone is read


# --- R3: seat bounds and no-ops --------------------------------------------------------------

@pytest.fixture
def small_suite(new_org) -> str:
    return new_org(users=[user("admin", "admin")], subscriptions=[one_sub(5, "flexible_user")])


def test_a_change_to_the_current_seat_count_is_a_no_op(deps, small_suite):
    _, rejection = validate(deps, request(small_suite, "one", "admin", seats(5)))
    assert rejection is not None and rejection.reason_code == "no_change"
    assert "already has 5 users" in rejection.reason


def test_a_paid_plan_needs_at_least_one_seat(deps, small_suite):
    _, rejection = validate(deps, request(small_suite, "one", "admin", seats(0)))
    assert rejection is not None and rejection.reason_code == "seat_bounds"
    assert "at least 1" in rejection.reason


def test_seats_above_the_plan_maximum_are_refused_with_the_maximum(deps, small_suite):
    _, rejection = validate(deps, request(small_suite, "one", "admin", seats(10001)))
    assert rejection is not None and rejection.reason_code == "seat_bounds"
    assert "at most 10000" in rejection.reason and "10001" in rejection.reason
    target, rejection = validate(deps, request(small_suite, "one", "admin", seats(10000)))
    assert rejection is None and target is not None and target.seats == 10000


def test_the_free_desk_tier_allows_at_most_its_agent_count(deps, new_org):
    org = new_org(users=[user("contact", primary=True, products=("desk",))],
                  subscriptions=[desk_sub("free", 2)])
    _, rejection = validate(deps, request(org, "desk", "contact", seats(4)))
    assert rejection is not None and rejection.reason_code == "seat_bounds"
    assert "at most 3" in rejection.reason


def test_a_change_outside_the_billing_period_is_refused(deps, small_suite):
    with deps.sessions() as session:
        ctx = subscriptions.load_context(session=session, org_id=small_suite, product="one",
                                         requested_by=f"admin@{small_suite}.example")
    late = ctx.subscription.period_end + timedelta(days=1)
    _, rejection = validate(deps, request(small_suite, "one", "admin", seats(6)), late)
    assert rejection is not None and rejection.reason_code == "billing_period_closed"


def test_a_product_the_org_does_not_subscribe_to_is_refused(deps, small_suite):
    _, rejection = validate(deps, request(small_suite, "desk", "admin", plan("standard")))
    assert rejection is not None and rejection.reason_code == "unknown_subscription"


# --- R5, R7: plan moves ----------------------------------------------------------------------

@pytest.fixture
def enterprise_desk(new_org) -> str:
    """An enterprise help desk of 6 agent seats with 5 active agents."""
    return new_org(users=[user("contact", primary=True, products=("desk",)),
                          *[user(f"agent{i}", products=("desk",)) for i in range(4)],
                          user("suite", products=("one",))],
                   subscriptions=[desk_sub("enterprise", 6)])


def test_enterprise_to_standard_is_refused_with_the_allowed_route(deps, enterprise_desk):
    _, rejection = validate(deps, request(enterprise_desk, "desk", "contact", plan("standard")))
    assert rejection is not None and rejection.reason_code == "forbidden_move"
    assert "enterprise → professional → standard" in rejection.reason


def test_an_allowed_downgrade_keeps_the_seats_and_lists_what_is_switched_off(
        deps, enterprise_desk):
    target, rejection = validate(
        deps, request(enterprise_desk, "desk", "contact", plan("professional")))
    assert rejection is None and target is not None
    assert (target.plan, target.seats) == ("professional", 6)
    assert set(target.features_switched_off) == {"ai_assistant", "live_chat",
                                                 "multi_brand_help_center", "custom_functions"}


def test_a_downgrade_to_free_over_the_agent_limit_names_how_many_to_deactivate(
        deps, enterprise_desk):
    _, rejection = validate(deps, request(enterprise_desk, "desk", "contact", plan("free")))
    assert rejection is not None and rejection.reason_code == "agent_limit"
    assert "5 are active" in rejection.reason
    assert "deactivate 2 agent(s) first" in rejection.reason


def test_a_downgrade_to_free_within_the_agent_limit_fits_the_seats_to_it(deps, new_org):
    org = new_org(users=[user("contact", primary=True, products=("desk",)),
                         user("agent", products=("desk",)),
                         user("staff", products=("one",))],
                  subscriptions=[desk_sub("standard", 10)])
    target, rejection = validate(deps, request(org, "desk", "contact", plan("free")))
    assert rejection is None and target is not None
    assert (target.plan, target.seats) == ("free", 3)
    assert "macros" in target.features_switched_off


def test_a_move_to_the_current_plan_is_a_no_op(deps, enterprise_desk):
    _, rejection = validate(deps, request(enterprise_desk, "desk", "contact", plan("enterprise")))
    assert rejection is not None and rejection.reason_code == "no_change"


def test_an_unknown_plan_is_refused_with_the_plans_there_are(deps, enterprise_desk):
    _, rejection = validate(deps, request(enterprise_desk, "desk", "contact", plan("platinum")))
    assert rejection is not None and rejection.reason_code == "unknown_plan"
    assert "'platinum'" in rejection.reason
    assert "free, standard, professional, enterprise" in rejection.reason


def test_an_upgrade_from_free_is_valid(deps, new_org):
    org = new_org(users=[user("contact", primary=True, products=("desk",))],
                  subscriptions=[desk_sub("free", 2)])
    target, rejection = validate(deps, request(org, "desk", "contact", plan("enterprise")))
    assert rejection is None and target == Target(plan="enterprise", seats=2)


def test_an_attempt_on_an_unknown_organisation_is_audited_once_across_retries(deps):
    org_id = f"nobody-{uuid.uuid4().hex[:8]}"
    req = request(org_id, "one", "admin@nobody.example", seats(3))
    for _ in range(2):  # an activity retry runs the step again
        assert run_authorize_step(deps, req).rejection.reason_code == "unknown_org"
    [entry] = audit_entries(deps, workflow_id=req.workflow_id)
    assert (entry.org_id, entry.outcome) == (org_id, "denied")


def test_an_audit_entry_longer_than_its_columns_is_still_written(deps):
    """The audit is written after the effect it records (a refund made, a claim released): a
    value too long for its column must not fail it there (PostgreSQL refuses what SQLite keeps),
    so each is cut to its column's width."""
    org_id = f"audit-{uuid.uuid4().hex[:8]}"
    actor = "s" * 300 + "@vendor.example"
    with deps.sessions() as session:
        audit.record_audit(session=session, org_id=org_id, actor=actor, action="a" * 100,
                           outcome="o" * 50, detail="d" * 2000)
    [entry] = audit_entries(deps, org=org_id)
    assert (entry.actor, entry.action, entry.outcome, entry.detail) == (
        actor[:254], "a" * 64, "o" * 32, "d" * 1000)
