"""The business rules (SPEC R1-R12) end to end through the `SubscriptionChange` workflow, with the
real activities, database, localstripe and SMTP server: what the customer, the payments team and
the billing mailbox see after each change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta

from subchange.domain.contracts import ChangeStatus
from tests.helpers.documents import admin, members, unique_org
from tests.helpers.driver import ChangeDriver
from tests.helpers.money_oracle import in_minor_units, recomputed_amount, with_tax
from tests.helpers.observers import (
    assert_untouched,
    audit_entries,
    charges,
    mail_text,
    payment_intent,
    refund_ticket_row,
    subscription_row,
    succeeded_charges,
)

# --- seat changes of the suite (R4, R8, R10, R11) ----------------------------------------------

async def test_all_employee_reduction_moves_no_money_and_confirms_once(
        driver, deps, gateway, mailbox):
    org = unique_org("ae")
    await driver.load(org, users=[admin(org), *members(org, 20, products=["one"])],
                     subscriptions=[{"product": "one", "plan": "enterprise", "seats": 35,
                                     "pricing_model": "all_employee"}])

    result = await driver.run(org, seats=32)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert (quote.pricing_model, quote.old_seats, quote.new_seats) == ("all_employee", 35, 32)
    assert quote.old_unit_price == deps.catalog.unit_price(
        product="one", tier="enterprise", pricing_model="all_employee", currency="JPY",
        period="monthly")
    assert quote.amount == recomputed_amount(quote) < 0
    assert quote.amount_due == 0 and quote.refundable_amount == -quote.amount
    assert quote.refundable_total == with_tax(-quote.amount, "JPY")  # a refund returns the tax
    assert result.payment.method == "none" and result.payment.charge_id is None
    assert charges(gateway, subscription_row(deps, org, "one")) == []
    assert result.subscription.seats == 32 and subscription_row(deps, org, "one").seats == 32
    assert result.refund_ticket is None  # R11: no refund unless asked for

    mails = mailbox.messages(to=f"billing@{org}.example")
    assert len(mails) == 1
    assert result.invoice.emailed_to == f"billing@{org}.example"
    assert result.invoice.amount == 0
    assert "confirmation" in mails[0]["Subject"].lower()
    body = mail_text(mails[0])
    assert result.invoice.number in body and "all_employee" in body
    assert f"{int(quote.refundable_total):,}" in body and "not refunded" in body
    assert "Consumption tax" not in body  # a zero-amount confirmation has no tax line


async def test_flexible_increase_is_charged_once_in_yen(driver, deps, gateway,
                                                        mailbox):
    org = unique_org("flex")
    await driver.load(org, users=[admin(org)], subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}])

    result = await driver.run(org, seats=35)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert (quote.pricing_model, quote.currency) == ("flexible_user", "JPY")
    assert quote.amount_due == quote.amount == recomputed_amount(quote) > 0
    paid = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert len(paid) == 1
    assert paid[0].id == result.payment.charge_id
    # SPEC 14: the card is charged the total with 10% consumption tax, rounded down
    assert quote.total_due == with_tax(quote.amount_due, "JPY") > quote.amount_due
    assert (paid[0].amount, paid[0].currency) == (int(quote.total_due), "jpy")
    intent = payment_intent(gateway, result.payment.intent_id)
    assert intent.status == "succeeded" and intent.metadata["workflow_id"] == result.workflow_id
    assert result.subscription.seats == 35
    mails = mailbox.messages(to=f"billing@{org}.example")
    assert len(mails) == 1 and result.payment.charge_id in mail_text(mails[0])
    assert result.invoice.amount == result.payment.amount == quote.total_due
    assert (result.invoice.subtotal, result.invoice.tax) == (quote.amount_due, quote.tax.tax)


async def test_usd_subscription_is_charged_in_cents(driver, deps, gateway):
    org = unique_org("usd")
    await driver.load(org, currency="USD", users=[admin(org)], subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}])

    result = await driver.run(org, seats=35)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert quote.currency == "USD" and quote.amount_due == recomputed_amount(quote) > 0
    assert quote.amount_due == quote.amount_due.quantize(Decimal("0.01"))
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert paid.currency == "usd"
    # An organisation in the US pays no Japanese consumption tax, and its quote says why.
    assert quote.tax.tax == 0 and quote.total_due == quote.amount_due
    assert "Not subject to Japanese consumption tax" in quote.tax.note
    assert paid.amount == in_minor_units(quote.total_due, "USD") == int(quote.amount_due * 100)


# --- R1, R12: who may change -------------------------------------------------------------------

def _requester(case: str, org: str, other: str) -> tuple[str, str, list[dict]]:
    """(product, requester, users of org) for each way of not being allowed."""
    boss = admin(org)
    if case == "member":
        return "one", f"member@{org}.example", [boss, {"email": f"member@{org}.example",
                                                       "role": "member", "products": ["one"]}]
    if case == "inactive_admin":
        return "one", f"gone@{org}.example", [boss, {"email": f"gone@{org}.example",
                                                     "role": "admin", "active": False}]
    if case == "admin_of_other_org":
        return "one", f"admin@{other}.example", [boss]
    assert case == "desk_admin_not_primary_contact"
    return "desk", f"it@{org}.example", [boss | {"primary_contact": False},
                                         {"email": f"it@{org}.example", "role": "admin",
                                          "products": ["desk"]},
                                         {"email": f"owner@{org}.example", "role": "member",
                                          "primary_contact": True}]


@pytest.mark.parametrize("case", ["member", "inactive_admin", "admin_of_other_org",
                                  "desk_admin_not_primary_contact"])
async def test_unauthorised_requester_is_rejected_and_audited(driver, deps, gateway,
                                                              mailbox, case):
    org, other = unique_org("r1"), unique_org("r1other")
    product, requester, users = _requester(case, org, other)
    await driver.load(other, users=[admin(other)], subscriptions=[])
    await driver.load(org, users=users, subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 10},
        {"product": "desk", "plan": "professional", "seats": 3}])
    seats = 10 if product == "one" else 3

    result = await driver.run(org, product, by=requester, seats=seats + 2)

    assert result.status is ChangeStatus.REJECTED
    assert result.reason_code == "not_authorized" and requester in result.reason
    assert result.quote is None and result.payment is None
    assert_untouched(deps, gateway, mailbox, org, product, seats=seats)
    denied = [e for e in audit_entries(deps, org=org) if e.workflow_id == result.workflow_id]
    assert [(e.actor, e.outcome) for e in denied] == [(requester, "denied")]


async def test_rights_are_per_product(driver, deps, mailbox):
    """R12: the desk's primary contact (not an admin) manages the desk but not the suite."""
    org = unique_org("r12")
    contact = f"contact@{org}.example"
    await driver.load(org, users=[admin(org, primary_contact=False),
                                 {"email": contact, "role": "member", "primary_contact": True,
                                  "products": ["one", "desk"]}],
                     subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10},
                                    {"product": "desk", "plan": "professional", "seats": 4}])

    suite = await driver.run(org, "one", by=contact, seats=12)
    desk = await driver.run(org, "desk", by=contact, seats=3)

    assert (suite.status, suite.reason_code) == (ChangeStatus.REJECTED, "not_authorized")
    assert desk.status is ChangeStatus.COMPLETED, desk.reason
    assert subscription_row(deps, org, "one").seats == 10
    assert subscription_row(deps, org, "desk").seats == 3


