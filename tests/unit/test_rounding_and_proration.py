"""Money (SPEC section 5): Decimal amounts rounded half-up to the currency's minor unit, and the
proration of the quote worked through the examples of the source documents.

Expected amounts are computed here from catalog.json and the dates, with plain Decimal arithmetic,
never by calling the code under test.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from babel.numbers import get_currency_precision

from subchange.dev.devstack import ROOT
from subchange.domain.catalog import default_catalog
from subchange.domain.contracts import ChangeRequest, Quote
from subchange.domain.facts import Organisation, SubscriptionTerms
from subchange.domain.money import (
    SUPPORTED_CURRENCIES,
    minor_unit_digits,
    prorate,
    round_money,
    to_minor_units,
)
from subchange.domain.quoting import build_quote
from subchange.domain.rules import Target

CATALOG_JSON = json.loads(
    (ROOT / "subchange" / "domain" / "catalog.json").read_text("utf-8"))

# December has 31 days, so the prorated amounts of these examples are not whole numbers.
DECEMBER = (date(2026, 12, 1), date(2027, 1, 1))
CHANGE_DATE = date(2026, 12, 12)  # 20 of 31 days remain


def listed_price(product: str, tier: str, model: str, currency: str, period: str) -> Decimal:
    tiers = {t["id"]: t for t in CATALOG_JSON["products"][product]["tiers"]}
    return Decimal(tiers[tier]["prices"][model][currency][period])


def expected_amount(difference: Decimal, remaining: int, period: int, places: int) -> Decimal:
    return (difference * remaining / period).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def quote_for(*, product: str, plan: str, seats: int, currency: str = "JPY",
              pricing_model: str | None = None, billing_period: str = "monthly",
              period: tuple[date, date] = DECEMBER, change_date: date = CHANGE_DATE,
              unit_price: Decimal | None = None, new_plan: str | None = None,
              new_seats: int | None = None) -> Quote:
    """Quote a change of an in-memory subscription (no database needed for arithmetic)."""
    model = pricing_model or ("all_employee" if product == "one" else "per_agent")
    org = Organisation(id="money", currency=currency)
    sub = SubscriptionTerms(id=1, product=product, plan=plan, seats=seats, pricing_model=model,
                            billing_period=billing_period, period_start=period[0],
                            period_end=period[1], payment_method="online",
                            unit_price=unit_price, version=1)
    change = ({"kind": "plan", "plan": new_plan} if new_plan
              else {"kind": "seats", "seats": new_seats})
    request = ChangeRequest(request_id="req-money", org_id="money", product=product,
                            requested_by="admin@money.example", change=change)
    target = Target(plan=new_plan or plan, seats=new_seats if new_seats is not None else seats)
    return build_quote(catalog=default_catalog(), org=org, sub=sub, request=request,
                       target=target, change_date=change_date)


# --- rounding --------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "rounded"), [
    ("2.5", "JPY", "3"),
    ("3.5", "JPY", "4"),  # half-up, not banker's rounding (which gives 4 and 2 for 3.5 and 2.5)
    ("2.4999", "JPY", "2"),
    ("-2.5", "JPY", "-3"),  # a refundable half yen rounds up in absolute value too
    ("1234", "JPY", "1234"),
    ("1.005", "USD", "1.01"),  # float arithmetic would give 1.00 here
    ("2.675", "USD", "2.68"),  # float arithmetic would give 2.67 here
    ("0.125", "USD", "0.13"),
    ("-0.125", "USD", "-0.13"),
    ("10", "USD", "10.00"),
    ("1.005", "EUR", "1.01"),
])
def test_amounts_round_half_up_to_the_currency_minor_unit(amount, currency, rounded):
    result = round_money(Decimal(amount), currency)
    assert isinstance(result, Decimal)
    assert str(result) == rounded  # value and number of decimals both


def test_minor_units_are_jpy_zero_and_usd_two_as_cldr_has_them():
    assert minor_unit_digits("JPY") == 0
    assert minor_unit_digits("USD") == 2
    assert minor_unit_digits("EUR") == 2
    for currency in SUPPORTED_CURRENCIES:  # the table money.py keeps agrees with CLDR (babel)
        assert minor_unit_digits(currency) == get_currency_precision(currency)


def test_an_unsupported_currency_is_refused_by_name():
    with pytest.raises(ValueError, match="GBP"):
        round_money(Decimal("1.00"), "GBP")


def test_float_amounts_are_refused_rather_than_rounded():
    with pytest.raises((TypeError, AttributeError)):
        round_money(1.005, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1234", "JPY", 1234),  # yen as-is: the gateway's JPY amounts have no decimals
    ("25548.4", "JPY", 25548),
    ("25548.5", "JPY", 25549),
    ("12.34", "USD", 1234),  # cents
    ("338.71", "USD", 33871),
    ("0.005", "USD", 1),
    ("45", "USD", 4500),
    ("0", "USD", 0),
])
def test_to_minor_units_gives_the_gateway_integer(amount, currency, minor):
    result = to_minor_units(Decimal(amount), currency)
    assert type(result) is int
    assert result == minor


# --- the proration formula -------------------------------------------------------------------

def test_prorate_ties_round_half_up_in_both_directions():
    # A negotiated 1001 yen per seat, one seat more with 15 of 30 days left: exactly 500.5 yen.
    increase = prorate(old_seats=1, old_unit_price=Decimal(1001), new_seats=2,
                       new_unit_price=Decimal(1001), period_start=date(2026, 11, 1),
                       period_end=date(2026, 12, 1), change_date=date(2026, 11, 16),
                       currency="JPY")
    assert (increase.remaining_days, increase.period_days) == (15, 30)
    assert increase.amount == Decimal(501)
    decrease = prorate(old_seats=2, old_unit_price=Decimal("10.01"), new_seats=1,
                       new_unit_price=Decimal("10.01"), period_start=date(2026, 11, 1),
                       period_end=date(2026, 12, 1), change_date=date(2026, 11, 16),
                       currency="USD")
    assert decrease.amount == Decimal("-5.01")  # 5.005 refundable rounds up to 5.01


def test_a_change_outside_the_billing_period_is_not_prorated():
    with pytest.raises(ValueError, match="outside the billing period"):
        prorate(old_seats=1, old_unit_price=Decimal(100), new_seats=2,
                new_unit_price=Decimal(100), period_start=date(2026, 11, 1),
                period_end=date(2026, 12, 1), change_date=date(2026, 12, 1), currency="JPY")


def test_all_employee_35_to_32_decrease_reports_the_refundable_amount_and_charges_nothing():
    quote = quote_for(product="one", plan="enterprise", seats=35, new_seats=32,
                      pricing_model="all_employee")
    price = listed_price("one", "enterprise", "all_employee", "JPY", "monthly")
    expected = expected_amount(32 * price - 35 * price, 20, 31, 0)
    assert expected == Decimal(-9677)  # -15000 yen × 20/31 = -9677.42
    assert quote.amount == expected
    assert quote.amount_due == 0
    assert quote.refundable_amount == Decimal(9677)
    assert (quote.pricing_model, quote.old_seats, quote.new_seats) == ("all_employee", 35, 32)


def test_flexible_user_30_to_35_increase_is_charged_prorated():
    quote = quote_for(product="one", plan="enterprise", seats=30, new_seats=35,
                      pricing_model="flexible_user")
    price = listed_price("one", "enterprise", "flexible_user", "JPY", "monthly")
    expected = expected_amount(35 * price - 30 * price, 20, 31, 0)
    assert expected == Decimal(25548)  # 39600 yen × 20/31 = 25548.39
    assert quote.amount == quote.amount_due == expected
    assert quote.refundable_amount == 0
    assert quote.pricing_model == "flexible_user"


def test_flexible_user_increase_in_usd_is_prorated_to_the_cent():
    quote = quote_for(product="one", plan="enterprise", seats=30, new_seats=35,
                      pricing_model="flexible_user", currency="USD")
    price = listed_price("one", "enterprise", "flexible_user", "USD", "monthly")
    expected = expected_amount(5 * price, 20, 31, 2)
    assert expected == Decimal("338.71")  # 525.00 × 20/31 = 338.709...
    assert quote.amount_due == expected
    assert to_minor_units(quote.amount_due, "USD") == 33871


def test_yearly_period_prorates_over_the_days_of_the_year():
    year = (date(2026, 4, 1), date(2027, 4, 1))  # 365 days
    quote = quote_for(product="one", plan="enterprise", seats=30, new_seats=35,
                      pricing_model="flexible_user", billing_period="yearly", period=year,
                      change_date=date(2026, 10, 1))
    price = listed_price("one", "enterprise", "flexible_user", "JPY", "yearly")
    remaining = (date(2027, 4, 1) - date(2026, 10, 1)).days
    assert (quote.remaining_days, quote.period_days) == (remaining, 365)
    assert quote.amount_due == expected_amount(5 * price, remaining, 365, 0)


def test_paid_tier_upgrade_is_charged_the_price_difference_prorated():
    quote = quote_for(product="desk", plan="standard", seats=4, new_plan="professional",
                      new_seats=4)
    old = listed_price("desk", "standard", "per_agent", "JPY", "monthly")
    new = listed_price("desk", "professional", "per_agent", "JPY", "monthly")
    assert (quote.old_unit_price, quote.new_unit_price) == (old, new)
    assert quote.amount_due == expected_amount(4 * new - 4 * old, 20, 31, 0)
    assert not quote.starts_new_period
    assert (quote.new_period_start, quote.new_period_end) == DECEMBER


def test_tier_downgrade_moves_no_money_and_reports_the_unused_value():
    quote = quote_for(product="desk", plan="enterprise", seats=4, new_plan="professional",
                      new_seats=4, currency="USD")
    old = listed_price("desk", "enterprise", "per_agent", "USD", "monthly")
    new = listed_price("desk", "professional", "per_agent", "USD", "monthly")
    expected = expected_amount(4 * new - 4 * old, 20, 31, 2)
    assert expected < 0
    assert quote.amount_due == 0
    assert quote.refundable_amount == -expected


def test_the_quote_carries_every_input_so_anyone_can_recompute_it():
    quote = quote_for(product="one", plan="enterprise", seats=35, new_seats=32,
                      currency="USD")
    assert quote.currency == "USD"
    assert (quote.period_start, quote.period_end, quote.change_date) == (*DECEMBER, CHANGE_DATE)
    assert quote.remaining_days == (quote.period_end - quote.change_date).days == 20
    assert quote.period_days == (quote.period_end - quote.period_start).days == 31
    recomputed = expected_amount(
        quote.new_seats * quote.new_unit_price - quote.old_seats * quote.old_unit_price,
        quote.remaining_days, quote.period_days, 2)
    assert quote.amount == recomputed == Decimal("-87.10")  # -135.00 × 20/31 = -87.096...
    # Survives the JSON round trip of a workflow payload exactly, as Decimal.
    again = Quote.model_validate_json(quote.model_dump_json())
    assert again.amount == Decimal("-87.10") and isinstance(again.amount, Decimal)


# --- free to paid ----------------------------------------------------------------------------

def test_upgrade_from_free_starts_a_new_period_and_charges_a_full_first_month():
    quote = quote_for(product="desk", plan="free", seats=2, new_plan="standard", new_seats=2,
                      change_date=date(2026, 12, 12))
    price = listed_price("desk", "standard", "per_agent", "JPY", "monthly")
    assert quote.starts_new_period
    assert (quote.new_period_start, quote.new_period_end) == (date(2026, 12, 12),
                                                              date(2027, 1, 12))
    assert quote.remaining_days == quote.period_days == 31
    assert quote.amount_due == 2 * price == Decimal(3360)
    assert quote.refundable_amount == 0


def test_upgrade_from_free_on_a_yearly_period_charges_a_full_year_in_usd():
    quote = quote_for(product="desk", plan="free", seats=3, new_plan="enterprise", new_seats=3,
                      currency="USD", billing_period="yearly",
                      period=(date(2026, 1, 1), date(2027, 1, 1)),
                      change_date=date(2026, 11, 11))
    price = listed_price("desk", "enterprise", "per_agent", "USD", "yearly")
    assert (quote.new_period_start, quote.new_period_end) == (date(2026, 11, 11),
                                                              date(2027, 11, 11))
    assert quote.period_days == 365
    assert quote.amount_due == 3 * price == Decimal("1200.00")


# --- negotiated prices -----------------------------------------------------------------------

def test_negotiated_unit_price_overrides_the_catalog():
    negotiated = Decimal(4500)
    quote = quote_for(product="one", plan="enterprise", seats=35, new_seats=40,
                      unit_price=negotiated)
    catalog_price = listed_price("one", "enterprise", "all_employee", "JPY", "monthly")
    assert negotiated != catalog_price
    assert quote.old_unit_price == quote.new_unit_price == negotiated
    assert quote.amount_due == expected_amount(5 * negotiated, 20, 31, 0) == Decimal(14516)


def test_a_move_to_another_plan_is_priced_from_the_catalog_not_the_negotiated_price():
    negotiated = Decimal(3000)
    quote = quote_for(product="desk", plan="professional", seats=2, new_plan="enterprise",
                      new_seats=2, unit_price=negotiated)
    new = listed_price("desk", "enterprise", "per_agent", "JPY", "monthly")
    assert (quote.old_unit_price, quote.new_unit_price) == (negotiated, new)
    assert quote.amount_due == expected_amount(2 * new - 2 * negotiated, 20, 31, 0)