# --- R2, R3, R4: seat floor and bounds ---------------------------------------------------------

@pytest.mark.parametrize("pricing_model, active", [("flexible_user", 6), ("all_employee", 9)])
async def test_seat_floor_says_how_many_to_deactivate(driver, deps, gateway, mailbox,
                                                      pricing_model, active):
    org = unique_org("floor")
    # 1 admin + 5 assigned + 3 active but not assigned the suite + 4 who left (inactive).
    users = [admin(org), *members(org, 5, products=["one"]),
             *members(org, 3, products=[], prefix="other"),
             *members(org, 4, products=["one"], active=False, prefix="left")]
    await driver.load(org, users=users, subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 12, "pricing_model": pricing_model}])

    result = await driver.run(org, seats=4)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "seat_floor")
    assert f"{active} users are active" in result.reason
    assert f"deactivate {active - 4} user" in result.reason
    assert_untouched(deps, gateway, mailbox, org, "one", seats=12)


@pytest.mark.parametrize("seats, code, says", [
    (10, "no_change", "already has 10 users"),
    (0, "seat_bounds", "at least 1 user"),
    (10001, "seat_bounds", "at most 10000 users, 10001 requested"),
])
async def test_seat_bounds_and_no_op(driver, deps, gateway, mailbox, seats, code,
                                     says):
    org = unique_org("bounds")
    await driver.load(org, users=[admin(org)], subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 10, "pricing_model": "flexible_user"}])

    result = await driver.run(org, seats=seats)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, code)
    assert says in result.reason
    assert_untouched(deps, gateway, mailbox, org, "one", seats=10)


# --- R5, R6, R7, R11: help-desk plan moves -----------------------------------------------------

async def load_desk(driver: ChangeDriver, org: str, *, plan: str, seats: int,
                    agents: int = 0) -> None:
    users = [admin(org), *members(org, agents, products=["desk"], prefix="agent")]
    await driver.load(org, users=users,
                      subscriptions=[{"product": "desk", "plan": plan, "seats": seats}])


async def test_enterprise_to_standard_is_rejected_naming_the_route(driver,
                                                                   deps, gateway, mailbox):
    org = unique_org("route")
    await load_desk(driver, org, plan="enterprise", seats=5)

    result = await driver.run(org, "desk", plan="standard")

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "forbidden_move")
    assert "enterprise → professional → standard" in result.reason
    assert_untouched(deps, gateway, mailbox, org, "desk", seats=5)
    assert subscription_row(deps, org, "desk").plan == "enterprise"


async def test_downgrade_to_free_over_agent_limit_is_rejected(driver, deps, gateway,
                                                              mailbox):
    org = unique_org("free")
    await load_desk(driver, org, plan="standard", seats=6, agents=5)  # the admin is the 6th agent
    limit = deps.catalog.product("desk").tier("free").agent_limit

    result = await driver.run(org, "desk", plan="free")

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "agent_limit")
    assert f"{6} are active" in result.reason and f"deactivate {6 - limit}" in result.reason
    assert_untouched(deps, gateway, mailbox, org, "desk", seats=6)


async def test_desk_downgrade_with_refund_request_opens_a_ticket(driver,
                                                                 deps, gateway, mailbox):
    org = unique_org("down")
    await load_desk(driver, org, plan="enterprise", seats=5, agents=2)
    desk = deps.catalog.product("desk")
    lost = set(desk.tier("enterprise").features) - set(desk.tier("professional").features)

    result = await driver.run(org, "desk", plan="professional", refund=True)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    assert (quote.old_plan, quote.new_plan, quote.new_seats) == ("enterprise", "professional", 5)
    assert quote.amount == recomputed_amount(quote) < 0 and quote.amount_due == 0
    assert charges(gateway, subscription_row(deps, org, "desk")) == []
    # R6: nothing is deleted; what the lower tier lacks is recorded as switched off.
    assert set(quote.features_switched_off) == lost
    assert set(result.subscription.disabled_features) == lost
    row = subscription_row(deps, org, "desk")
    assert (row.plan, set(row.disabled_features)) == ("professional", lost)
    # R11: the refund goes to the payments team as a ticket, never automatically.
    ticket = result.refund_ticket
    assert ticket is not None and ticket.amount == quote.refundable_total == with_tax(
        -quote.amount, "JPY")  # tax-inclusive: a refund returns the tax too
    assert ticket.tax == quote.tax.refundable_tax == ticket.amount + quote.amount
    assert ticket.invoice_number == result.invoice.number
    assert result.workflow_id in ticket.change_link
    stored = refund_ticket_row(deps, result.workflow_id)
    assert stored is not None and (stored.amount, stored.status) == (ticket.amount, "open")
    [mail] = mailbox.messages(to=f"billing@{org}.example")
    assert "Switched off" in mail_text(mail) and "ai_assistant" in mail_text(mail)


async def test_upgrade_from_free_charges_a_full_new_period(driver, deps, gateway,
                                                           mailbox):
    org = unique_org("up")
    await load_desk(driver, org, plan="free", seats=2, agents=1)

    result = await driver.run(org, "desk", plan="standard")

    assert result.status is ChangeStatus.COMPLETED, result.reason
    quote = result.quote
    standard_price = deps.catalog.unit_price(product="desk", tier="standard",
                                             pricing_model="per_agent", currency="JPY",
                                             period="monthly")
    assert quote.starts_new_period and quote.new_unit_price == standard_price
    assert quote.amount_due == quote.new_seats * standard_price == 2 * standard_price
    assert quote.new_period_start == quote.change_date
    assert quote.new_period_end == quote.change_date + relativedelta(months=1)
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "desk"))
    assert quote.total_due == with_tax(quote.amount_due, "JPY")
    assert paid.amount == int(quote.total_due) and paid.id == result.payment.charge_id
    row = subscription_row(deps, org, "desk")
    assert (row.plan, row.period_start, row.period_end) == (
        "standard", quote.change_date, quote.new_period_end)
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
